/**
 * PartitionKey/RowKey values built from ids we do not control (Entra object ids, meta names).
 *
 * Invariants:
 * - `escapeKey` is injective and `unescapeKey(escapeKey(s)) === s` for every string.
 * - Its output holds none of the characters Table Storage refuses in keys ('/', '\', '#', '?',
 *   U+0000–U+001F, U+007F–U+009F) and no lone surrogate: a lone surrogate cannot travel as UTF-8
 *   and would be replaced on the wire, so two different ids would land on one row.
 * - '%' is the escape character and is therefore escaped as well; every other character passes
 *   through, so keys stay readable in Storage Explorer.
 * - `unescapeKey` accepts only what `escapeKey` produces, so a hand-edited or damaged key is
 *   reported instead of being read as some other id.
 */

/** 1 KiB of UTF-16, the service's limit (Azurite enforces the same 512 characters). */
export const MAX_KEY_LENGTH = 512;

// Without the `u` flag the pattern works on UTF-16 code units, which is what lets it see lone surrogates.
const NEEDS_ESCAPE =
  /[\u0000-\u001f\u007f-\u009f/\\#?%]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const ESCAPE = /%(u[0-9A-F]{4}|[0-9A-F]{2})/g;

function hex(unit: number, width: number): string {
  return unit.toString(16).toUpperCase().padStart(width, '0');
}

/** `%XX` for forbidden characters and '%', `%uXXXX` for lone surrogates. */
export function escapeKey(value: string): string {
  return value.replace(NEEDS_ESCAPE, (ch) => {
    const unit = ch.charCodeAt(0);
    return unit <= 0xff ? `%${hex(unit, 2)}` : `%u${hex(unit, 4)}`;
  });
}

/** Thrown by `unescapeKey` for a key `escapeKey` could not have produced. */
export class KeyFormatError extends Error {
  readonly code = 'KEY_FORMAT';
  constructor(readonly key: string) {
    super(`not an escaped key: ${JSON.stringify(key)}`);
    this.name = 'KeyFormatError';
  }
}

export function unescapeKey(key: string): string {
  const value = key.replace(ESCAPE, (_match, code: string) =>
    String.fromCharCode(parseInt(code.startsWith('u') ? code.slice(1) : code, 16)),
  );
  // Only the canonical spelling is accepted: that rejects stray '%', lower-case hex, escapes of
  // characters that never need one, and raw forbidden characters.
  if (escapeKey(value) !== key) throw new KeyFormatError(key);
  return value;
}
