/**
 * A TeamViewer SCIM 2.0 + Web API v1 emulator: a real node:http server on 127.0.0.1, faithful to
 * /work/shared/spec/teamviewer-scim.md (documented behaviour, and the ASSUMED choices noted there).
 *
 * Invariants the emulator keeps, as TeamViewer does:
 * - userName is the email and the login; emails are unique across the company and against
 *   `externalEmails` (accounts of other companies), compared without case (ASSUMED: TeamViewer
 *   would not let two accounts differ only by case).
 * - The stored name is displayName only; givenName/familyName are always derived from it.
 * - Create-only attributes (password, preferredLanguage, ssoCustomerId) are stored, never returned.
 * - Users keep creation order, so paging is stable while nobody writes.
 *
 * Emulator-only conveniences beyond TeamViewer: `inject()` faults, `quirks` (to reproduce known
 * server oddities such as `startIndex: 0`), request log, and an in-flight high-water mark.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createUserGroups, type UserGroupsEmulator, type UserGroupsEmulatorOptions } from './teamviewer-usergroups';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const SSO_SCHEMA = 'urn:ietf:params:scim:schemas:extension:teamviewer:1.0:SsoUser';
const PATCH_SCHEMAS = ['urn:ietf:params:scim:api:messages:2.0:PatchOp', 'urn:ietf:params:scim:schemas:core:2.0:PatchOp'];

export interface TeamViewerEmulatorOptions {
  /** The valid bearer token (default: random). */
  token?: string;
  port?: number;
  /** Requests per sliding second per token; above it 403 rate_limit_reached. Default unlimited. */
  rateLimitPerSecond?: number;
  /** Added before every answer. */
  latencyMs?: number;
  /** The account that owns the token (seeded as a user; what /api/v1/account returns). */
  tokenOwner?: { userName: string; name: string };
  /** Emails registered to TeamViewer accounts outside this company: creating them → 409. */
  externalEmails?: string[];
  /** Known oddities of the real service, off by default. */
  quirks?: {
    /** ListResponse says `startIndex: 0` whatever was asked (TeamViewer's own docs example). */
    startIndexZero?: boolean;
    /** ListResponse claims this many more results than exist (a server that loses users mid-paging). */
    extraTotalResults?: number;
    /** At most this many users per page, whatever `count` asks (a server with its own page limit). */
    maxCount?: number;
  };
  /** Web API user groups and roles (test/emulators/teamviewer-usergroups.ts). */
  userGroups?: UserGroupsEmulatorOptions;
}

export interface EmulatedTeamViewerUser {
  id: string;
  userName: string;
  email: string;
  displayName: string;
  /** Derived from displayName, as TeamViewer returns them. */
  givenName: string | null;
  familyName: string | null;
  active: boolean;
  /** Create-only attributes: stored, never returned over SCIM. */
  preferredLanguage: string;
  ssoCustomerId: string | null;
  hasPassword: boolean;
  /** Where the user came from: SCIM POST or the Management Console (seed). */
  createdBy: 'scim' | 'console';
}

export interface TeamViewerFault {
  /** hang: the request is read and never answered (the connection stays open); 'timeout' is the older name. */
  kind: 'status' | 'hang' | 'timeout' | 'reset' | 'rateLimit' | 'status429';
  /** For 'status' (default 500). */
  status?: number;
  /** For 'status429' (default 1); sent with 'rateLimit' and 'status' only when given. */
  retryAfterSeconds?: number;
  /** How many matching requests it hits. */
  times: number;
  method?: string;
  pathIncludes?: string;
  /** Carry the request out first, then fail (a write that landed but whose answer was lost). */
  applyFirst?: boolean;
}

