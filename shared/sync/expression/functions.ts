/**
 * The functions an expression may call, with the argument shapes the parser checks and the
 * behaviour the evaluator runs. Behaviour follows Microsoft's "Reference for writing expressions
 * for attribute mappings in Microsoft Entra ID"; where it says nothing, the choice is written next
 * to the function (search for "Undocumented:").
 *
 * Arguments are evaluated lazily (IIF, Switch and Coalesce only evaluate the branch they pick), so
 * a failing conversion in an unused branch does not fail the expression, and Guid() in an unused
 * branch generates nothing.
 */
import { randomUUID } from 'node:crypto';
import type { CallNode, Node } from './ast';
import { normalizeDiacritics } from './diacritics';
import { DirectoryRegex, RegexSyntaxError, type RegexMatch } from './regex';
import {
  asBoolean, ConversionError, describe, type ExpressionValue, isNullOrEmpty, toInteger, toText,
} from './values';

export interface ParamSpec {
  name: string;
  /** The position may be left empty (`F(a, , c)`) or, when trailing, left out. */
  optional?: boolean;
  /** Checked at parse time when the argument is a literal. */
  kind?: 'integer' | 'regex' | 'culture';
}

/** What a function sees of its arguments: whether a position was given, and its value on demand. */
export interface Args {
  readonly count: number;
  has(index: number): boolean;
  value(index: number): ExpressionValue;
}

export interface EvalEnv {
  guid: () => string;
  /** Culture for ToLower/ToUpper when the expression names none; undefined = invariant, as in Entra. */
  locale?: string;
}

/** Reports a parse-time problem about one argument (or the whole call when `node` is omitted). */
export type CheckFail = (detail: string, node?: Node | null) => never;

export interface FunctionSpec {
  /** Canonical spelling, as Microsoft's reference writes it. */
  name: string;
  params: ParamSpec[];
  /** Parameter that may repeat after `params` (Coalesce sources, Join sources, Switch key/value pairs). */
  repeat?: ParamSpec[];
  minArgs: number;
  maxArgs: number;
  /** Extra parse-time checks; may set `call.variant`. */
  check?(call: CallNode, fail: CheckFail): void;
  evaluate(args: Args, env: EvalEnv, call: CallNode): ExpressionValue;
}

const text = (args: Args, index: number, what: string): string | null => toText(args.value(index), what);

function integer(args: Args, index: number, what: string): number {
  const value = toInteger(args.value(index), what);
  if (value === null) throw new ConversionError(`${what} is null`);
  return value;
}

function single(name: string, param: string, evaluate: (value: ExpressionValue, env: EvalEnv) => ExpressionValue): FunctionSpec {
  return { name, params: [{ name: param }], minArgs: 1, maxArgs: 1, evaluate: (args, env) => evaluate(args.value(0), env) };
}

function textFunction(name: string, transform: (value: string) => string): FunctionSpec {
  return single(name, 'source', (value) => {
    const source = toText(value, 'source');
    return source === null ? null : transform(source);
  });
}

function caseFunction(name: string, lower: boolean): FunctionSpec {
  return {
    name,
    params: [{ name: 'source' }, { name: 'culture', optional: true, kind: 'culture' }],
    minArgs: 1,
    maxArgs: 2,
    evaluate(args, env) {
      const source = text(args, 0, 'source');
      if (source === null) return null;
      const culture = (args.has(1) ? text(args, 1, 'culture') : null) ?? env.locale;
      if (!culture) return lower ? source.toLowerCase() : source.toUpperCase();
      try {
        return lower ? source.toLocaleLowerCase(culture) : source.toLocaleUpperCase(culture);
      } catch {
        throw new ConversionError(`culture ${JSON.stringify(culture)} is not a valid culture name such as "en-US"`);
      }
    },
  };
}

// Compiled patterns: a mapping runs the same few patterns for every user (a compiled pattern
// keeps no state between calls, so one object serves them all).
const compiled = new Map<string, DirectoryRegex>();

function regexAt(args: Args, index: number): DirectoryRegex {
  const pattern = text(args, index, 'regexPattern');
  if (pattern === null) throw new ConversionError('regexPattern is null');
  let regex = compiled.get(pattern);
  if (!regex) {
    try {
      regex = DirectoryRegex.compile(pattern);
    } catch (error) {
      throw new ConversionError(error instanceof Error ? error.message : String(error));
    }
    if (compiled.size >= 500) compiled.clear();
    compiled.set(pattern, regex);
  }
  return regex;
}

