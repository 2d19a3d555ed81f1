/**
 * Where a JSON text stops being JSON, as a line and column, and what was expected there — in our
 * own words, never quoting the text.
 *
 * Why not JSON.parse's message: Node's quotes the text around the error ("Unexpected token 'x',
 * "…" is not valid JSON"), and the text is local.settings.json, which holds the TeamViewer token;
 * a settings error is printed to the terminal and may be pasted into a ticket.
 *
 * Invariant: the problem names a position and an expectation only, never a character of the text.
 */

export interface JsonSyntaxProblem {
  /** 1-based. */
  line: number;
  /** 1-based, counted in characters from the start of the line. */
  column: number;
  /** What would have been valid there, e.g. `"," or "}"`. */
  expected: string;
}

/** Deeper than this is refused rather than risking the call stack (a settings file is flat). */
const MAX_DEPTH = 512;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Stop {
  constructor(readonly at: number, readonly expected: string) {}
}

/** The first syntax problem in `text`, or null when it is JSON. A leading BOM is allowed. */
export function locateJsonError(text: string): JsonSyntaxProblem | null {
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  try {
    let at = skipSpace(text, start);
    at = skipValue(text, at, 0);
    at = skipSpace(text, at);
    if (at < text.length) throw new Stop(at, 'the end of the file');
    return null;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    return { ...lineAndColumn(text, err.at), expected: err.expected };
  }
}

function lineAndColumn(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < at && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: [...text.slice(lineStart, at)].length + 1 };
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  return at;
}

function skipValue(text: string, at: number, depth: number): number {
  if (depth > MAX_DEPTH) throw new Stop(at, `at most ${MAX_DEPTH} levels of nesting`);
  const ch = text[at];
  if (ch === '{') return skipObject(text, at + 1, depth + 1);
  if (ch === '[') return skipArray(text, at + 1, depth + 1);
  if (ch === '"') return skipString(text, at + 1);
  if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) {
    NUMBER.lastIndex = at;
    if (!NUMBER.exec(text)) throw new Stop(at, 'a number');
    return NUMBER.lastIndex;
  }
  for (const literal of ['true', 'false', 'null']) if (text.startsWith(literal, at)) return at + literal.length;
  throw new Stop(at, 'a value (text in double quotes, a number, true, false, null, an object or a list)');
}

function skipObject(text: string, at: number, depth: number): number {
  at = skipSpace(text, at);
  if (text[at] === '}') return at + 1;
  for (;;) {
    if (text[at] !== '"') throw new Stop(at, 'a name in double quotes');
    at = skipSpace(text, skipString(text, at + 1));
    if (text[at] !== ':') throw new Stop(at, '":" after the name');
    at = skipSpace(text, skipValue(text, skipSpace(text, at + 1), depth));
    if (text[at] === '}') return at + 1;
    if (text[at] !== ',') throw new Stop(at, '"," or "}"');
    at = skipSpace(text, at + 1);
  }
}

function skipArray(text: string, at: number, depth: number): number {
  at = skipSpace(text, at);
  if (text[at] === ']') return at + 1;
  for (;;) {
    at = skipSpace(text, skipValue(text, at, depth));
    if (text[at] === ']') return at + 1;
    if (text[at] !== ',') throw new Stop(at, '"," or "]"');
    at = skipSpace(text, at + 1);
  }
}

function skipString(text: string, at: number): number {
  for (;;) {
    if (at >= text.length) throw new Stop(at, 'a closing double quote');
    const code = text.charCodeAt(at);
    if (code === 0x22) return at + 1;
    if (code < 0x20) throw new Stop(at, 'a closing double quote on the same line (a line break or control character inside text is written \\n, \\t, \\u0000…)');
    if (code === 0x5c) {
      const next = text[at + 1];
      if (next === 'u') {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(at + 2, at + 6))) throw new Stop(at, 'four hex digits after \\u');
        at += 6;
        continue;
      }
      if (next === undefined || !'"\\/bfnrt'.includes(next)) throw new Stop(at, 'a valid escape after the backslash (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and four hex digits; a Windows path needs \\\\)');
      at += 2;
      continue;
    }
    at++;
  }
}
