/**
 * Entra evaluates regular expressions with .NET's engine; we run them as JavaScript RegExps.
 * The common syntax is the same. This module rewrites the few .NET-only forms that admins use
 * (a leading `(?i)`-style option group, `(?'name'…)` groups, `\A`, `\Z`, `\z`) and reports the
 * rest as a syntax problem at parse time, so a pattern that cannot run never reaches a cycle.
 *
 * Patterns are compiled without the `u` flag: .NET accepts identity escapes such as `\@`
 * (Microsoft's own scoping example `.*\@domain.com` uses one), which `u` mode rejects.
 */

export class RegexSyntaxError extends Error {
  constructor(readonly pattern: string, readonly reason: string) {
    super(`invalid regular expression "${pattern}": ${reason}`);
    this.name = 'RegexSyntaxError';
  }
}

const LEADING_OPTIONS = /^\(\?([a-zA-Z]+)\)/;

/** Translates a .NET pattern to JavaScript source and flags, or throws RegexSyntaxError. */
export function translateDotNetRegex(pattern: string): { source: string; flags: string } {
  let flags = '';
  let rest = pattern;
  const options = LEADING_OPTIONS.exec(rest);
  if (options) {
    for (const option of options[1]!) {
      const flag = { i: 'i', m: 'm', s: 's' }[option.toLowerCase()];
      if (!flag) throw new RegexSyntaxError(pattern, `the inline option "${option}" is not supported (only i, m and s are)`);
      if (!flags.includes(flag)) flags += flag;
    }
    rest = rest.slice(options[0].length);
  }

  let out = '';
  let inClass = false;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i]!;
    if (ch === '\\') {
      const next = rest[i + 1];
      if (next === undefined) throw new RegexSyntaxError(pattern, 'it ends with a lone backslash');
      if (!inClass && next === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && next === 'z') out += '(?![\\s\\S])';
      else if (!inClass && next === 'Z') out += '(?=\\n?(?![\\s\\S]))';
      else out += ch + next;
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      // A `]` straight after `[` or `[^` is a literal in .NET; JavaScript needs it escaped.
      if (rest[i + 1] === '^') { out += '^'; i++; }
      if (rest[i + 1] === ']') { out += '\\]'; i++; }
      continue;
    }
    if (ch === '(' && rest.startsWith("(?'", i)) {
      const end = rest.indexOf("'", i + 3);
      if (end < 0) throw new RegexSyntaxError(pattern, "a (?'name' group is not closed");
      out += `(?<${rest.slice(i + 3, end)}>`;
      i = end;
      continue;
    }
    out += ch;
  }
  return { source: out, flags };
}

/** Compiles a .NET-style pattern; `extraFlags` adds JS flags such as `g` or `d`. */
export function compileDotNetRegex(pattern: string, extraFlags = ''): RegExp {
  const { source, flags } = translateDotNetRegex(pattern);
  try {
    return new RegExp(source, flags + extraFlags);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    // V8 says "Invalid regular expression: /src/flags: Unterminated group"; keep the reason only.
    const reason = text.slice(text.lastIndexOf(': ') + 2) || text;
    throw new RegexSyntaxError(pattern, reason);
  }
}