/**
 * Expands a .NET replacement pattern for one match: $$, $n, ${name} (also ${n}), $&, $`, $', $+, $_.
 * Anything else, and references to groups the pattern lacks, stay literal as in .NET.
 */
export function expandDotNetReplacement(replacement: string, match: RegexMatch, input: string, groupNames: readonly string[]): string {
  const groups = match.groups;
  const groupByNumber = (n: number): string | undefined => (n < groups.length ? groups[n] ?? '' : undefined);
  return replacement.replace(/\$(\$|\{([^}]*)\}|(\d+)|&|`|'|_|\+)/g, (whole, token: string, name?: string, digits?: string) => {
    if (token === '$') return '$';
    if (token === '&') return groups[0] ?? '';
    if (token === '`') return input.slice(0, match.index);
    if (token === "'") return input.slice(match.end);
    if (token === '_') return input;
    if (token === '+') return groups.length > 1 ? groups[groups.length - 1] ?? '' : '';
    if (name !== undefined) {
      if (/^\d+$/.test(name)) return groupByNumber(Number(name)) ?? whole;
      if (groupNames.includes(name)) return match.named(name) ?? '';
      return whole;
    }
    if (digits !== undefined) {
      for (let len = digits.length; len > 0; len--) {
        const group = groupByNumber(Number(digits.slice(0, len)));
        if (group !== undefined) return group + digits.slice(len);
      }
    }
    return whole;
  });
}

function literalString(node: Node | null | undefined): string | undefined {
  return node?.kind === 'string' ? node.value : undefined;
}

/** Parse-time checks of Replace: which of Microsoft's documented forms the present arguments select. */
function checkReplace(call: CallNode, fail: CheckFail): void {
  const present = (i: number): boolean => i < call.args.length && call.args[i] !== null;
  const [, oldValue, regexPattern, regexGroupName, replacementValue, replacementAttributeName, template] =
    [0, 1, 2, 3, 4, 5, 6].map(present);
  if (oldValue && regexPattern) fail('Replace takes an oldValue (argument 2) or a regexPattern (argument 3), not both', call.args[2]);
  if (regexPattern) {
    if (template) fail('Replace: a template (argument 7) goes with an oldValue, not with a regexPattern', call.args[6]);
    if (replacementValue && replacementAttributeName) {
      fail('Replace takes a replacementValue (argument 5) or a replacementAttributeName (argument 6), not both', call.args[5]);
    }
    if (replacementAttributeName) {
      if (!regexGroupName) fail('Replace with a replacementAttributeName also needs a regexGroupName (argument 4)', call.args[5]);
      call.variant = 'regex-from-attribute';
    } else if (replacementValue) {
      call.variant = regexGroupName ? 'regex-group' : 'regex';
    } else {
      fail('Replace with a regexPattern needs a replacementValue (argument 5), or a regexGroupName and a replacementAttributeName (arguments 4 and 6)');
    }
    const pattern = literalString(call.args[2]);
    const group = literalString(call.args[3]);
    if (pattern !== undefined && group !== undefined) {
      if (!DirectoryRegex.compile(pattern).groupNames().includes(group)) {
        fail(`Replace: the regexPattern has no group named ${JSON.stringify(group)}`, call.args[3]);
      }
    }
    return;
  }
  if (oldValue) {
    if (regexGroupName || replacementAttributeName) {
      fail('Replace: regexGroupName and replacementAttributeName go with a regexPattern, not with an oldValue', call.args[regexGroupName ? 3 : 5]);
    }
    if (template && replacementValue) fail('Replace takes a replacementValue (argument 5) or a template (argument 7), not both', call.args[6]);
    if (template) call.variant = 'template';
    else if (replacementValue) call.variant = 'literal';
    else fail('Replace with an oldValue needs a replacementValue (argument 5) or a template (argument 7)');
    return;
  }
  fail('Replace needs an oldValue (argument 2) or a regexPattern (argument 3)');
}

