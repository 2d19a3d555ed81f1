/**
 * Escaping for values that came from somewhere we do not control (Entra display names and UPNs,
 * TeamViewer error messages, settings) on their way into an email or the status page.
 *
 * Invariant: each function is safe for its context whatever the input: escapeHtml output cannot
 * open a tag, leave a quoted attribute or close a template literal; plainTextSafe output contains
 * no control or bidirectional-override character; headerSafe output is a single line.
 */
import { BIDI_CONTROLS } from '../text-safety';

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  // Old IE treated a backtick as an attribute quote; cheap to close for good.
  '`': '&#96;',
};

/** HTML-escapes text for element content and quoted attribute values. null/undefined become ''. */
export function escapeHtml(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(/[&<>"'`]/g, (ch) => HTML_ESCAPES[ch] as string);
}

// Line-like breaks become a space so words do not run together; the rest (C0, DEL, C1, and the
// bidi marks, embeddings, overrides and isolates that can make text read differently from what it
// is: U+200E/F, U+061C, U+202A–E, U+2066–9) go.
const LINE_BREAKS = /[\t\n\v\f\r\u0085\u2028\u2029]/g;
const CONTROLS = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f${BIDI_CONTROLS}]`, 'g');

/** A value as-is, minus control characters: for plain-text bodies and log-like output. */
export function plainTextSafe(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(LINE_BREAKS, ' ').replace(CONTROLS, '');
}

/** One line for a mail header (the subject): no CR/LF or other controls, whitespace collapsed, bounded. */
export function headerSafe(value: string, maxLength = 200): string {
  const line = plainTextSafe(value).replace(/\s+/g, ' ').trim();
  return line.length > maxLength ? `${line.slice(0, maxLength - 1)}…` : line;
}
