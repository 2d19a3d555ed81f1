/**
 * Entra-compatible attribute-mapping expressions: an admin pastes the expression they use in
 * Microsoft Entra provisioning and gets the same value here.
 *
 * Invariant: parsing validates everything that does not depend on a user's data (syntax, function
 * names and argument counts, attribute names, literal regexes, numbers and cultures), so the only
 * errors a cycle can meet are EXPRESSION_RUNTIME ones about one user's values.
 *
 * Values: text, numbers, booleans, lists (Split, appRoleAssignments) and null. Booleans print as
 * "True"/"False" wherever text is needed, as in Entra. Null semantics per function are in
 * expression/functions.ts; a missing attribute is null.
 *
 * Documented Entra limitations we do not copy (they would only turn a working expression into a
 * broken one): IIF conditions on a null or empty attribute work here (`IIF(IsPresent([country]),
 * …)`), and a Switch whose source did not change is not evaluated to null.
 */
import type { Node } from './expression/ast';
import { evaluateNode } from './expression/evaluator';
import { randomGuid } from './expression/functions';
import { parse } from './expression/parser';
import { booleanText, type ExpressionValue } from './expression/values';

export { ExpressionError, isExpressionError, type ExpressionErrorCode } from './expression/errors';
export { SUPPORTED_FUNCTIONS, UNSUPPORTED_ENTRA_FUNCTIONS } from './expression/functions';
export { MAX_NESTING_DEPTH } from './expression/parser';
export type { ExpressionValue } from './expression/values';

export interface Expression {
  /** The text as written (not normalised), for display and hashing. */
  readonly source: string;
  /** Canonical names of the source attributes referenced, in order of first use. */
  readonly attributes: string[];
}

export interface EvaluationContext {
  /** The user's attributes by Graph name (any case; extension attributes flat or nested). */
  attributes: Record<string, unknown>;
  /** Role values for [appRoleAssignments]; falls back to attributes.appRoleAssignments. */
  appRoleAssignments?: string[];
  /** Culture for ToLower/ToUpper when the expression names none (default: invariant, as Entra). */
  locale?: string;
  /** Generator for Guid() (inject a fixed one in tests). */
  guid?: () => string;
}

const trees = new WeakMap<Expression, Node>();

/** Parses and validates `text`; throws ExpressionError (code, 0-based position, message). */
export function parseExpression(text: string): Expression {
  const { ast, attributes } = parse(text);
  const expression: Expression = Object.freeze({ source: text, attributes: Object.freeze([...attributes]) as string[] });
  trees.set(expression, ast);
  return expression;
}

/**
 * The value of `expr` for one user. Throws ExpressionError with code EXPRESSION_RUNTIME when the
 * user's values do not fit (e.g. SingleAppRoleAssignment for a user with two roles).
 */
export function evaluateExpression(expr: Expression, ctx: EvaluationContext): ExpressionValue {
  // An Expression rebuilt from storage ({ source, attributes }) has no tree yet: parse it again.
  let ast = trees.get(expr);
  if (!ast) {
    ast = parse(expr.source).ast;
    trees.set(expr, ast);
  }
  return evaluateNode(ast, {
    attributes: ctx.attributes,
    appRoleAssignments: ctx.appRoleAssignments,
    env: { guid: ctx.guid ?? randomGuid, locale: ctx.locale },
    source: expr.source,
  });
}

/**
 * A value as the text a string attribute receives: booleans as "True"/"False" (Entra's spelling),
 * numbers as digits, lists joined by ",". Null stays null.
 */
export function expressionValueToText(value: ExpressionValue): string | null {
  if (value === null) return null;
  if (typeof value === 'boolean') return booleanText(value);
  if (Array.isArray(value)) return value.length ? value.join(',') : null;
  return String(value);
}

/** A value as a boolean attribute (e.g. SCIM `active`) receives it, or undefined if it is not one. */
export function expressionValueToBoolean(value: ExpressionValue): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const lower = value.trim().toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  return undefined;
}
