/**
 * Regular expressions an admin writes (scoping REGEX MATCH / NOT REGEX MATCH, Replace's
 * regexPattern) and that run on directory data.
 *
 * Invariant: such a pattern never runs on a backtracking engine. Attribute values are hostile
 * text, and on V8's engine `^(\w+\s?)+$` takes seconds for 28 characters and doubles with each
 * more, blocking the worker and its HTTP routes. Every pattern here runs on RE2 (the re2js port,
 * pure JavaScript): time linear in the value's length, whatever the pattern.
 *
 * Entra writes patterns for .NET's engine. `translateDotNetRegex` rewrites the .NET-only forms
 * admins use into RE2 syntax (`(?'name'…)` groups, `\Z`, `\uXXXX`, `\cX`, `\e`, `(?#…)` comments)
 * and refuses, with a sentence naming the construct, what RE2 cannot run in linear time:
 * back-references, look-ahead and look-behind, atomic groups, conditionals, balancing groups,
 * class subtraction, `\G`, and the inline options n and x. Anything else RE2 rejects is reported
 * with RE2's own reason. Parsing runs at start-up, so a pattern that cannot run never reaches a
 * cycle (a pattern taken from an attribute at run time fails that one user).
 *
 * Semantics kept from .NET: a match anywhere unless anchored; `(?i)`, `(?m)`, `(?s)` anywhere and
 * scoped `(?i:…)`; `\A`, `\z`; `$` matches at the very end only (without `(?m)`), as before.
 * Differences: `\w`, `\d`, `\s` and `\b` are ASCII (as they were with JavaScript's engine);
 * `\Z` consumes a final newline instead of looking at it (`foo\Z` matches "foo\n" and, in
 * Replace, replaces the newline too).
 */
import { RE2JS } from 're2js';

export class RegexSyntaxError extends Error {
  constructor(readonly pattern: string, readonly reason: string) {
    super(`invalid regular expression "${pattern}": ${reason}`);
    this.name = 'RegexSyntaxError';
  }
}

/** One match of a pattern in a value. Indexes are UTF-16 offsets, as String.slice takes them. */
export interface RegexMatch {
  readonly index: number;
  readonly end: number;
  /** [the whole match, group 1, group 2, …]; undefined for a group that took no part. */
  readonly groups: ReadonlyArray<string | undefined>;
  /** The text of a named group, or undefined when it took no part or does not exist. */
  named(name: string): string | undefined;
  /** Start and end of a named group, or null when it took no part or does not exist. */
  span(name: string): [number, number] | null;
}

/** A compiled pattern, safe to share: it keeps no state between calls. */
export class DirectoryRegex {
  private readonly names: string[];

  private constructor(readonly pattern: string, private readonly re: RE2JS) {
    this.names = Object.keys(re.namedGroups());
  }

  /** Translates and compiles a .NET pattern, or throws RegexSyntaxError saying why it cannot run. */
  static compile(pattern: string): DirectoryRegex {
    const source = translateDotNetRegex(pattern);
    try {
      return new DirectoryRegex(pattern, RE2JS.compile(source));
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      throw new RegexSyntaxError(pattern, text.replace(/^error parsing regexp: /, ''));
    }
  }

  /** Whether the pattern matches anywhere in `text` (.NET's Regex.IsMatch). */
  test(text: string): boolean {
    return this.re.test(text);
  }

  /** The first match, or null. */
  exec(text: string): RegexMatch | null {
    return this.matchAll(text).next().value ?? null;
  }

  /** Every match, left to right, without overlaps (an empty match advances by one character). */
  *matchAll(text: string): Generator<RegexMatch, void, undefined> {
    const matcher = this.re.matcher(text);
    const count = matcher.groupCount();
    while (matcher.find()) {
      const groups: Array<string | undefined> = [];
      for (let g = 0; g <= count; g++) groups.push(matcher.group(g) ?? undefined);
      const spans = new Map<string, [number, number] | null>();
      for (const name of this.names) {
        const start = matcher.start(name);
        spans.set(name, start < 0 ? null : [start, matcher.end(name)]);
      }
      yield {
        index: matcher.start(),
        end: matcher.end(),
        groups,
        named: (name) => {
          const span = spans.get(name);
          return span ? text.slice(span[0], span[1]) : undefined;
        },
        span: (name) => spans.get(name) ?? null,
      };
    }
  }