const replace: FunctionSpec = {
  name: 'Replace',
  params: [
    { name: 'source' },
    { name: 'oldValue', optional: true },
    { name: 'regexPattern', optional: true, kind: 'regex' },
    { name: 'regexGroupName', optional: true },
    { name: 'replacementValue', optional: true },
    { name: 'replacementAttributeName', optional: true },
    { name: 'template', optional: true },
  ],
  minArgs: 1,
  maxArgs: 7,
  check: checkReplace,
  evaluate(args, _env, call) {
    switch (call.variant) {
      case 'literal': {
        const source = text(args, 0, 'source');
        const oldValue = text(args, 1, 'oldValue');
        if (source === null) return null;
        if (!oldValue) return source;
        return source.split(oldValue).join(text(args, 4, 'replacementValue') ?? '');
      }
      case 'template': {
        const source = text(args, 0, 'source');
        const template = text(args, 6, 'template');
        const oldValue = text(args, 1, 'oldValue');
        if (source === null || template === null) return null;
        if (!oldValue) return template;
        return template.split(oldValue).join(source);
      }
      case 'regex': {
        const source = text(args, 0, 'source');
        if (source === null) return null;
        const regex = regexAt(args, 2);
        const replacement = text(args, 4, 'replacementValue') ?? '';
        let out = '';
        let last = 0;
        for (const match of regex.matchAll(source)) {
          out += source.slice(last, match.index) + expandDotNetReplacement(replacement, match, source, regex.groupNames());
          last = match.end;
        }
        return out + source.slice(last);
      }
      case 'regex-group': {
        // Undocumented: the replacementValue is inserted literally in place of the group's text.
        const source = text(args, 0, 'source');
        if (source === null) return null;
        const group = text(args, 3, 'regexGroupName') ?? '';
        const replacement = text(args, 4, 'replacementValue') ?? '';
        let out = '';
        let last = 0;
        for (const match of regexAt(args, 2).matchAll(source)) {
          const span = match.span(group);
          if (!span) continue;
          out += source.slice(last, span[0]) + replacement;
          last = span[1];
        }
        return out + source.slice(last);
      }
      case 'regex-from-attribute': {
        // Undocumented: no match in the replacement attribute gives null.
        const source = text(args, 0, 'source');
        if (source !== null && source !== '') return source;
        const from = text(args, 5, 'replacementAttributeName');
        if (from === null) return null;
        return regexAt(args, 2).exec(from)?.named(text(args, 3, 'regexGroupName') ?? '') ?? null;
      }
      default:
        throw new ConversionError('the call was not checked by the parser');
    }
  },
};

function checkSwitch(call: CallNode, fail: CheckFail): void {
  const n = call.args.length;
  if (n < 4 || n % 2 !== 0) {
    fail(`Switch takes a source, a defaultValue, then key, value pairs, so an even number of at least 4 arguments; got ${n}${n % 2 ? ' (a key has no value)' : ''}`);
  }
}