export interface TeamViewerEmulator {
  /** SCIM base, e.g. http://127.0.0.1:PORT/scim/v2 */
  url: string;
  /** Web API base, e.g. http://127.0.0.1:PORT/api/v1 */
  apiUrl: string;
  token: string;
  users(): EmulatedTeamViewerUser[];
  seed(u: { userName: string; displayName?: string; active?: boolean; email?: string }): EmulatedTeamViewerUser;
  remove(id: string): void;
  /** What an admin does by hand in the Management Console: re-enable or deactivate a user, rename them. */
  editByHand(id: string, change: { active?: boolean; displayName?: string }): void;
  setToken(token: string): void;
  /** Every request, in arrival order; `path` includes the query string; status 0 = no answer. */
  requests: Array<{ method: string; path: string; status: number }>;
  writes(): number;
  resetRequests(): void;
  inject(fault: TeamViewerFault): void;
  /** Drops faults that have not fired yet. */
  clearFaults(): void;
  /** Holds every request that arrives until the returned function is called: a slow TeamViewer on cue. */
  hold(): () => void;
  /** Most requests that were being handled at the same time since start or resetRequests(). */
  peakInFlight(): number;
  /** The company's user groups and roles, and what an admin does to them by hand. */
  userGroups: UserGroupsEmulator;
  /** Connections a 'hang' fault holds that the client has not closed yet. */
  hanging(): number;
  /** Changes `latencyMs` and `rateLimitPerSecond` (undefined: unlimited) from the next request on. */
  setPace(pace: { latencyMs: number; rateLimitPerSecond?: number }): void;
  close(): Promise<void>;
}

