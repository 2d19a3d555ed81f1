/**
 * NormalizeDiacritics as Microsoft's reference table describes it: Latin letters with accents
 * lose them (é → e, Å → A), and the letters that Unicode does not decompose are spelled out
 * (æ → ae, ø → oe, ß → ss, ł → l, ı → i). The table maps Ø to "OE" and Æ to "AE", so do we.
 * Beyond the table we also map đ/Đ (Croatian, Vietnamese) to d/D, which Unicode does not
 * decompose either. Marks are stripped only after a Latin letter, so Greek, Cyrillic, Indic and
 * other scripts pass through unchanged rather than being silently damaged.
 */

const SPELLED_OUT: Readonly<Record<string, string>> = {
  'æ': 'ae', 'Æ': 'AE',
  'ø': 'oe', 'Ø': 'OE',
  'œ': 'oe', 'Œ': 'OE',
  'ß': 'ss', 'ẞ': 'SS',
  'ł': 'l', 'Ł': 'L',
  'ı': 'i',
  'đ': 'd', 'Đ': 'D',
};

// Combining marks (diacritical marks, extended, supplement, for symbols, half marks) after a Latin letter.
const LATIN_WITH_MARKS = /(\p{Script=Latin})[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+/gu;
const SPELLED_OUT_CHARS = new RegExp(`[${Object.keys(SPELLED_OUT).join('')}]`, 'gu');

export function normalizeDiacritics(text: string): string {
  return text
    .normalize('NFD')
    .replace(LATIN_WITH_MARKS, '$1')
    .replace(SPELLED_OUT_CHARS, (ch) => SPELLED_OUT[ch] ?? ch)
    .normalize('NFC');
}