  /** The names of the pattern's named groups. */
  groupNames(): string[] {
    return [...this.names];
  }
}

/** What RE2 cannot run, by the way .NET writes it: refused with these words. */
const UNSUPPORTED_GROUPS: ReadonlyArray<[string, string]> = [
  ['(?=', 'look-ahead (?=…)'],
  ['(?!', 'negative look-ahead (?!…)'],
  ['(?<=', 'look-behind (?<=…)'],
  ['(?<!', 'negative look-behind (?<!…)'],
  ['(?>', 'atomic groups (?>…)'],
  ['(?(', 'conditionals (?(…)…)'],
];
const INLINE_OPTIONS = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/;
const GROUP_NAME = /^\(\?(?:<([^>]*)>|'([^']*)')/;

/** Rewrites a .NET pattern into RE2 syntax, or throws RegexSyntaxError naming what RE2 cannot run. */
export function translateDotNetRegex(pattern: string): string {
  const fail = (reason: string): never => {
    throw new RegexSyntaxError(pattern, reason);
  };
  const refuse = (what: string): never => fail(`${what} cannot run on the linear-time engine tvsync uses for directory data; rewrite the pattern without it`);
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) fail('it ends with a lone backslash');
      const escape = translateEscape(pattern, i, inClass, refuse);
      out += escape.text;
      i += escape.length - 1;
      continue;
    }
    if (inClass) {
      if (ch === '[' && pattern[i - 1] === '-') refuse('character class subtraction [a-z-[…]]');
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      // A `]` straight after `[` or `[^` is a literal in .NET; RE2 needs it escaped.
      if (pattern[i + 1] === '^') { out += '^'; i++; }
      if (pattern[i + 1] === ']') { out += '\\]'; i++; }
      continue;
    }
    if (ch === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i);
      const group = translateGroupOpening(rest, fail, refuse);
      out += group.text;
      i += group.length - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

/** The RE2 form of the escape at `at` (`\` and what follows) and how many characters it spans. */
function translateEscape(pattern: string, at: number, inClass: boolean, refuse: (what: string) => never): { text: string; length: number } {
  const next = pattern[at + 1]!;
  const unicode = /^u([0-9a-fA-F]{4})/.exec(pattern.slice(at + 1));
  if (unicode) return { text: `\\x{${unicode[1]}}`, length: 6 };
  if (next === 'c' && /[A-Za-z]/.test(pattern[at + 2] ?? '')) {
    const code = pattern[at + 2]!.toUpperCase().charCodeAt(0) - 64;
    return { text: `\\x{${code.toString(16)}}`, length: 3 };
  }
  if (next === 'e') return { text: '\\x{1b}', length: 2 };
  if (!inClass) {
    if (next === 'Z') return { text: '(?:\\n?\\z)', length: 2 };
    if (next === 'G') refuse('\\G (a match that must start where the last one ended)');
    if (next === 'k' || /[1-9]/.test(next)) refuse(`back-references (\\${next}${next === 'k' ? '<name>' : ''})`);
  }
  return { text: `\\${next}`, length: 2 };
}

/** The RE2 form of a `(?…` group opening at the start of `rest`, and how many characters it spans. */
function translateGroupOpening(rest: string, fail: (reason: string) => never, refuse: (what: string) => never): { text: string; length: number } {
  for (const [opening, what] of UNSUPPORTED_GROUPS) if (rest.startsWith(opening)) refuse(what);
  if (rest.startsWith('(?#')) {
    // A .NET comment: dropped, up to its closing parenthesis.
    const end = rest.indexOf(')');
    if (end < 0) fail('a (?# comment is not closed');
    return { text: '', length: end + 1 };
  }
  const named = GROUP_NAME.exec(rest);
  if (named) {
    const name = named[1] ?? named[2] ?? '';
    if (name.includes('-')) refuse(`balancing groups (?<${name}>…)`);
    return { text: `(?P<${name}>`, length: named[0].length };
  }
  const options = INLINE_OPTIONS.exec(rest);
  if (options) {
    const [whole, on = '', off = '', close] = options;
    for (const option of on + off) {
      if (!'ims'.includes(option.toLowerCase())) {
        fail(`the inline option "${option}" is not supported (only i, m and s are)`);
      }
    }
    return { text: `(?${on.toLowerCase()}${options[2] !== undefined ? `-${off.toLowerCase()}` : ''}${close}`, length: whole.length };
  }
  return { text: '(?', length: 2 };
}
