/**
 * Attribute mappings and scope: from a user read from Entra to what TeamViewer should hold.
 *
 * The defaults are TeamViewer's gallery defaults in Entra:
 *   userPrincipalName → userName                                  (always)
 *   displayName       → displayName                               (always)
 *   Switch([IsSoftDeleted], , "False", "True", "True", "False") → active (always)
 *   givenName → name.givenName, surname → name.familyName, mail → emails  (on create only)
 * Names and the email are sent on create only because TeamViewer derives givenName/familyName
 * from displayName and changing the email sends the user a verification mail.
 *
 * ATTRIBUTE_MAPPINGS (JSON) replaces the list, in the terms of Entra's mapping editor:
 *   [ { "target": "userName", "source": "userPrincipalName" },
 *     { "target": "displayName", "expression": "Join(\" \", [givenName], [surname])" },
 *     { "target": "preferredLanguage", "constant": "de" },
 *     { "target": "name.givenName", "source": "givenName", "apply": "create", "default": "-" } ]
 * exactly one of source | constant | expression; "apply": "always" (default) or "create";
 * "default" is used on create when the value is null (Entra's "default value if null").
 *
 * Invariants:
 * - A null (or empty) value is never sent; an attribute whose mapped value is null is left out.
 * - preferredLanguage, ssoCustomerId, emails and the name parts are create-only (see CREATE_ONLY).
 * - `active` is always mapped: without it deprovisioning could not be expressed.
 * - Mapping one user never throws: a runtime expression error becomes that user's `error`.
 */
import { createHash } from 'node:crypto';
import { canonicalAttribute, readAttribute, sourceAttribute } from './attributes';
import { evaluateExpression, expressionValueToBoolean, expressionValueToText, isExpressionError, parseExpression, type Expression } from './expression';
import type { AssignedUser, AttributeChange, TeamViewerPatch, TeamViewerUser, TeamViewerUserDraft } from '../domain/model';
import type { GroupSettings } from '../domain/group-model';
import { canonicalScopingFilters, evaluateScope, type ScopingFilter } from './scoping';

export type TargetAttribute =
  | 'userName'
  | 'displayName'
  | 'name.givenName'
  | 'name.familyName'
  | 'emails'
  | 'active'
  | 'preferredLanguage'
  | 'ssoCustomerId';

export type ApplyOn = 'always' | 'create';

export interface MappingRule {
  target: TargetAttribute;
  source?: string;
  constant?: string;
  expression?: Expression;
  applyOn: ApplyOn;
  defaultValue?: string;
}

export interface SyncConfig {
  scope: 'assigned' | 'all';
  expandNestedGroups: boolean;
  filters: ScopingFilter[];
  mappings: MappingRule[];
  skipOutOfScopeDeletions: boolean;
}

const ACTIVE_EXPRESSION = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")';

export const DEFAULT_MAPPINGS: readonly MappingRule[] = Object.freeze([
  { target: 'userName', source: 'userPrincipalName', applyOn: 'always' },
  { target: 'displayName', source: 'displayName', applyOn: 'always' },
  { target: 'active', expression: parseExpression(ACTIVE_EXPRESSION), applyOn: 'always' },
  { target: 'name.givenName', source: 'givenName', applyOn: 'create' },
  { target: 'name.familyName', source: 'surname', applyOn: 'create' },
  { target: 'emails', source: 'mail', applyOn: 'create' },
] satisfies MappingRule[]);

export const DEFAULT_SYNC_CONFIG: SyncConfig = Object.freeze({
  scope: 'assigned',
  expandNestedGroups: false,
  filters: [],
  mappings: [...DEFAULT_MAPPINGS],
  skipOutOfScopeDeletions: false,
});

/**
 * Every spelling of a target, lower-cased. A Map, not an object literal: an object would also
 * answer "__proto__", "constructor" or "toString" (inherited from Object.prototype) and let such a
 * target through as if it were one of these.
 */
const TARGET_ALIASES: ReadonlyMap<string, TargetAttribute> = new Map(Object.entries({
  username: 'userName',
  displayname: 'displayName',
  'name.givenname': 'name.givenName',
  givenname: 'name.givenName',
  'name.familyname': 'name.familyName',
  familyname: 'name.familyName',
  emails: 'emails',
  email: 'emails',
  'emails.value': 'emails',
  'emails[type eq "work"].value': 'emails',
  active: 'active',
  preferredlanguage: 'preferredLanguage',
  ssocustomerid: 'ssoCustomerId',
  'urn:ietf:params:scim:schemas:extension:teamviewer:1.0:ssouser:ssocustomerid': 'ssoCustomerId',
} satisfies Record<string, TargetAttribute>));
/**
 * Sent on create only. TeamViewer accepts preferredLanguage and ssoCustomerId on create only; the
 * email is the login (userName wins over it, so an "always" email mapping would fight the userName
 * mapping every cycle and send verification mails), and givenName/familyName are derived from
 * displayName (an "always" mapping would flip the display name back and forth).
 */