interface StoredUser {
  id: string;
  userName: string;
  email: string;
  displayName: string;
  active: boolean;
  preferredLanguage: string;
  ssoCustomerId: string | null;
  hasPassword: boolean;
  createdBy: 'scim' | 'console';
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

class ScimProblem extends Error {
  constructor(readonly status: number, readonly scimType: string | undefined, detail: string) {
    super(detail);
  }
}

function scimError(status: number, detail: string, scimType?: string): Answer {
  const body: Record<string, unknown> = { schemas: [ERROR_SCHEMA], status: String(status), detail };
  if (scimType) body.scimType = scimType;
  return { status, body };
}

function webApiError(status: number, error: string, description: string, code: number): Answer {
  return { status, body: { error, error_description: description, error_code: code } };
}

/** givenName = text before the first space, familyName = the rest; both null without a space. */
function splitName(displayName: string): { givenName: string | null; familyName: string | null } {
  const at = displayName.indexOf(' ');
  if (at < 0) return { givenName: null, familyName: null };
  return { givenName: displayName.slice(0, at), familyName: displayName.slice(at + 1) };
}

function checkName(name: string): string {
  if (name.length < 2 || name.length > 50) {
    throw new ScimProblem(400, 'invalidValue', `The name must be between 2 and 50 characters long (got ${name.length}).`);
  }
  return name;
}

function checkEmail(value: unknown, attribute: string): string {
  if (typeof value !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(value)) {
    throw new ScimProblem(400, 'invalidValue', `${attribute} must be a valid email address.`);
  }
  return value;
}

function toBoolean(value: unknown, attribute: string): boolean {
  if (typeof value === 'boolean') return value;
  // Entra has been known to send "True"/"False" as strings; TeamViewer accepts them (ASSUMED).
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw new ScimProblem(400, 'invalidValue', `${attribute} must be a boolean.`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, attribute: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ScimProblem(400, 'invalidValue', `${attribute} must be a string.`);
  return value;
}

/** The first email value in a SCIM `emails` array (primary first). */
function emailFrom(emails: unknown): string | undefined {
  if (emails === undefined || emails === null) return undefined;
  if (!Array.isArray(emails)) throw new ScimProblem(400, 'invalidValue', 'emails must be an array.');
  const entries = emails.filter(isObject);
  const chosen = entries.find((e) => e.primary === true) ?? entries[0];
  return chosen ? optionalString(chosen.value, 'emails.value') : undefined;
}

/** Name by TeamViewer's input precedence: displayName > name.formatted > givenName + " " + familyName. */
function nameFrom(body: Record<string, unknown>): string | undefined {
  const displayName = optionalString(body.displayName, 'displayName');
  if (displayName !== undefined) return displayName;
  if (body.name === undefined || body.name === null) return undefined;
  if (!isObject(body.name)) throw new ScimProblem(400, 'invalidValue', 'name must be an object.');
  const formatted = optionalString(body.name.formatted, 'name.formatted');
  if (formatted !== undefined) return formatted;
  const parts = [optionalString(body.name.givenName, 'name.givenName'), optionalString(body.name.familyName, 'name.familyName')]
    .filter((p): p is string => p !== undefined && p !== '');
  return parts.length ? parts.join(' ') : undefined;
}

type FilterOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew';
interface Filter {
  attribute: 'userName' | 'emails.value' | 'name' | 'displayName';
  op: FilterOp;
  value: string;
}

const FILTER_ATTRIBUTES: Record<string, Filter['attribute']> = {
  username: 'userName',
  'emails.value': 'emails.value',
  name: 'name',
  displayname: 'displayName',
};

/** Parses `attr op "value"` (one comparison: TeamViewer supports no and/or/not). */
function parseFilter(text: string): Filter {
  const invalid = (why: string) => new ScimProblem(400, 'invalidFilter', `The filter is invalid: ${why}.`);
  const head = /^\s*([A-Za-z][A-Za-z0-9.]*)\s+([A-Za-z]+)\s+/.exec(text);
  if (!head) throw invalid('expected <attribute> <operator> "<value>"');
  const attribute = FILTER_ATTRIBUTES[head[1]!.toLowerCase()];
  if (!attribute) throw invalid(`filtering on "${head[1]}" is not supported`);
  const op = head[2]!.toLowerCase();
  if (!['eq', 'ne', 'co', 'sw', 'ew'].includes(op)) throw invalid(`operator "${head[2]}" is not supported`);
  let rest = text.slice(head[0].length);
  if (!rest.startsWith('"')) throw invalid('the value must be a quoted string');
  let value = '';
  let i = 1;
  for (; i < rest.length; i++) {
    const c = rest[i]!;
    if (c === '"') break;
    if (c === '\\') {
      const next = rest[i + 1];
      if (next !== '"' && next !== '\\') throw invalid('only \\" and \\\\ escapes are allowed in a value');
      value += next;
      i++;
    } else {
      value += c;
    }
  }
  if (i >= rest.length) throw invalid('the value is not closed by a quote');
  rest = rest.slice(i + 1);
  if (rest.trim() !== '') throw invalid('unexpected text after the value');
  return { attribute, op: op as FilterOp, value };
}

function matches(user: StoredUser, filter: Filter): boolean {
  const actual = filter.attribute === 'userName' ? user.userName
    : filter.attribute === 'emails.value' ? user.email
    : user.displayName;
  switch (filter.op) {
    case 'eq': return actual === filter.value;
    case 'ne': return actual !== filter.value;
    case 'co': return actual.includes(filter.value);
    case 'sw': return actual.startsWith(filter.value);
    case 'ew': return actual.endsWith(filter.value);
  }
}

function resource(user: StoredUser, withSchemas: boolean): Record<string, unknown> {
  const { givenName, familyName } = splitName(user.displayName);
  return {
    ...(withSchemas ? { schemas: [USER_SCHEMA] } : {}),
    id: user.id,
    userName: user.userName,
    name: { formatted: user.displayName, givenName, familyName },
    displayName: user.displayName,
    emails: [{ primary: true, value: user.email }],
    active: user.active,
  };
}

function publicUser(user: StoredUser): EmulatedTeamViewerUser {
  return { ...user, ...splitName(user.displayName) };
}

function integerParam(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  if (!/^-?\d+$/.test(raw.trim())) throw new ScimProblem(400, 'invalidValue', `${name} must be an integer.`);
  return Number(raw);
}

export async function startTeamViewerEmulator(opts: TeamViewerEmulatorOptions = {}): Promise<TeamViewerEmulator> {
  let token = opts.token ?? randomBytes(24).toString('base64url');
  const store = new Map<string, StoredUser>();
  const external = new Set((opts.externalEmails ?? []).map((e) => e.toLowerCase()));
  const faults: TeamViewerFault[] = [];
  const requests: TeamViewerEmulator['requests'] = [];
  const windows = new Map<string, number[]>();
  const heldSockets = new Set<Socket>();
  let nextId = 1_000_000 + Math.floor(Math.random() * 8_000_000);
  let ownerId: string | null = null;
  let inFlight = 0;
  let peak = 0;
  const userGroups = createUserGroups({ nameOf: (accountId) => store.get(`u${accountId}`)?.displayName }, opts.userGroups);
  let pace: { latencyMs: number; rateLimitPerSecond?: number } = { latencyMs: opts.latencyMs ?? 0, rateLimitPerSecond: opts.rateLimitPerSecond };
  // Lower-cased email and userName → ids of the users holding it, and each user's place in
  // creation order: uniqueness checks and `eq` filters without scanning the store. Kept by
  // insert, update and remove, the only places that change those attributes.
  const holders = new Map<string, Set<string>>();
  const created = new Map<string, number>();
  const hold = (user: StoredUser, on: boolean): void => {
    for (const key of new Set([user.email.toLowerCase(), user.userName.toLowerCase()])) {
      const ids = holders.get(key) ?? new Set<string>();
      if (on) ids.add(user.id);
      else ids.delete(user.id);
      if (ids.size > 0) holders.set(key, ids);
      else holders.delete(key);
    }
  };

  const emailTaken = (email: string, exceptId?: string): boolean => {
    const lower = email.toLowerCase();
    if (external.has(lower)) return true;
    for (const id of holders.get(lower) ?? []) if (id !== exceptId) return true;
    return false;
  };

  const insert = (user: Omit<StoredUser, 'id'>): StoredUser => {
    const stored: StoredUser = { id: `u${nextId++}`, ...user };
    store.set(stored.id, stored);
    created.set(stored.id, created.size);
    hold(stored, true);
    return stored;
  };

  const seed: TeamViewerEmulator['seed'] = (u) => {
    const email = u.email ?? u.userName;
    if (emailTaken(u.userName) || emailTaken(email)) throw new Error(`emulator: ${u.userName} is already registered`);
    const displayName = u.displayName ?? u.userName.split('@')[0]!;
    return publicUser(insert({
      userName: u.userName, email, displayName, active: u.active ?? true,
      preferredLanguage: 'en', ssoCustomerId: null, hasPassword: true, createdBy: 'console',
    }));
  };

  if (opts.tokenOwner) ownerId = seed({ userName: opts.tokenOwner.userName, displayName: opts.tokenOwner.name }).id;

  const createUser = (body: unknown): Answer => {
    if (!isObject(body)) throw new ScimProblem(400, 'invalidSyntax', 'The request body must be a User object.');
    if (!Array.isArray(body.schemas) || !body.schemas.includes(USER_SCHEMA)) {
      throw new ScimProblem(400, 'invalidSyntax', `schemas must contain ${USER_SCHEMA}.`);
    }
    // userName is the login and wins over emails.
    const login = optionalString(body.userName, 'userName') ?? emailFrom(body.emails);
    if (login === undefined) throw new ScimProblem(400, 'invalidValue', 'userName is required.');
    checkEmail(login, 'userName');
    const name = nameFrom(body);
    if (name === undefined) throw new ScimProblem(400, 'invalidValue', 'displayName is required.');
    checkName(name);
    const active = body.active === undefined ? true : toBoolean(body.active, 'active');
    const extension = body[SSO_SCHEMA];
    const ssoCustomerId = isObject(extension) ? optionalString(extension.ssoCustomerId, 'ssoCustomerId') ?? null : null;
    const password = optionalString(body.password, 'password');
    const preferredLanguage = optionalString(body.preferredLanguage, 'preferredLanguage') ?? 'en';
    if (emailTaken(login)) throw new ScimProblem(409, 'uniqueness', 'The email address is already in use by another TeamViewer account.');
    const user = insert({
      userName: login, email: login, displayName: name, active,
      preferredLanguage, ssoCustomerId, hasPassword: password !== undefined, createdBy: 'scim',
    });
    return { status: 201, body: resource(user, true) };
  };

  /** Applies a full replacement (PUT) or the collected PATCH changes, validating before storing. */
  const update = (user: StoredUser, next: { login?: string; name?: string; active?: boolean }): Answer => {
    if (next.login !== undefined) {
      checkEmail(next.login, 'userName');
      if (emailTaken(next.login, user.id)) throw new ScimProblem(409, 'uniqueness', 'The email address is already in use by another TeamViewer account.');
    }
    if (next.name !== undefined) checkName(next.name);
    if (next.login !== undefined) {
      hold(user, false);
      user.userName = next.login;
      user.email = next.login;
      hold(user, true);
    }
    if (next.name !== undefined) user.displayName = next.name;
    if (next.active !== undefined) user.active = next.active;
    return { status: 200, body: resource(user, true) };
  };

  const replaceUser = (user: StoredUser, body: unknown): Answer => {
    if (!isObject(body)) throw new ScimProblem(400, 'invalidSyntax', 'The request body must be a User object.');
    const login = optionalString(body.userName, 'userName') ?? emailFrom(body.emails);
    if (login === undefined) throw new ScimProblem(400, 'invalidValue', 'userName is required.');
    const name = nameFrom(body);
    if (name === undefined) throw new ScimProblem(400, 'invalidValue', 'displayName is required.');
    const active = body.active === undefined ? true : toBoolean(body.active, 'active');
    return update(user, { login, name, active });
  };

  const patchUser = (user: StoredUser, body: unknown): Answer => {
    if (!isObject(body) || !Array.isArray(body.schemas) || !body.schemas.some((s) => PATCH_SCHEMAS.includes(s as string))) {
      throw new ScimProblem(400, 'invalidSyntax', `schemas must contain ${PATCH_SCHEMAS[0]}.`);
    }
    if (!Array.isArray(body.Operations) || body.Operations.length === 0) {
      throw new ScimProblem(400, 'invalidSyntax', 'Operations must be a non-empty array.');
    }
    // Collected first, resolved once: the same precedence as on create decides the name.
    const staged: { userName?: string; email?: string; displayName?: string; formatted?: string; givenName?: string; familyName?: string; active?: boolean } = {};
    const assign = (path: string, value: unknown): void => {
      switch (path.toLowerCase()) {
        case 'username': staged.userName = optionalString(value, 'userName'); break;
        case 'displayname': staged.displayName = optionalString(value, 'displayName'); break;
        case 'emails.value': staged.email = optionalString(value, 'emails.value'); break;
        case 'emails': staged.email = emailFrom(value); break;
        case 'name.formatted': staged.formatted = optionalString(value, 'name.formatted'); break;
        case 'name.givenname': staged.givenName = optionalString(value, 'name.givenName'); break;
        case 'name.familyname': staged.familyName = optionalString(value, 'name.familyName'); break;
        case 'name':
          if (!isObject(value)) throw new ScimProblem(400, 'invalidValue', 'name must be an object.');
          for (const [key, inner] of Object.entries(value)) assign(`name.${key}`, inner);
          break;
        case 'active': staged.active = toBoolean(value, 'active'); break;
        default: throw new ScimProblem(400, 'invalidPath', `The attribute "${path}" cannot be changed.`);
      }
    };
    for (const operation of body.Operations) {
      if (!isObject(operation)) throw new ScimProblem(400, 'invalidSyntax', 'Each operation must be an object.');
      if (typeof operation.op !== 'string' || operation.op.toLowerCase() !== 'replace') {
        throw new ScimProblem(400, 'invalidValue', `Only the "replace" operation is supported (got "${String(operation.op)}").`);
      }
      if (operation.path !== undefined) {
        if (typeof operation.path !== 'string') throw new ScimProblem(400, 'invalidPath', 'path must be a string.');
        assign(operation.path, operation.value);
      } else {
        if (!isObject(operation.value)) throw new ScimProblem(400, 'invalidValue', 'Without a path, value must be a User object.');
        for (const [key, inner] of Object.entries(operation.value)) {
          // Unknown keys (schemas, id, ...) are ignored, as SCIM servers commonly do.
          if (['username', 'displayname', 'emails', 'emails.value', 'name', 'name.formatted', 'name.givenname', 'name.familyname', 'active'].includes(key.toLowerCase())) {
            assign(key, inner);
          }
        }
      }
    }
    let name: string | undefined = staged.displayName ?? staged.formatted;
    if (name === undefined && (staged.givenName !== undefined || staged.familyName !== undefined)) {
      const current = splitName(user.displayName);
      const given = staged.givenName ?? current.givenName ?? user.displayName;
      const family = staged.familyName ?? current.familyName;
      name = [given, family].filter((p) => p !== null && p !== '').join(' ');
    }
    return update(user, { login: staged.userName ?? staged.email, name, active: staged.active });
  };

  /** The users a filter can match, in creation order: for `eq` on the login or email, from the index. */
  const candidates = (filter: Filter): StoredUser[] => {
    if (filter.op !== 'eq' || filter.attribute === 'name' || filter.attribute === 'displayName') return [...store.values()];
    return [...(holders.get(filter.value.toLowerCase()) ?? [])]
      .map((id) => store.get(id)!)
      .sort((a, b) => created.get(a.id)! - created.get(b.id)!);
  };

  const listUsers = (params: URLSearchParams): Answer => {
    const filterText = params.get('filter');
    const filter = filterText === null ? undefined : parseFilter(filterText);
    const startIndex = Math.max(1, integerParam(params, 'startIndex') ?? 1);
    const asked = integerParam(params, 'count');
    const cap = opts.quirks?.maxCount;
    const count = cap === undefined ? asked : Math.min(asked ?? cap, cap);
    const all = (filter ? candidates(filter) : [...store.values()]).filter((u) => !filter || matches(u, filter));
    const from = startIndex - 1;
    const page = count === undefined ? all.slice(from) : all.slice(from, from + Math.max(0, count));
    return {
      status: 200,
      body: {
        schemas: [LIST_SCHEMA],
        totalResults: all.length + (opts.quirks?.extraTotalResults ?? 0),
        itemsPerPage: page.length,
        startIndex: opts.quirks?.startIndexZero ? 0 : startIndex,
        Resources: page.map((u) => resource(u, false)),
      },
    };
  };

  const scim = (method: string, route: string, params: URLSearchParams, body: unknown): Answer => {
    if (route === '/Users') {
      if (method === 'GET') return listUsers(params);
      if (method === 'POST') return createUser(body);
      return scimError(405, `${method} is not supported on /Users.`);
    }
    const match = /^\/Users\/([^/]+)$/.exec(route);
    if (!match) return scimError(404, `No resource at ${route}.`);
    // TeamViewer cannot delete users over SCIM: deprovisioning is deactivation (ASSUMED: 405).
    if (method === 'DELETE') return scimError(405, 'Users cannot be deleted over SCIM; set active to false instead.');
    const user = store.get(decodeURIComponent(match[1]!));
    if (!['GET', 'PUT', 'PATCH'].includes(method)) return scimError(405, `${method} is not supported on /Users/{id}.`);
    if (!user) return scimError(404, `User ${match[1]} not found.`);
    if (method === 'GET') return { status: 200, body: resource(user, true) };
    if (method === 'PUT') return replaceUser(user, body);
    return patchUser(user, body);
  };

  const webApi = (method: string, route: string): Answer => {
    if (route === '/account' && method === 'GET') {
      const owner = ownerId ? store.get(ownerId) : undefined;
      // ASSUMED: a token not owned by a user account (or an owner since removed) has no account.
      if (!owner) return webApiError(404, 'not_found', 'No account is associated with this token.', 4);
      return { status: 200, body: { userid: owner.id, name: owner.displayName, email: owner.email } };
    }
    return webApiError(404, 'not_found', `No resource at ${route}.`, 4);
  };

  const rateLimited = (presented: string): boolean => {
    if (!pace.rateLimitPerSecond) return false;
    const now = Date.now();
    const recent = (windows.get(presented) ?? []).filter((t) => t > now - 1000);
    windows.set(presented, recent);
    if (recent.length >= pace.rateLimitPerSecond) return true;
    recent.push(now);
    return false;
  };

  const takeFault = (method: string, path: string): TeamViewerFault | undefined => {
    const index = faults.findIndex((f) => f.times > 0
      && (!f.method || f.method.toUpperCase() === method)
      && (!f.pathIncludes || path.includes(f.pathIncludes)));
    if (index < 0) return undefined;
    const fault = faults[index]!;
    fault.times--;
    if (fault.times <= 0) faults.splice(index, 1);
    return fault;
  };

  const rateLimitAnswer = (retryAfterSeconds?: number): Answer => ({
    ...webApiError(403, 'rate_limit_reached', 'Too many calls to a single function with the same access token.', 429),
    ...(retryAfterSeconds !== undefined ? { headers: { 'Retry-After': String(retryAfterSeconds) } } : {}),
  });

  const answerFor = (method: string, url: URL, presented: string | null, rawBody: string): Answer => {
    const path = url.pathname.replace(/\/+$/, '');
    // ping answers without a valid token: that is its purpose.
    if (path === '/api/v1/ping' && method === 'GET') return { status: 200, body: { token_valid: presented === token } };
    if (presented !== token) {
      return {
        ...webApiError(401, 'invalid_token', 'The access token is missing, invalid, expired or revoked.', 1),
        headers: { 'WWW-Authenticate': 'Bearer' },
      };
    }
    if (rateLimited(presented)) return rateLimitAnswer();
    let body: unknown;
    if (rawBody.trim() !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        return path.startsWith('/api/v1') ? webApiError(400, 'invalid_request', 'The body is not valid JSON.', 2)
          : scimError(400, 'The body is not valid JSON.', 'invalidSyntax');
      }
    }
    try {
      if (path.startsWith('/scim/v2')) return scim(method, path.slice('/scim/v2'.length), url.searchParams, body);
      if (path.startsWith('/api/v1')) {
        const route = path.slice('/api/v1'.length);
        return userGroups.handle(method, route, url.searchParams, body) ?? webApi(method, route);
      }
      return webApiError(404, 'not_found', `No resource at ${path}.`, 4);
    } catch (error) {
      if (error instanceof ScimProblem) return scimError(error.status, error.message, error.scimType);
      throw error;
    }
  };

  const write = (res: http.ServerResponse, answer: Answer): void => {
    const headers: Record<string, string> = { ...answer.headers };
    let text = '';
    if (answer.body !== undefined) {
      text = JSON.stringify(answer.body);
      // SCIM bodies (they carry schemas) go out as SCIM; Web API bodies (auth, throttling) as JSON.
      headers['Content-Type'] = isObject(answer.body) && 'schemas' in answer.body
        ? 'application/scim+json; charset=utf-8' : 'application/json; charset=utf-8';
    }
    res.writeHead(answer.status, headers);
    res.end(text);
  };

  /** While set, requests wait until it opens (see hold()). */
  let gate: { opened: Promise<void>; open: () => void } | null = null;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawPath = req.url ?? '/';
    const record = { method, path: rawPath, status: 0 };
    requests.push(record);
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on('close', () => inFlight--);

    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (pace.latencyMs) await new Promise((resolve) => setTimeout(resolve, pace.latencyMs));
    if (gate) await gate.opened;

    const url = new URL(rawPath, 'http://127.0.0.1');
    const scimPath = url.pathname.startsWith('/scim/');
    const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    const presented = auth ? auth[1]!.trim() : null;
    const fault = takeFault(method, rawPath);
    if (fault?.applyFirst) answerFor(method, url, presented, Buffer.concat(chunks).toString('utf8'));

    if (fault?.kind === 'hang' || fault?.kind === 'timeout') {
      // Hold the socket: the client gives up on its own; close() destroys what is left.
      heldSockets.add(req.socket);
      req.socket.once('close', () => heldSockets.delete(req.socket));
      return;
    }
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    let answer: Answer;
    if (fault?.kind === 'rateLimit') answer = rateLimitAnswer(fault.retryAfterSeconds);
    else if (fault?.kind === 'status429') {
      answer = {
        ...webApiError(429, 'too_many_requests', 'Too many requests.', 429),
        headers: { 'Retry-After': String(fault.retryAfterSeconds ?? 1) },
      };
    } else if (fault?.kind === 'status') {
      const status = fault.status ?? 500;
      answer = scimPath ? scimError(status, `The service answered ${status} (injected fault).`)
        : webApiError(status, 'internal_error', `The service answered ${status} (injected fault).`, 3);
      if (fault.retryAfterSeconds !== undefined) answer.headers = { 'Retry-After': String(fault.retryAfterSeconds) };
    } else {
      answer = answerFor(method, url, presented, Buffer.concat(chunks).toString('utf8'));
    }
    record.status = answer.status;
    write(res, answer);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal_error', error_description: String(error), error_code: 3 }));
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;

  const emulator: TeamViewerEmulator = {
    url: `${base}/scim/v2`,
    apiUrl: `${base}/api/v1`,
    get token() {
      return token;
    },
    users: () => [...store.values()].map(publicUser),
    seed,
    remove: (id) => {
      const user = store.get(id);
      if (user) hold(user, false);
      store.delete(id);
    },
    editByHand: (id, change) => {
      const user = store.get(id);
      if (!user) throw new Error(`no TeamViewer user ${id}`);
      if (change.active !== undefined) user.active = change.active;
      if (change.displayName !== undefined) user.displayName = change.displayName;
    },
    setToken: (next) => {
      token = next;
    },
    requests,
    writes: () => requests.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)).length,
    resetRequests: () => {
      requests.length = 0;
      peak = inFlight;
    },
    inject: (fault) => {
      faults.push({ ...fault });
    },
    hold: () => {
      if (!gate) {
        let open!: () => void;
        const opened = new Promise<void>((resolve) => (open = resolve));
        gate = { opened, open };
      }
      const held = gate;
      return () => {
        if (gate === held) gate = null;
        held.open();
      };
    },
    clearFaults: () => {
      faults.length = 0;
    },
    peakInFlight: () => peak,
    userGroups,
    hanging: () => heldSockets.size,
    setPace: (next) => {
      pace = { ...next };
    },
    close: async () => {
      gate?.open();
      gate = null;
      for (const socket of heldSockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return emulator;
}
