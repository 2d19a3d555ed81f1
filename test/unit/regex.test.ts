/**
 * The patterns admins write for scoping filters and Replace run on a linear-time engine: .NET forms
 * are translated, what the engine cannot run is refused at start-up naming the construct, and a
 * pattern that backtracks catastrophically elsewhere finishes at once on a long hostile value.
 */
import { describe, expect, it } from 'vitest';
import { loadSettings, SettingsError } from '../../shared/config';
import { evaluateExpression, parseExpression } from '../../shared/sync/expression';
import { DirectoryRegex, RegexSyntaxError } from '../../shared/sync/expression/regex';
import { MappingConfigError, parseMappings } from '../../shared/sync/mapping';
import { evaluateScope, parseScopingFilters } from '../../shared/sync/scoping';

const matches = (pattern: string, value: string) => DirectoryRegex.compile(pattern).test(value);

describe('.NET patterns on the linear-time engine', () => {
  it.each<[string, string, string, boolean]>([
    ['a leading (?i)', '(?i)^contoso$', 'CONTOSO', true],
    ['(?i) in the middle', '^a(?i)b$', 'aB', true],
    ['(?i) in the middle leaves what comes before alone', '^a(?i)b$', 'AB', false],
    ['a scoped (?i:…)', '^(?i:ab)c$', 'ABc', true],
    ['(?-i) switches it off again', '(?i)^a(?-i)b$', 'Ab', true],
    ['(?-i) switches it off again (no match)', '(?i)^a(?-i)b$', 'AB', false],
    ['(?\'name\'…) groups', "^(?'user'\\w+)@", 'ann@contoso.com', true],
    ['\\A', '\\Aann', 'ann@x', true],
    ['\\A is the start of the value only', '\\Aann', 'x ann', false],
    ['\\z', 'com\\z', 'a.com', true],
    ['\\Z before a final newline', 'com\\Z', 'a.com\n', true],
    ['\\Z not before another character', 'com\\Z', 'a.com\nx', false],
    ['\\uXXXX', '^\\u0041$', 'A', true],
    ['\\uXXXX in a class', '^[\\u0041-\\u0043]+$', 'CAB', true],
    ['\\e', '\\e', '\u001b', true],
    ['\\cA', '\\cA', '\u0001', true],
    ['a (?#comment)', '^a(?#the letter a)b$', 'ab', true],
    ['a ] right after [', '^[]a]+$', ']a]', true],
    ['identity escapes such as \\@', '.*\\@contoso\\.com$', 'ann@contoso.com', true],
    ['\\p{L} (Unicode letters)', '^\\p{L}+$', 'Zoë', true],
    ['lazy quantifiers', '^a+?b$', 'aaab', true],
  ])('%s: %s on %j → %s', (_what, pattern, value, expected) => {
    expect(matches(pattern, value)).toBe(expected);
  });

  it.each<[string, string, RegExp]>([
    ['(a)\\1', 'back-references', /back-references \(\\1\) cannot run on the linear-time engine/],
    ['(?<n>a)\\k<n>', 'named back-references', /back-references \(\\k<name>\)/],
    ['^(?=.*\\d)\\w+$', 'look-ahead', /look-ahead \(\?=…\)/],
    ['^(?!admin)\\w+$', 'negative look-ahead', /negative look-ahead \(\?!…\)/],
    ['(?<=@)contoso', 'look-behind', /look-behind \(\?<=…\)/],
    ['(?<!x)y', 'negative look-behind', /negative look-behind \(\?<!…\)/],
    ['(?>a+)b', 'atomic group', /atomic groups/],
    ['(?(a)b|c)', 'conditional', /conditionals/],
    ['(?<open>a)(?<close-open>b)', 'balancing group', /balancing groups/],
    ['[a-z-[aeiou]]', 'class subtraction', /character class subtraction/],
    ['\\Ga', '\\G', /\\G/],
    ['(?x)a b', 'the x option', /inline option "x" is not supported/],
    ['(?n)(a)', 'the n option', /inline option "n" is not supported/],
    ['([a-z', 'an unclosed class', /missing closing \]/],
    ['a{1001}', 'a repeat the engine bounds', /invalid repeat count/],
  ])('refuses %s (%s), saying why', (pattern, _what, reason) => {
    let error: unknown;
    try {
      DirectoryRegex.compile(pattern);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RegexSyntaxError);
    expect((error as Error).message.startsWith(`invalid regular expression "${pattern}": `)).toBe(true);
    expect((error as Error).message).toMatch(reason);
  });
});

