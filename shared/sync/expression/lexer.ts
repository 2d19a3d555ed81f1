/**
 * Tokens of Entra's expression syntax: FunctionName( … ), [attribute], "string", numbers, commas,
 * and the comparison operators IIF and CBool conditions use (=, <>, <, <=, >, >=).
 *
 * Text pasted from the Entra portal, e-mail or a word processor often carries typographic quotes,
 * non-breaking spaces and line breaks. Whitespace of any kind is accepted; typographic quotes are
 * rejected with a message that says what to type instead, because guessing where a string ends
 * would silently change the meaning of the expression.
 */

export type TokenKind = 'ident' | 'attribute' | 'string' | 'number' | 'lparen' | 'rparen' | 'comma' | 'op' | 'eof' | 'invalid';

export interface Token {
  kind: TokenKind;
  /**
   * The identifier, the attribute name as written (trimmed), the unescaped string, the operator;
   * for an `invalid` token, what is wrong (the parser raises it only when it reaches the token).
   */
  text: string;
  /** Numeric value of a number token. */
  number?: number;
  /** 0-based offset of the token's first character. */
  pos: number;
}

const TYPOGRAPHIC_DOUBLE_QUOTES = '\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02';
const SINGLE_QUOTES = '\'\u2018\u2019\u201a\u201b\u2032';
const EXTRA_WHITESPACE = '\u200b\u200c\u200d\u2060';

const NUMBER = /-?\d+(?:\.\d+)?/y;
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

function isWhitespace(ch: string): boolean {
  return /\s/.test(ch) || EXTRA_WHITESPACE.includes(ch);
}

/**
 * Tokens one at a time, ending with `eof`, or with an `invalid` token at the first lexical problem.
 * The parser raises an invalid token only when it consumes it, so the leftmost problem is the
 * one reported, as a reader scanning left to right would find it.
 */
export function* tokenize(source: string): Generator<Token, void, undefined> {
  try {
    yield* lex(source);
  } catch (error) {
    if (!(error instanceof LexError)) throw error;
    yield { kind: 'invalid', text: error.message, pos: error.pos };
  }
}

class LexError extends Error {
  constructor(message: string, readonly pos: number) {
    super(message);
  }
}

function* lex(source: string): Generator<Token, void, undefined> {
  const fail = (detail: string, pos: number): never => {
    throw new LexError(detail, pos);
  };
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (isWhitespace(ch)) { i++; continue; }
    const start = i;
    if (ch === '(') { yield { kind: 'lparen', text: ch, pos: start }; i++; continue; }
    if (ch === ')') { yield { kind: 'rparen', text: ch, pos: start }; i++; continue; }
    if (ch === ',') { yield { kind: 'comma', text: ch, pos: start }; i++; continue; }
    if (ch === '=') { yield { kind: 'op', text: '=', pos: start }; i++; continue; }
    if (ch === '<' || ch === '>') {
      const two = source.slice(i, i + 2);
      const op = two === '<>' || two === '<=' || two === '>=' ? two : ch;
      yield { kind: 'op', text: op, pos: start };
      i += op.length;
      continue;
    }
    if (ch === '!' && source[i + 1] === '=') fail('Unexpected "!=": write <> for "not equal"', start);
    if (ch === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= source.length) fail('Unterminated string: the text that starts here has no closing "', start);
        const c = source[i]!;
        if (c === '"') { i++; break; }
        if (c === '\\') {
          const next = source[i + 1];
          if (next === '"' || next === '\\') { value += next; i += 2; continue; }
          // Entra asks for `\\`; a lone backslash before anything else is kept as written, so
          // a regex pasted as "\d+" means the same as "\\d+".
          value += c;
          i++;
          continue;
        }
        value += c;
        i++;
      }
      yield { kind: 'string', text: value, pos: start };
      continue;
    }
    if (TYPOGRAPHIC_DOUBLE_QUOTES.includes(ch)) {
      fail(`Typographic quote ${ch} is not allowed: use a straight double quote (") around text; the portal, e-mail or a word processor may have replaced it`, start);
    }
    if (SINGLE_QUOTES.includes(ch)) {
      fail(`Unexpected quote ${ch}: text goes in straight double quotes ("like this")`, start);
    }
    if (ch === '[') {
      const end = source.indexOf(']', i + 1);
      if (end < 0) fail('Unterminated attribute name: "[" has no closing "]"', start);
      const name = source.slice(i + 1, end).trim();
      if (name === '') fail('Empty attribute name "[]"', start);
      yield { kind: 'attribute', text: name, pos: start };
      i = end + 1;
      continue;
    }
    if (ch === ']') fail('Unexpected "]" without a matching "["', start);
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(source);
    if (number) {
      yield { kind: 'number', text: number[0], number: Number(number[0]), pos: start };
      i += number[0].length;
      continue;
    }
    IDENT.lastIndex = i;
    const ident = IDENT.exec(source);
    if (ident) {
      yield { kind: 'ident', text: ident[0], pos: start };
      i += ident[0].length;
      continue;
    }
    fail(`Unexpected character "${ch}"`, start);
  }
  yield { kind: 'eof', text: '', pos: source.length };
}
