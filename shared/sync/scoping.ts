/**
 * Entra-style scoping filters: which assigned users are provisioned, decided from their attributes.
 *
 * The SCOPING_FILTERS setting holds JSON of this shape (Entra's portal terms):
 *
 *   [
 *     { "name": "Sales only",
 *       "clauses": [
 *         { "attribute": "department", "operator": "EQUALS", "value": "Sales" },
 *         { "attribute": "jobTitle",   "operator": "IS NOT NULL" } ] },
 *     { "name": "Contoso mailboxes",
 *       "clauses": [ { "attribute": "userPrincipalName", "operator": "REGEX MATCH", "value": ".*\\@contoso\\.com$" } ] }
 *   ]
 *
 * Clauses of one filter are ANDed; filters are ORed; no filters puts everyone in scope. Operator
 * names are case-insensitive and may use spaces or underscores ("NOT EQUALS", "not_equals",
 * "Greater_Than", "IsNotNull"): EQUALS, NOT EQUALS, IS TRUE, IS FALSE, IS NULL, IS NOT NULL,
 * REGEX MATCH, NOT REGEX MATCH, Includes, ENDS_WITH, Greater_Than, Greater_Than_OR_EQUALS, & and !&.
 *
 * Semantics, from Microsoft's "Scoping users or groups to be provisioned with scoping filters":
 * - A clause on a null or empty value is false, for every operator except IS NULL (true) and
 *   IS NOT NULL (false). That includes NOT EQUALS, NOT REGEX MATCH and !&: Microsoft states it
 *   outright for NOT REGEX MATCH and generally for all clauses ("Scoping filters will return false
 *   if the value is null / empty").
 * - EQUALS, NOT EQUALS, Includes, ENDS_WITH and REGEX MATCH are case-sensitive; a regex matches
 *   anywhere in the value unless anchored (.NET's Regex.IsMatch).
 * - Greater_Than(_OR_EQUALS) need an integer value (checked when parsing) and an integer attribute
 *   value (otherwise the clause is false). Integers are compared exactly, however long.
 * - & is true when every bit of the value is set in the attribute (LDAP's bitwise-AND matching
 *   rule; for the usual single-bit masks this is the same as "any bit"); !& is its negation.
 * - IS TRUE / IS FALSE accept booleans and the text "True"/"False" in any case.
 * - Booleans compared by EQUALS/NOT EQUALS ignore case ("true" equals True): a boolean has no case.
 * Choices where Microsoft says nothing:
 * - A value given to IS NULL, IS NOT NULL, IS TRUE or IS FALSE is ignored (the portal greys it out).
 * - Value operators need a non-empty value: EQUALS "" could never be true.
 * - Multi-valued attributes (appRoleAssignments) cannot be filtered, as in Entra; IsSoftDeleted is
 *   computed from scope itself and cannot be filtered either.
 *
 * Invariant: a ScopingFilter has been validated: canonical attribute names, known operators,
 * compiled regexes, integer values where needed. evaluateScope never throws on user data.
 */
import { createHash } from 'node:crypto';
import { canonicalAttribute, readAttribute, sourceAttribute } from './attributes';
import { DirectoryRegex, RegexSyntaxError } from './expression/regex';

export type ScopingOperator =
  | 'EQUALS' | 'NOT_EQUALS' | 'IS_TRUE' | 'IS_FALSE' | 'IS_NULL' | 'IS_NOT_NULL' | 'REGEX_MATCH'
  | 'NOT_REGEX_MATCH' | 'INCLUDES' | 'ENDS_WITH' | 'GREATER_THAN' | 'GREATER_THAN_OR_EQUALS'
  | 'BIT_AND' | 'NOT_BIT_AND';

export interface ScopingClause {
  /** Canonical attribute name (see attributes.ts). */
  attribute: string;
  operator: ScopingOperator;
  /** The value to test against; null for the operators that take none. */
  value: string | null;
}