const FUNCTIONS: FunctionSpec[] = [
  {
    name: 'Append',
    params: [{ name: 'source' }, { name: 'suffix' }],
    minArgs: 2,
    maxArgs: 2,
    // Undocumented: a null source gives null (nothing to append to); a null suffix leaves the source.
    evaluate(args) {
      const source = text(args, 0, 'source');
      return source === null ? null : source + (text(args, 1, 'suffix') ?? '');
    },
  },
  {
    name: 'CBool',
    params: [{ name: 'expression' }],
    minArgs: 1,
    maxArgs: 1,
    // Documented: non-zero is True. Undocumented: null is False; text other than True/False/a number fails.
    evaluate(args) {
      const value = args.value(0);
      if (value === null) return false;
      const result = asBoolean(value);
      if (result === undefined) throw new ConversionError(`cannot convert ${describe(value)} to True or False`);
      return result;
    },
  },
  {
    name: 'Coalesce',
    params: [],
    repeat: [{ name: 'source' }],
    minArgs: 1,
    maxArgs: Infinity,
    // Documented: the first source that is not NULL; an empty string is a value and is returned.
    // Undocumented: an empty list (a multi-valued attribute with no values) counts as NULL.
    evaluate(args) {
      for (let i = 0; i < args.count; i++) {
        const value = args.value(i);
        if (value !== null && !(Array.isArray(value) && value.length === 0)) return value;
      }
      return null;
    },
  },
  single('CStr', 'value', (value) => toText(value, 'value')),
  {
    name: 'Guid',
    params: [],
    minArgs: 0,
    maxArgs: 0,
    evaluate: (_args, env) => env.guid(),
  },
  // Entra drops the attribute from the flow; tvsync never sends null, so null does the same.
  single('IgnoreFlowIfNullOrEmpty', 'expression', (value) => (isNullOrEmpty(value) ? null : value)),
  {
    name: 'IIF',
    params: [{ name: 'condition' }, { name: 'valueIfTrue' }, { name: 'valueIfFalse' }],
    minArgs: 3,
    maxArgs: 3,
    evaluate(args) {
      const condition = args.value(0);
      let holds = false;
      if (condition !== null) {
        const asBool = asBoolean(condition);
        if (asBool === undefined) throw new ConversionError(`the condition must be True or False, got ${describe(condition)}`);
        holds = asBool;
      }
      return args.value(holds ? 1 : 2);
    },
  },
  single('IsNull', 'expression', (value) => value === null),
  single('IsNullOrEmpty', 'expression', (value) => isNullOrEmpty(value)),
  single('IsPresent', 'expression', (value) => !isNullOrEmpty(value)),
  {
    name: 'Item',
    params: [{ name: 'attribute' }, { name: 'index', kind: 'integer' }],
    minArgs: 2,
    maxArgs: 2,
    // Documented: index 1 is the first item. Undocumented: past the end gives null; below 1 fails.
    evaluate(args) {
      const list = args.value(0);
      if (list === null) return null;
      const index = integer(args, 1, 'index');
      if (index < 1) throw new ConversionError(`index starts at 1, got ${index}`);
      const items = Array.isArray(list) ? list : [toText(list, 'attribute')!];
      return items[index - 1] ?? null;
    },
  },
  {
    name: 'Join',
    params: [{ name: 'separator' }],
    repeat: [{ name: 'source' }],
    minArgs: 2,
    maxArgs: Infinity,
    // Documented: list values contribute every item; Microsoft's example Join(", ", "", [surname],
    // [givenName]) → "Doe, John" shows empty values are skipped, and we skip nulls the same way.
    // Undocumented: nothing left to join gives null.
    evaluate(args) {
      const separator = text(args, 0, 'separator') ?? '';
      const parts: string[] = [];
      for (let i = 1; i < args.count; i++) {
        const value = args.value(i);
        const items = Array.isArray(value) ? value : [toText(value, 'source')];
        for (const item of items) if (item !== null && item !== '') parts.push(item);
      }
      return parts.length ? parts.join(separator) : null;
    },
  },
  {
    name: 'Left',
    params: [{ name: 'string' }, { name: 'numChars', kind: 'integer' }],
    minArgs: 2,
    maxArgs: 2,
    // Documented: null string → "", 0 → "", negative → the whole string.
    evaluate(args) {
      const source = text(args, 0, 'string');
      if (source === null) return '';
      const count = integer(args, 1, 'numChars');
      if (count < 0) return source;
      return source.slice(0, count);
    },
  },
  {
    name: 'Mid',
    params: [{ name: 'source' }, { name: 'start', kind: 'integer' }, { name: 'length', kind: 'integer' }],
    minArgs: 3,
    maxArgs: 3,
    // Documented: start is 1-based; a length past the end stops at the end.
    // Undocumented: null source → null; start past the end → ""; start < 1 or length < 0 fails.
    evaluate(args) {
      const source = text(args, 0, 'source');
      if (source === null) return null;
      const start = integer(args, 1, 'start');
      const length = integer(args, 2, 'length');
      if (start < 1) throw new ConversionError(`start counts from 1, got ${start}`);
      if (length < 0) throw new ConversionError(`length cannot be negative, got ${length}`);
      return source.slice(start - 1, start - 1 + length);
    },
  },
  textFunction('NormalizeDiacritics', normalizeDiacritics),
  // Documented: True becomes False; anything else (False, null, other text) becomes True.
  single('Not', 'source', (value) => asBoolean(value) !== true),
  replace,
  {
    name: 'SingleAppRoleAssignment',
    params: [{ name: 'appRoleAssignments' }],
    minArgs: 1,
    maxArgs: 1,
    // Documented as unsupported for several roles. Entra then picks one unpredictably; we fail the
    // user instead, naming the roles, so the admin can fix the assignment. One role reached through
    // several assignments counts once.
    evaluate(args) {
      const value = args.value(0);
      const roles = [...new Set((Array.isArray(value) ? value : [toText(value, 'appRoleAssignments')]).filter((r): r is string => !!r))];
      if (roles.length === 0) return null;
      if (roles.length > 1) {
        throw new ConversionError(`the user holds ${roles.length} app roles (${roles.map((r) => JSON.stringify(r)).join(', ')}); this function supports one role per user`);
      }
      return roles[0]!;
    },
  },
  {
    name: 'Split',
    params: [{ name: 'source' }, { name: 'delimiter' }],
    minArgs: 2,
    maxArgs: 2,
    // Microsoft's example splits "PermissionSetOne, PermissionSetTwo" on "," into items without
    // the space, so items are trimmed. Undocumented: null → null; an empty delimiter → one item.
    evaluate(args) {
      const source = text(args, 0, 'source');
      if (source === null) return null;
      const delimiter = text(args, 1, 'delimiter') ?? '';
      return (delimiter ? source.split(delimiter) : [source]).map((item) => item.trim());
    },
  },
  textFunction('StripSpaces', (value) => value.split(' ').join('')),
  {
    name: 'Switch',
    params: [{ name: 'source' }, { name: 'defaultValue', optional: true }],
    repeat: [{ name: 'key' }, { name: 'value', optional: true }],
    minArgs: 1, // checkSwitch explains the pairing rule better than a bare count

    maxArgs: Infinity,
    check: checkSwitch,
    // Documented: case-sensitive; a null or empty source matches the key "" (Microsoft's
    // `Switch([country],[country],"","Other")` workaround). An empty defaultValue gives null.
    evaluate(args) {
      const source = text(args, 0, 'source') ?? '';
      for (let i = 2; i + 1 < args.count; i += 2) {
        if ((text(args, i, 'key') ?? '') === source) return args.has(i + 1) ? args.value(i + 1) : null;
      }
      return args.has(1) ? args.value(1) : null;
    },
  },
  caseFunction('ToLower', true),
  caseFunction('ToUpper', false),
  // Not in Entra's provisioning reference (it is in Entra Connect's); trims whitespace at both ends.
  textFunction('Trim', (value) => value.trim()),
  {
    name: 'Word',
    params: [{ name: 'string' }, { name: 'wordNumber', kind: 'integer' }, { name: 'delimiters' }],
    minArgs: 3,
    maxArgs: 3,
    // Documented: null string, number < 1 or too few words → "". Words are runs of characters
    // between delimiters; consecutive delimiters do not make empty words.
    evaluate(args) {
      const source = text(args, 0, 'string');
      if (source === null) return '';
      const number = integer(args, 1, 'wordNumber');
      if (number < 1) return '';
      const delimiters = new Set(text(args, 2, 'delimiters') ?? '');
      const words: string[] = [];
      let current = '';
      for (const ch of source) {
        if (delimiters.has(ch)) {
          if (current) words.push(current);
          current = '';
        } else current += ch;
      }
      if (current) words.push(current);
      return words[number - 1] ?? '';
    },
  },
];

