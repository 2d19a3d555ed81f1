/**
 * Text from Entra ID, TeamViewer or an error message is hostile on its way to an operator's
 * terminal: a display name can carry escape sequences that recolour or clear the screen, set the
 * window title, plant a hyperlink that shows one address and opens another (OSC 8), ring the bell,
 * start a new line that looks like a row of our own output, or reorder what is read (bidi
 * controls). The CLI passes every value it prints through this module, and nothing else.
 *
 * Invariants:
 * - terminalSafe output holds no C0 or C1 control character (ESC and BEL included), no DEL, no
 *   bidi control and no line or paragraph separator: whatever the value, it stays one line of
 *   plain characters in the place we print it.
 * - Escape sequences are removed whole (CSI `ESC [ … final`, OSC `ESC ] … BEL|ST`, DCS, SOS, PM
 *   and APC strings, two-character ESC sequences, and their one-character C1 forms), so no
 *   parameter text is left behind; every other control or bidi character is shown as a visible
 *   `\uXXXX`, so a value with a newline or an override still reads as odd rather than vanishing.
 * - terminalJson is lossless: JSON.parse of its output deep-equals the value.
 * The patterns are linear: no quantified group, so hostile text cannot make them backtrack.
 */

/** Characters that change the order text is displayed in (LRM, RLM, ALM, embeddings, overrides, isolates). */
export const BIDI_CONTROLS = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

const ESCAPE_SEQUENCES = new RegExp(
  [
    '(?:\\x1b\\[|\\x9b)[0-?]*[ -/]*[@-~]?', // CSI … final byte (cursor, colour, erase)
    '(?:\\x1b[\\]PX^_]|[\\x90\\x98\\x9d\\x9e\\x9f])[^\\x07\\x1b\\x9c]*(?:\\x07|\\x1b\\\\|\\x9c)?', // OSC, DCS, SOS, PM, APC up to BEL or ST
    '\\x1b[ -/]*[0-~]?', // any other ESC sequence (ESC c resets the terminal)
  ].join('|'),
  'g',
);
const CONTROLS = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029${BIDI_CONTROLS}]`, 'g');
/** What JSON.stringify leaves raw that a terminal still acts on (it escapes U+0000–U+001F itself). */
const JSON_RAW_CONTROLS = new RegExp(`[\\u007f-\\u009f\\u2028\\u2029${BIDI_CONTROLS}]`, 'g');

const visible = (ch: string): string => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** One value, made safe to print on a terminal (see the invariants above). */
export function terminalSafe(value: string): string {
  return value.replace(ESCAPE_SEQUENCES, '').replace(CONTROLS, visible);
}

/** A copy of a document (report, status, log records…) with every string in it made terminal-safe. */
export function forTerminal<T>(value: T): T {
  if (typeof value === 'string') return terminalSafe(value) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => forTerminal(item)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [terminalSafe(key), forTerminal(item)])) as T;
  }
  return value;
}

/** JSON for a terminal or a pipe: the same data, with the characters a terminal acts on escaped. */
export function terminalJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(JSON_RAW_CONTROLS, visible);
}