const CREATE_ONLY: ReadonlyMap<TargetAttribute, string> = new Map([
  ['preferredLanguage', 'TeamViewer accepts it on create only'],
  ['ssoCustomerId', 'TeamViewer accepts it on create only'],
  ['emails', 'in TeamViewer the email is the login: map userName instead, or the two would fight every cycle'],
  ['name.givenName', 'TeamViewer derives it from displayName: map displayName instead'],
  ['name.familyName', 'TeamViewer derives it from displayName: map displayName instead'],
]);

export class MappingConfigError extends Error {
  readonly code = 'MAPPING_INVALID';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'MappingConfigError';
  }
}

/** Parses ATTRIBUTE_MAPPINGS; throws MappingConfigError listing every bad mapping. */
export function parseMappings(json: string | unknown): MappingRule[] {
  let raw: unknown = json;
  if (typeof json === 'string') {
    try {
      raw = JSON.parse(json);
    } catch (err) {
      throw new MappingConfigError([`not valid JSON (${(err as Error).message})`]);
    }
  }
  if (!Array.isArray(raw) || raw.length === 0) throw new MappingConfigError(['must be a non-empty JSON array of mappings']);
  const problems: string[] = [];
  const rules: MappingRule[] = [];
  const seen = new Set<TargetAttribute>();
  raw.forEach((entry, index) => {
    const where = `mapping ${index + 1}`;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`${where}: must be an object with "target" and one of "source", "constant", "expression"`);
      return;
    }
    const e = entry as Record<string, unknown>;
    const known = new Set(['target', 'source', 'constant', 'expression', 'apply', 'default']);
    for (const key of Object.keys(e)) if (!known.has(key)) problems.push(`${where}: unknown field "${key}"`);
    const target = typeof e.target === 'string' ? TARGET_ALIASES.get(e.target.trim().toLowerCase()) : undefined;
    if (!target) {
      problems.push(`${where}: target ${JSON.stringify(e.target)} is not one of userName, displayName, name.givenName, name.familyName, emails, active, preferredLanguage, ssoCustomerId`);
      return;
    }
    const label = `${where} (${target})`;
    if (seen.has(target)) problems.push(`${label}: ${target} is mapped twice`);
    seen.add(target);
    const kinds = ['source', 'constant', 'expression'].filter((k) => e[k] !== undefined);
    if (kinds.length !== 1) {
      problems.push(`${label}: needs exactly one of "source", "constant", "expression" (found ${kinds.length ? kinds.join(', ') : 'none'})`);
      return;
    }
    const apply = e.apply === undefined ? 'always' : e.apply;
    if (apply !== 'always' && apply !== 'create') problems.push(`${label}: "apply" must be "always" or "create"`);
    if (CREATE_ONLY.has(target) && apply === 'always' && e.apply !== undefined) {
      problems.push(`${label}: ${target} can only be applied on create (${CREATE_ONLY.get(target)}); use "apply": "create"`);
    }
    if (target === 'active' && apply === 'create') {
      problems.push(`${label}: active must apply always, or a reassigned user would never be re-enabled`);
    }
    if (e.default !== undefined && typeof e.default !== 'string') problems.push(`${label}: "default" must be text`);
    const rule: MappingRule = { target, applyOn: CREATE_ONLY.has(target) ? 'create' : (apply as ApplyOn) };
    if (typeof e.default === 'string') rule.defaultValue = e.default;
    if (e.source !== undefined) {
      const source = typeof e.source === 'string' ? canonicalAttribute(e.source) : null;
      if (!source) problems.push(`${label}: source ${JSON.stringify(e.source)} is not an Entra user attribute tvsync can read`);
      else rule.source = source;
    } else if (e.constant !== undefined) {
      if (typeof e.constant !== 'string' && typeof e.constant !== 'boolean') problems.push(`${label}: "constant" must be text or true/false`);
      else rule.constant = String(e.constant);
    } else {
      if (typeof e.expression !== 'string') {
        problems.push(`${label}: "expression" must be text`);
      } else {
        try {
          rule.expression = parseExpression(e.expression);
        } catch (err) {
          problems.push(`${label}: ${isExpressionError(err) ? err.message : (err as Error).message}`);
        }
      }
    }
    rules.push(rule);
  });
  if (!seen.has('userName')) problems.push('userName must be mapped (it is the TeamViewer login and the matching attribute)');
  if (problems.length) throw new MappingConfigError(problems);
  if (!seen.has('active')) rules.push({ target: 'active', expression: parseExpression(ACTIVE_EXPRESSION), applyOn: 'always' });
  return rules;
}