/** Entra functions tvsync does not run; naming them gives a clearer error than "unknown". */
export const UNSUPPORTED_ENTRA_FUNCTIONS: readonly string[] = [
  'AppRoleAssignmentsComplex', 'BitAnd', 'CDate', 'ConvertToBase64', 'ConvertToUTF8Hex', 'Count', 'DateAdd',
  'DateDiff', 'DateFromNum', 'FormatDateTime', 'InStr', 'IsString', 'Now', 'NumFromDate', 'PCase',
  'RandomString', 'Redact', 'RemoveDuplicates', 'SelectUniqueValue',
];

const BY_LOWER_NAME = new Map(FUNCTIONS.map((spec) => [spec.name.toLowerCase(), spec]));

/** Names of the functions an expression may call, as Microsoft's reference spells them. */
export const SUPPORTED_FUNCTIONS: readonly string[] = FUNCTIONS.map((spec) => spec.name).sort();

export function lookupFunction(name: string): FunctionSpec | undefined {
  return BY_LOWER_NAME.get(name.toLowerCase());
}

/** The default generator for Guid(): a random version 4 UUID. */
export const randomGuid = (): string => randomUUID();

/** Parse-time check of a literal argument of a given kind; returns a problem or null. */
export function checkLiteral(kind: ParamSpec['kind'], node: Node): string | null {
  if (kind === 'integer') {
    if (node.kind === 'number' && !Number.isInteger(node.value)) return `${node.value} is not a whole number`;
    if (node.kind === 'string' && !/^\s*[+-]?\d+\s*$/.test(node.value)) return `${JSON.stringify(node.value)} is not a whole number`;
  }
  if (kind === 'regex' && node.kind === 'string') {
    try {
      DirectoryRegex.compile(node.value);
    } catch (error) {
      return error instanceof RegexSyntaxError ? error.message : String(error);
    }
  }
  if (kind === 'culture' && node.kind === 'string' && node.value !== '') {
    try {
      Intl.getCanonicalLocales(node.value);
    } catch {
      return `${JSON.stringify(node.value)} is not a culture name such as "en-US"`;
    }
  }
  return null;
}