export interface ScopingFilter {
  /** As the admin named it, or "filter N" (1-based). */
  name: string;
  clauses: ScopingClause[];
}

/** One thing wrong in the setting. Indexes are 0-based; null when the problem is not about one. */
export interface ScopingFilterProblem {
  filterIndex: number | null;
  clauseIndex: number | null;
  message: string;
}

export class ScopingFilterError extends Error {
  readonly code = 'SCOPING_FILTER_INVALID' as const;
  /** The first problem's filter and clause (0-based), for callers that point at one place. */
  readonly filterIndex: number | null;
  readonly clauseIndex: number | null;
  constructor(readonly problems: ScopingFilterProblem[]) {
    super(problems.length === 1
      ? `SCOPING_FILTERS is invalid: ${problems[0]!.message}`
      : `SCOPING_FILTERS is invalid (${problems.length} problems):\n${problems.map((p) => `- ${p.message}`).join('\n')}`);
    this.name = 'ScopingFilterError';
    this.filterIndex = problems[0]?.filterIndex ?? null;
    this.clauseIndex = problems[0]?.clauseIndex ?? null;
  }
}

/** Entra's spelling of each operator, used in messages and reasons. */
export const OPERATOR_LABELS: Readonly<Record<ScopingOperator, string>> = {
  EQUALS: 'EQUALS',
  NOT_EQUALS: 'NOT EQUALS',
  IS_TRUE: 'IS TRUE',
  IS_FALSE: 'IS FALSE',
  IS_NULL: 'IS NULL',
  IS_NOT_NULL: 'IS NOT NULL',
  REGEX_MATCH: 'REGEX MATCH',
  NOT_REGEX_MATCH: 'NOT REGEX MATCH',
  INCLUDES: 'Includes',
  ENDS_WITH: 'ENDS_WITH',
  GREATER_THAN: 'Greater_Than',
  GREATER_THAN_OR_EQUALS: 'Greater_Than_OR_EQUALS',
  BIT_AND: '&',
  NOT_BIT_AND: '!&',
};

const VALUELESS: ReadonlySet<ScopingOperator> = new Set(['IS_TRUE', 'IS_FALSE', 'IS_NULL', 'IS_NOT_NULL']);
const INTEGER_VALUED: ReadonlySet<ScopingOperator> = new Set(['GREATER_THAN', 'GREATER_THAN_OR_EQUALS', 'BIT_AND', 'NOT_BIT_AND']);
const REGEX_VALUED: ReadonlySet<ScopingOperator> = new Set(['REGEX_MATCH', 'NOT_REGEX_MATCH']);

const OPERATOR_BY_KEY: ReadonlyMap<string, ScopingOperator> = new Map(
  (Object.keys(OPERATOR_LABELS) as ScopingOperator[]).map((op) => [operatorKey(op), op]),
);

/** Spaces, underscores and hyphens are decoration: "NOT EQUALS", "Not_Equals" and "NOTEQUALS" are one operator. */
function operatorKey(name: string): string {
  if (name === 'BIT_AND') return '&';
  if (name === 'NOT_BIT_AND') return '!&';
  return name.replace(/[\s_-]+/g, '').toUpperCase();
}

export function parseScopingOperator(name: string): ScopingOperator | null {
  return OPERATOR_BY_KEY.get(operatorKey(name.trim())) ?? null;
}

const INTEGER = /^[+-]?\d+$/;
const FILTER_KEYS = new Set(['name', 'clauses']);
const CLAUSE_KEYS = new Set(['attribute', 'operator', 'value']);

/**
 * Validates the SCOPING_FILTERS setting (JSON text, or the already-parsed value). Empty text or
 * null means no filters. Throws ScopingFilterError listing every problem found, not just the first.
 */