/** Every Entra attribute the configuration reads (for Graph's $select). */
export function attributesNeeded(config: SyncConfig): string[] {
  const names = new Set<string>();
  for (const rule of config.mappings) {
    if (rule.source) names.add(rule.source);
    for (const a of rule.expression?.attributes ?? []) names.add(a);
  }
  for (const filter of config.filters) for (const clause of filter.clauses) names.add(clause.attribute);
  // appRoleAssignments is computed, but the reader must fetch the app's role values for it.
  return [...names].filter((n) => sourceAttribute(n) && (!sourceAttribute(n)?.computed || n === 'appRoleAssignments'));
}

/**
 * A stable hash of what decides who is provisioned and how: a change starts a new initial cycle.
 * With GROUP_PROVISIONING=assigned the group settings count too (prefix and roles rename and
 * re-role every group, and an initial cycle compares TeamViewer's members and roles again);
 * with it off the hash is what it always was, so the feature changes nothing until it is on.
 */
export function configHash(config: SyncConfig, groups?: GroupSettings): string {
  const mappings = config.mappings.map((m) => ({ t: m.target, s: m.source, c: m.constant, e: m.expression?.source, a: m.applyOn, d: m.defaultValue }));
  const text = JSON.stringify({
    scope: config.scope, nested: config.expandNestedGroups, filters: canonicalScopingFilters(config.filters), mappings, skip: config.skipOutOfScopeDeletions,
    ...(groups?.provisioning === 'assigned' ? { groups: { p: groups.provisioning, prefix: groups.prefix, roles: groups.roles.map((r) => [r.group, r.role]) } } : {}),
  });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export interface DesiredValue {
  value: string | boolean | null;
  applyOn: ApplyOn;
  defaultValue?: string;
}

/** An Entra user after scoping and mapping: what TeamViewer should hold for them. */
export interface DesiredUser {
  entraId: string;
  userPrincipalName: string;
  /** In scope and enabled: should have an active TeamViewer account. */
  entitled: boolean;
  /** Why the user is not entitled: out of scope (assignment or scoping filter) or disabled. */
  notEntitled?: { kind: 'out-of-scope' | 'disabled' | 'deleted'; reason: string };
  attributes: Partial<Record<TargetAttribute, DesiredValue>>;
  /** A mapping could not be evaluated for this user: nothing is written for them. */
  error?: { code: string; message: string };
}

/** The attribute record mappings and scoping filters read, with Entra's computed attributes. */
export function sourceRecord(user: AssignedUser, isSoftDeleted: boolean): Record<string, unknown> {
  return {
    ...user.attributes,
    id: user.id,
    userPrincipalName: user.userPrincipalName,
    displayName: user.displayName,
    givenName: user.givenName,
    surname: user.surname,
    mail: user.mail,
    accountEnabled: user.accountEnabled,
    IsSoftDeleted: isSoftDeleted,
    appRoleAssignments: user.appRoleValues ?? user.appRoleIds,
  };
}

/** Applies scope, scoping filters and mappings to one user read from Entra. Never throws. */
export function mapUser(user: AssignedUser, config: SyncConfig = DEFAULT_SYNC_CONFIG): DesiredUser {
  const base = { entraId: user.id, userPrincipalName: user.userPrincipalName };
  let notEntitled: DesiredUser['notEntitled'];
  if (config.filters.length > 0) {
    const decision = evaluateScope(config.filters, sourceRecord(user, false));
    if (!decision.inScope) notEntitled = { kind: 'out-of-scope', reason: decision.reason };
  }
  if (!notEntitled && !user.accountEnabled) notEntitled = { kind: 'disabled', reason: 'the account is disabled in Entra ID (accountEnabled=false)' };

  const record = sourceRecord(user, notEntitled !== undefined);
  const attributes: DesiredUser['attributes'] = {};
  try {
    for (const rule of config.mappings) {
      attributes[rule.target] = { value: evaluateRule(rule, record, user), applyOn: rule.applyOn, ...(rule.defaultValue !== undefined ? { defaultValue: rule.defaultValue } : {}) };
    }
  } catch (err) {
    const message = `mapping for ${user.userPrincipalName} failed: ${(err as Error).message}`;
    return { ...base, entitled: false, notEntitled, attributes, error: { code: isExpressionError(err) ? err.code : 'MAPPING_FAILED', message } };
  }
  const userName = attributes.userName?.value;
  if (typeof userName !== 'string' || userName.trim() === '') {
    return { ...base, entitled: false, notEntitled, attributes, error: { code: 'MAPPING_EMPTY_USERNAME', message: `the userName mapping gave no value for ${user.userPrincipalName}` } };
  }
  return { ...base, entitled: notEntitled === undefined, ...(notEntitled ? { notEntitled } : {}), attributes };
}

function evaluateRule(rule: MappingRule, record: Record<string, unknown>, user: AssignedUser): string | boolean | null {
  let value: unknown;
  if (rule.constant !== undefined) value = rule.constant;
  else if (rule.source !== undefined) value = readAttribute(record, rule.source);
  else if (rule.expression) value = evaluateExpression(rule.expression, { attributes: record, appRoleAssignments: user.appRoleValues ?? user.appRoleIds });
  if (rule.target === 'active') {
    if (value === null || value === undefined || value === '') return null;
    const bool = typeof value === 'boolean' ? value : expressionValueToBoolean(String(value) as never);
    if (bool === undefined) throw Object.assign(new Error(`active must be True or False, got ${JSON.stringify(value)}`), { code: 'MAPPING_NOT_BOOLEAN' });
    return bool;
  }
  if (value === null || value === undefined) return null;
  const text = typeof value === 'string' ? value : expressionValueToText(value as never);
  return text === null || text === '' ? null : text;
}

function str(value: DesiredValue | undefined): string | undefined {
  if (typeof value?.value === 'string' && value.value !== '') return value.value;
  return value?.defaultValue || undefined;
}

/** The body of a create: every mapped attribute with a value (defaults apply here only). */
export function draftFor(user: DesiredUser): TeamViewerUserDraft {
  const a = user.attributes;
  const draft: TeamViewerUserDraft = {
    userName: str(a.userName) ?? user.userPrincipalName,
    active: user.entitled && a.active?.value !== false,
  };
  const displayName = str(a.displayName);
  if (displayName) draft.displayName = displayName;
  const givenName = str(a['name.givenName']);
  if (givenName) draft.givenName = givenName;
  const familyName = str(a['name.familyName']);
  if (familyName) draft.familyName = familyName;
  const email = str(a.emails);
  if (email) draft.email = email;
  const language = str(a.preferredLanguage);
  if (language) draft.preferredLanguage = language;
  const sso = str(a.ssoCustomerId);
  if (sso) draft.ssoCustomerId = sso;
  return draft;
}

export type { AttributeChange } from '../domain/model';

const PATCHABLE: Array<[TargetAttribute, keyof TeamViewerPatch, keyof TeamViewerUser]> = [
  ['userName', 'userName', 'userName'],
  ['displayName', 'displayName', 'displayName'],
  ['name.givenName', 'givenName', 'givenName'],
  ['name.familyName', 'familyName', 'familyName'],
  ['emails', 'email', 'email'],
  ['active', 'active', 'active'],
];

/** The TeamViewer attribute (a key of TeamViewerUser and TeamViewerPatch) a mapping target writes, if it can be changed. */
export function teamViewerAttribute(target: string): (keyof TeamViewerPatch & keyof TeamViewerUser) | undefined {
  return PATCHABLE.find(([t]) => t === target)?.[1] as (keyof TeamViewerPatch & keyof TeamViewerUser) | undefined;
}

/**
 * Whether two values of a mapping target are the same to TeamViewer. userName and email compare
 * without case: TeamViewer logins are email addresses, and a case-only PATCH would send the user
 * a pointless verification mail.
 */
export function sameValue(target: string, a: string | boolean | null | undefined, b: string | boolean | null | undefined): boolean {
  const caseless = target === 'userName' || target === 'emails' || target === 'email';
  return caseless && typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : (a ?? null) === (b ?? null);
}

/**
 * What must change on an existing TeamViewer user so it matches `user`: "apply always" mappings
 * only, nulls never sent. userName and email compare without case: TeamViewer logins are email
 * addresses, and a case-only PATCH would send the user a pointless verification mail.
 */
export function diff(user: DesiredUser, current: TeamViewerUser): { patch: TeamViewerPatch; changes: AttributeChange[] } {
  const patch: TeamViewerPatch = {};
  const changes: AttributeChange[] = [];
  for (const [target, patchKey, currentKey] of PATCHABLE) {
    const desired = user.attributes[target];
    if (!desired || desired.applyOn !== 'always' || desired.value === null || desired.value === '') continue;
    const now = current[currentKey] as string | boolean | null;
    if (sameValue(target, desired.value, now)) continue;
    (patch as Record<string, string | boolean>)[patchKey] = desired.value;
    changes.push({ attribute: target, old: now ?? null, new: desired.value });
  }
  return { patch, changes };
}