describe('a refused pattern stops start-up, naming where it is', () => {
  it('When a scoping clause uses look-ahead, then the settings error names the filter, the clause and the construct', () => {
    const filters = JSON.stringify([{ name: 'Staff', clauses: [{ attribute: 'employeeId', operator: 'REGEX MATCH', value: '^(?!9)\\d+$' }] }]);
    let error: unknown;
    try {
      loadSettings({ env: { AzureWebJobsStorage: 'UseDevelopmentStorage=true', ENTRA_SERVICE_PRINCIPAL_ID: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b', TEAMVIEWER_API_TOKEN: 'regex-test-token', SCOPING_FILTERS: filters }, localSettingsDir: null });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toContain('SCOPING_FILTERS');
    expect((error as Error).message).toContain('filter 1 "Staff", clause 1 (employeeId REGEX MATCH "^(?!9)\\\\d+$"): invalid regular expression "^(?!9)\\d+$": negative look-ahead (?!…) cannot run');
  });

  it('When a mapping\'s Replace uses a back-reference, then the mapping error names the mapping and the argument', () => {
    let error: unknown;
    try {
      parseMappings([{ target: 'userName', source: 'userPrincipalName' }, { target: 'displayName', expression: 'Replace([displayName], , "(\\\\w)\\\\1", , "$1", , )' }]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MappingConfigError);
    expect((error as Error).message).toMatch(/^mapping 2 \(displayName\): Replace argument 3 \(regexPattern\): invalid regular expression "\(\\w\)\\1": back-references \(\\1\) cannot run/);
  });
});

describe('catastrophic patterns on long hostile values', () => {
  // Each of these takes seconds at 25-30 characters on a backtracking engine and doubles with every
  // character more; here the bound is generous because hanging is the bug, not speed.
  const PATHOLOGICAL: Array<[string, string]> = [
    ['^(\\w+\\s?)+$', `${'a'.repeat(10_000)}!`],
    ['(a+)+$', `${'a'.repeat(10_000)}b`],
    ['^(a|aa)+$', `${'a'.repeat(10_000)}b`],
    ['^(([a-z])+.)+[A-Z]([a-z])+$', `${'a'.repeat(10_000)}!`],
    ['(.*a){20}', 'a'.repeat(10_000)],
    ['^(\\d+)*$', `${'1'.repeat(10_000)}x`],
  ];

  it.each(PATHOLOGICAL)('When a scoping clause REGEX MATCH %s meets a 10,000-character value, then it decides at once', (pattern, value) => {
    const filters = parseScopingFilters([{ clauses: [{ attribute: 'department', operator: 'REGEX MATCH', value: pattern }] }]);
    const started = performance.now();
    evaluateScope(filters, { department: value });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it.each(PATHOLOGICAL)('When Replace with %s meets a 10,000-character value, then it answers at once', (pattern, value) => {
    const expression = parseExpression(`Replace([department], , ${JSON.stringify(pattern)}, , "x", , )`);
    const started = performance.now();
    evaluateExpression(expression, { attributes: { department: value } });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('When the pattern itself comes from an attribute, then it runs on the same engine', () => {
    const expression = parseExpression('Replace([mail], , [department], , "x", , )');
    const started = performance.now();
    expect(evaluateExpression(expression, { attributes: { mail: `${'a'.repeat(10_000)}!`, department: '^(\\w+\\s?)+$' } })).toBe(`${'a'.repeat(10_000)}!`);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('Replace keeps its .NET results on the new engine', () => {
  it.each<[string, Record<string, string>, string | null]>([
    ['Replace([mail], , "a*", , "-", , )', { mail: 'baaac' }, '-b--c-'],
    ['Replace([mail], , "(?<n>\\\\d)", "n", "#", , )', { mail: 'a1b22' }, 'a#b##'],
    ['Replace([mail], , "(\\\\w+)@(?<d>\\\\w+)", , "${d}/$1 [$&] $+", , )', { mail: 'ann@contoso.com' }, 'contoso/ann [ann@contoso] contoso.com'],
    ['Replace([mail], , "é", , "e", , )', { mail: '😀é😀é' }, '😀e😀e'],
    ['Replace([department], , "(?<d>\\\\d+)", "d", , [mail], )', { mail: 'room 42b' }, '42'],
  ])('%s with %j → %j', (text, attributes, expected) => {
    expect(evaluateExpression(parseExpression(text), { attributes })).toBe(expected);
  });
});