export function parseScopingFilters(json: string | unknown): ScopingFilter[] {
  let input: unknown = json;
  if (typeof json === 'string') {
    if (json.trim() === '') return [];
    try {
      input = JSON.parse(json);
    } catch (error) {
      throw new ScopingFilterError([{ filterIndex: null, clauseIndex: null, message: `not valid JSON (${error instanceof Error ? error.message : String(error)})` }]);
    }
  }
  if (input === null || input === undefined) return [];
  if (!Array.isArray(input)) {
    throw new ScopingFilterError([{ filterIndex: null, clauseIndex: null, message: 'expected a JSON array of filters: [{ "name": "…", "clauses": [{ "attribute": "…", "operator": "…", "value": "…" }] }]' }]);
  }

  const problems: ScopingFilterProblem[] = [];
  const filters: ScopingFilter[] = [];
  input.forEach((rawFilter: unknown, f) => {
    const fallbackName = `filter ${f + 1}`;
    if (!isPlainObject(rawFilter)) {
      problems.push({ filterIndex: f, clauseIndex: null, message: `${fallbackName}: expected an object with "name" and "clauses"` });
      return;
    }
    const named = typeof rawFilter.name === 'string' && rawFilter.name.trim() !== '';
    const name = named ? (rawFilter.name as string).trim() : fallbackName;
    const where = named ? `filter ${f + 1} ${JSON.stringify(name)}` : fallbackName;
    const filterProblem = (message: string): void => { problems.push({ filterIndex: f, clauseIndex: null, message: `${where}: ${message}` }); };

    if (rawFilter.name !== undefined && typeof rawFilter.name !== 'string') filterProblem('"name" must be text');
    for (const key of Object.keys(rawFilter)) if (!FILTER_KEYS.has(key)) filterProblem(`unknown key "${key}" (a filter has "name" and "clauses")`);
    if (!Array.isArray(rawFilter.clauses) || rawFilter.clauses.length === 0) {
      // An empty filter would put every user in scope, which is never what a typo meant.
      filterProblem('needs at least one clause in "clauses"');
      return;
    }
    const clauses: ScopingClause[] = [];
    rawFilter.clauses.forEach((rawClause: unknown, c) => {
      const clause = parseClause(rawClause, (message) => {
        problems.push({ filterIndex: f, clauseIndex: c, message: `${where}, clause ${c + 1} ${describeRawClause(rawClause)}: ${message}` });
      });
      if (clause) clauses.push(clause);
    });
    filters.push({ name, clauses });
  });
  if (problems.length) throw new ScopingFilterError(problems);
  return filters;
}

function parseClause(raw: unknown, problem: (message: string) => void): ScopingClause | null {
  if (!isPlainObject(raw)) {
    problem('expected an object with "attribute", "operator" and "value"');
    return null;
  }
  const found: string[] = [];
  const report = (message: string): void => { found.push(message); };
  for (const key of Object.keys(raw)) if (!CLAUSE_KEYS.has(key)) report(`unknown key "${key}" (a clause has "attribute", "operator" and "value")`);

  let attribute: string | null = null;
  if (typeof raw.attribute !== 'string' || raw.attribute.trim() === '') report('"attribute" is missing');
  else {
    attribute = canonicalAttribute(raw.attribute);
    const entry = sourceAttribute(raw.attribute);
    if (!attribute || !entry) report(`unknown attribute ${raw.attribute}`);
    else if (entry.type === 'string[]') report(`${attribute} is multi-valued, and Entra does not filter on multi-valued attributes`);
    else if (entry.name === 'IsSoftDeleted') report('IsSoftDeleted is computed from scope, so it cannot decide scope');
  }

  let operator: ScopingOperator | null = null;
  if (typeof raw.operator !== 'string' || raw.operator.trim() === '') report('"operator" is missing');
  else {
    operator = parseScopingOperator(raw.operator);
    if (!operator) report(`unknown operator ${raw.operator}`);
  }

  let value: string | null = null;
  if (operator && !VALUELESS.has(operator)) {
    const rawValue = raw.value;
    if (typeof rawValue === 'number' && Number.isFinite(rawValue)) value = String(rawValue);
    else if (typeof rawValue === 'boolean') value = rawValue ? 'True' : 'False';
    else if (typeof rawValue === 'string') value = rawValue;
    if (value === null && rawValue !== undefined && rawValue !== null) report('"value" must be text or a number');
    else if (value === null || value === '') report(`${OPERATOR_LABELS[operator]} needs a "value"`);
    else if (INTEGER_VALUED.has(operator)) {
      value = value.trim();
      if (!INTEGER.test(value)) report(`${OPERATOR_LABELS[operator]} needs a whole number, got ${JSON.stringify(value)}`);
    } else if (REGEX_VALUED.has(operator)) {
      try {
        DirectoryRegex.compile(value);
      } catch (error) {
        report(error instanceof RegexSyntaxError ? error.message : String(error));
      }
    }
  }
  found.forEach(problem);
  if (found.length || !attribute || !operator) return null;
  return { attribute, operator, value };
}

