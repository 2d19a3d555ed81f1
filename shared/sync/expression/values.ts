/**
 * Values flowing through an expression and the conversions Entra's functions apply to them.
 * Booleans print as "True"/"False" (the .NET spelling Entra's functions and keys use, as in
 * `Switch([IsSoftDeleted], , "False", "True", "True", "False")`).
 */

export type ExpressionValue = string | boolean | number | null | string[];

/** Raised by conversions; the evaluator turns it into an ExpressionError at the call's position. */
export class ConversionError extends Error {}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

export function booleanText(value: boolean): string {
  return value ? 'True' : 'False';
}

/** A value as a single string; null stays null. A one-element list counts as its element. */
export function toText(value: ExpressionValue, what: string): string | null {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return booleanText(value);
  if (typeof value === 'number') return String(value);
  if (value.length === 0) return null;
  if (value.length === 1) return value[0]!;
  throw new ConversionError(`${what} needs a single value, got a list of ${value.length} values`);
}

/** An integer argument (a number, or text holding one); null stays null. */
export function toInteger(value: ExpressionValue, what: string): number | null {
  if (value === null) return null;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && INTEGER.test(value.trim())) return Number(value.trim());
  throw new ConversionError(`${what} must be a whole number, got ${describe(value)}`);
}

/**
 * The boolean a value stands for, or undefined when it stands for none: booleans, "True"/"False"
 * in any case (as .NET's Boolean.Parse reads them), and numbers (non-zero is true).
 */
export function asBoolean(value: ExpressionValue): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') {
    const text = value.trim().toLowerCase();
    if (text === 'true') return true;
    if (text === 'false') return false;
    if (DECIMAL.test(text)) return Number(text) !== 0;
  }
  return undefined;
}

export function isNullOrEmpty(value: ExpressionValue): boolean {
  return value === null || value === '' || (Array.isArray(value) && value.length === 0);
}

export function describe(value: ExpressionValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list of ${value.length} values`;
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'boolean' ? booleanText(value) : String(value);
}

export type ComparisonOperator = '=' | '<>' | '<' | '<=' | '>' | '>=';

function asNumber(value: ExpressionValue): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && DECIMAL.test(value.trim())) return Number(value.trim());
  return undefined;
}

/**
 * `left op right` as IIF and CBool conditions use it.
 * - = and <> compare text, case-sensitively (like Switch). A null side counts as "" here, so
 *   `IIF([country]="", …)` works; Microsoft documents that form as failing in Entra, and every
 *   form that does work in Entra gives the same answer here.
 * - When either side is a number, or a boolean, the comparison is numeric or boolean when the other
 *   side converts; "True" = True and 10 = "10.0" hold.
 * - <, <=, >, >= compare numbers when both sides are numeric, otherwise text by code unit
 *   (ordinal); a null side makes them false.
 */
export function compareValues(op: ComparisonOperator, left: ExpressionValue, right: ExpressionValue): boolean {
  if (Array.isArray(left) || Array.isArray(right)) {
    throw new ConversionError(`"${op}" compares single values, got a list`);
  }
  if (op === '=' || op === '<>') {
    const equal = valuesEqual(left, right);
    return op === '=' ? equal : !equal;
  }
  if (left === null || right === null) return false;
  const l = asNumber(left);
  const r = asNumber(right);
  let order: number;
  if (l !== undefined && r !== undefined) order = l - r;
  else {
    const a = toText(left, op)!;
    const b = toText(right, op)!;
    order = a < b ? -1 : a > b ? 1 : 0;
  }
  switch (op) {
    case '<': return order < 0;
    case '<=': return order <= 0;
    case '>': return order > 0;
    default: return order >= 0;
  }
}

function valuesEqual(left: Exclude<ExpressionValue, string[]>, right: Exclude<ExpressionValue, string[]>): boolean {
  if (typeof left === 'boolean' || typeof right === 'boolean') {
    const l = asBoolean(left);
    const r = asBoolean(right);
    if (l !== undefined && r !== undefined) return l === r;
  }
  if (typeof left === 'number' || typeof right === 'number') {
    const l = asNumber(left);
    const r = asNumber(right);
    if (l !== undefined && r !== undefined) return l === r;
  }
  return (toText(left, '=') ?? '') === (toText(right, '=') ?? '');
}

/**
 * Normalises a raw attribute value read from Graph or the planner: undefined becomes null,
 * dates become ISO text, lists keep their non-null items as text, "true"/"false" text of a
 * boolean attribute becomes a boolean. Objects cannot be mapped.
 */
export function fromAttribute(raw: unknown, attribute: string, type?: string): ExpressionValue {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string' && type === 'boolean') {
    // A boolean attribute handed over as text ("true") still prints as True/False.
    const lower = raw.trim().toLowerCase();
    if (lower === 'true' || lower === 'false') return lower === 'true';
  }
  if (typeof raw === 'string' || typeof raw === 'boolean') return raw;
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : null;
  if (raw instanceof Date) return raw.toISOString();
  if (Array.isArray(raw)) {
    const items: string[] = [];
    for (const item of raw) {
      if (item === null || item === undefined) continue;
      if (typeof item === 'string') items.push(item);
      else if (typeof item === 'number' || typeof item === 'boolean') items.push(toText(item, attribute)!);
      else throw new ConversionError(`attribute [${attribute}] holds a list with a non-text item`);
    }
    return items;
  }
  throw new ConversionError(`attribute [${attribute}] holds ${typeof raw === 'object' ? 'an object' : `a ${typeof raw}`}, not a value an expression can use`);
}