function describeRawClause(raw: unknown): string {
  if (!isPlainObject(raw)) return `(${JSON.stringify(raw) ?? String(raw)})`;
  const parts = [raw.attribute, raw.operator].map((part) => (typeof part === 'string' ? part : '?'));
  if (raw.value !== undefined && raw.value !== null) parts.push(JSON.stringify(raw.value));
  return `(${parts.join(' ')})`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export interface ScopeDecision {
  inScope: boolean;
  /** Plain words for logs, provision-on-demand and the status page. */
  reason: string;
}

type ClauseValue = string | boolean | null;

const regexCache = new Map<string, DirectoryRegex>();
function regexFor(pattern: string): DirectoryRegex {
  let regex = regexCache.get(pattern);
  if (!regex) {
    regex = DirectoryRegex.compile(pattern);
    if (regexCache.size > 500) regexCache.clear();
    regexCache.set(pattern, regex);
  }
  return regex;
}

/**
 * Reads an attribute for a clause: null/undefined/""/[] are all "no value"; numbers become text;
 * "true"/"false" text of a boolean attribute becomes a boolean.
 */
function clauseValue(attributes: Record<string, unknown>, attribute: string): ClauseValue | { unsupported: string } {
  const raw = readAttribute(attributes, attribute);
  if (raw === undefined || raw === null || raw === '') return null;
  if (typeof raw === 'string' && sourceAttribute(attribute)?.type === 'boolean') {
    const lower = raw.trim().toLowerCase();
    if (lower === 'true' || lower === 'false') return lower === 'true';
  }
  if (typeof raw === 'string' || typeof raw === 'boolean') return raw;
  if (typeof raw === 'number' || typeof raw === 'bigint') return String(raw);
  if (Array.isArray(raw)) return raw.length === 0 ? null : { unsupported: 'a list of values' };
  return { unsupported: `a value of type ${typeof raw}` };
}

function asText(value: string | boolean): string {
  return typeof value === 'boolean' ? (value ? 'True' : 'False') : value;
}

function asBigInt(value: string | boolean): bigint | null {
  if (typeof value !== 'string' || !INTEGER.test(value.trim())) return null;
  return BigInt(value.trim());
}

/** Whether one clause holds for one user's value (already read; see clauseValue). */
export function clauseHolds(clause: ScopingClause, value: ClauseValue): boolean {
  if (clause.operator === 'IS_NULL') return value === null;
  if (clause.operator === 'IS_NOT_NULL') return value !== null;
  if (value === null) return false;
  const expected = clause.value ?? '';
  switch (clause.operator) {
    case 'IS_TRUE':
    case 'IS_FALSE': {
      const truth = typeof value === 'boolean' ? value : value.trim().toLowerCase() === 'true' ? true : value.trim().toLowerCase() === 'false' ? false : null;
      return truth === (clause.operator === 'IS_TRUE');
    }
    case 'EQUALS':
    case 'NOT_EQUALS': {
      const equal = typeof value === 'boolean' ? asText(value).toLowerCase() === expected.trim().toLowerCase() : value === expected;
      return clause.operator === 'EQUALS' ? equal : !equal;
    }
    case 'INCLUDES': return asText(value).includes(expected);
    case 'ENDS_WITH': return asText(value).endsWith(expected);
    case 'REGEX_MATCH': return regexFor(expected).test(asText(value));
    case 'NOT_REGEX_MATCH': return !regexFor(expected).test(asText(value));
    case 'GREATER_THAN':
    case 'GREATER_THAN_OR_EQUALS':
    case 'BIT_AND':
    case 'NOT_BIT_AND': {
      const actual = asBigInt(value);
      if (actual === null) return false;
      const target = BigInt(expected);
      if (clause.operator === 'GREATER_THAN') return actual > target;
      if (clause.operator === 'GREATER_THAN_OR_EQUALS') return actual >= target;
      const allSet = (actual & target) === target;
      return clause.operator === 'BIT_AND' ? allSet : !allSet;
    }
  }
}

export function describeClause(clause: ScopingClause): string {
  const label = OPERATOR_LABELS[clause.operator];
  return clause.value === null ? `${clause.attribute} ${label}` : `${clause.attribute} ${label} ${JSON.stringify(clause.value)}`;
}

function describeValue(attribute: string, value: ClauseValue | { unsupported: string }): string {
  if (value === null) return `${attribute} is empty`;
  if (typeof value === 'object') return `${attribute} holds ${value.unsupported}`;
  return `${attribute} is ${typeof value === 'boolean' ? asText(value) : JSON.stringify(value)}`;
}

/** The first clause of `filter` that fails for this user, or null when every clause holds. */
function firstFailingClause(filter: ScopingFilter, attributes: Record<string, unknown>): string | null {
  for (const clause of filter.clauses) {
    const value = clauseValue(attributes, clause.attribute);
    const holds = typeof value === 'object' && value !== null ? false : clauseHolds(clause, value);
    if (!holds) {
      // Integer operators are false on non-integers; say so, since the value alone looks plausible.
      const note = INTEGER_VALUED.has(clause.operator) && typeof value === 'string' && asBigInt(value) === null ? ', not a whole number' : '';
      return `clause ${describeClause(clause)} was false (${describeValue(clause.attribute, value)}${note})`;
    }
  }
  return null;
}

/** Whether a user is in scope of the filters (ORed; clauses ANDed), and why, in plain words. */
export function evaluateScope(filters: ScopingFilter[], attributes: Record<string, unknown>): ScopeDecision {
  if (filters.length === 0) return { inScope: true, reason: 'in scope: no scoping filters are set' };
  const failures: string[] = [];
  for (const filter of filters) {
    const failing = firstFailingClause(filter, attributes);
    if (failing === null) return { inScope: true, reason: `in scope: filter ${JSON.stringify(filter.name)} matched` };
    failures.push(filters.length === 1 ? failing : `filter ${JSON.stringify(filter.name)}: ${failing}`);
  }
  return {
    inScope: false,
    reason: filters.length === 1 ? `out of scope: ${failures[0]}` : `out of scope: no filter matched; ${failures.join('; ')}`,
  };
}

/**
 * A canonical text of what the filters select, for change detection (a change of scoping starts
 * a new initial cycle). Names, the order of filters and the order of clauses do not change who is
 * in scope, so they do not change this text; operator and attribute spellings are canonical.
 */
export function canonicalScopingFilters(filters: ScopingFilter[]): string {
  const canonical = filters
    .map((filter) => filter.clauses
      .map((c) => [c.attribute, c.operator, VALUELESS.has(c.operator) ? null : c.value] as const)
      .map((c) => JSON.stringify(c))
      .sort())
    .map((clauses) => `[${clauses.join(',')}]`)
    .sort();
  return `[${canonical.join(',')}]`;
}

/** SHA-256 (hex) of the canonical form. */
export function hashScopingFilters(filters: ScopingFilter[]): string {
  return createHash('sha256').update(canonicalScopingFilters(filters)).digest('hex');
}
