/**
 * Microsoft Graph emulator (https, v1.0): the slice of Graph the Entra reader uses, with Graph's
 * JSON shapes, paging, $batch, bearer-token checks and injectable faults.
 *
 *   GET  /v1.0/servicePrincipals/{id}
 *   GET  /v1.0/servicePrincipals/{id}/appRoleAssignedTo                 paged
 *   GET  /v1.0/groups                                                   paged, $filter (eq, in): id and displayName
 *   GET  /v1.0/groups/{id}/members/microsoft.graph.user                 paged, direct members only
 *   GET  /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user       paged, nested groups expanded
 *   GET  /v1.0/users/{id|upn}/memberOf|transitiveMemberOf/microsoft.graph.group   a user's groups
 *   GET  /v1.0/users/{id | userPrincipalName}
 *   GET  /v1.0/users                                                    paged, $filter (eq, in)
 *   GET  /v1.0/users/delta                                              delta rounds, @removed, $filter=id eq … or …
 *   GET  /v1.0/groups/delta                                             delta rounds, members@delta, same $filter
 *   GET  /v1.0/directory/deletedItems/microsoft.graph.user              paged, $filter (eq, in)
 *   GET  /v1.0/directory/deletedItems/{id}
 *   POST /v1.0/$batch                                                   ≤ 20 GET sub-requests
 *
 * Invariants:
 * - The tenant is read on every request, never cached: tests change `emulator.tenant` between
 *   cycles and the next request sees the change.
 * - A page never holds more than `pageSize` items, whatever $top asks for; every page but the last
 *   carries an absolute `@odata.nextLink` whose $skiptoken is opaque and bound to its path.
 * - Like real Graph, users come back with the default property set unless $select names others
 *   (so `accountEnabled` is missing without $select — a reader that forgets $select notices).
 * - A fault fires on requests (and, when it has `pathIncludes`, on $batch sub-requests) only after
 *   authentication, so a 401 never consumes one.
 * - A soft-deleted user (`deletedDateTime` set) exists only in the deleted items: /users, group
 *   members and appRoleAssignedTo leave it (and its assignments) out until it is restored. A
 *   hard-deleted user is simply absent from `tenant.users`.
 * - A delta token remembers a snapshot of what its round reported; the next round is the tenant
 *   now compared with that snapshot, so direct edits of `tenant` show up in delta like changes
 *   made through the helpers. Tokens stay valid until `expireDeltaTokens()`.
 */
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntraUser } from '../../shared/domain/model';

export interface EmulatedAppRole {
  id: string;
  value: string | null;
  displayName: string;
  allowedMemberTypes?: string[];
  isEnabled?: boolean;
}

export interface EmulatedTenant {
  servicePrincipals: Array<{ id: string; appId: string; displayName: string; appRoles?: EmulatedAppRole[] }>;
  users: Array<EntraUser & {
    department?: string | null;
    jobTitle?: string | null;
    /** As Graph nests them: { extensionAttribute1: ..., ... }; missing keys read as null. */
    onPremisesExtensionAttributes?: Record<string, string | null>;
    /** Set: soft-deleted (in the deleted items, restorable). */
    deletedDateTime?: string | null;
    [k: string]: unknown;
  }>;
  groups: Array<{ id: string; displayName: string; members: string[] /* user, group or SP ids */ }>;
  assignments: Array<{
    id: string;
    resourceId: string;
    principalId: string;
    principalType: 'User' | 'Group' | 'ServicePrincipal';
    appRoleId: string;
  }>;
}

export interface GraphFault {
  /**
   * throttle: 429 + Retry-After; status: any status (e.g. 403, 500, 503); reset: the socket is
   * destroyed; dropLinks: a normal 200 answer without its @odata.nextLink / @odata.deltaLink;
   * hang: the request is read and never answered (the connection stays open until the client
   * gives up, or close()). reset and hang hit whole requests, never $batch sub-requests.
   */
  kind: 'throttle' | 'status' | 'reset' | 'dropLinks' | 'hang';
  /** How many matching requests fail. */
  times: number;
  status?: number;
  /** Sent as Retry-After on throttle (default 1) and, when given, on status faults. */
  retryAfterSeconds?: number;
  /** Only requests whose path (with query, decoded) contains this; also applies to $batch sub-requests. */
  pathIncludes?: string;
  /** Let this many matching requests pass before failing (e.g. 2 to fail the 3rd page). */
  afterMatches?: number;
  /** Only requests with this method (e.g. 'POST' for $batch). */
  method?: string;
}

export interface GraphEmulatorOptions {
  tenant: EmulatedTenant;
  /** Server-side maximum page size (default 100). */
  pageSize?: number;
  /** When given, every request needs `Authorization: Bearer <token>` with a token it accepts. */
  isValidToken?: (token: string) => boolean;
  port?: number;
  /** Added before every answer (default 0), like a real service's round trip. */
  latencyMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path with query, decoded, e.g. "/v1.0/users?$select=id". Status 0: no answer (reset, or hang). */
  path: string;
  status: number;
}

export interface GraphEmulator {
  /** https://127.0.0.1:PORT — the GRAPH_BASE_URL; requests go to {url}/v1.0/... */
  url: string;
  /** "127.0.0.1:PORT", as URL.host. */
  host: string;
  /**
   * "127.0.0.1": what the Graph SDK's customHosts needs — it strips the port before comparing
   * (GraphRequestUtil.isValidEndpoint), so a host with a port would never match.
   */
  hostname: string;
  /** Mutable: tests change it between cycles. */
  tenant: EmulatedTenant;
  /** Top-level HTTP requests, in arrival order. */
  requests: RecordedRequest[];
  /** Sub-requests of $batch calls (path relative to /v1.0, as sent). */
  batchRequests: RecordedRequest[];
  resetRequests(): void;
  inject(fault: GraphFault): void;
  /** Drops faults that have not fired yet. */
  clearFaults(): void;
  /** Connections a 'hang' fault holds that the client has not closed yet. */
  hanging(): number;
  /** When set, nextLinks point at this origin instead of `url` (to test that a reader refuses them). */
  nextLinkOrigin: string | undefined;
  /** Added before every answer; may be changed between requests. */
  latencyMs: number;

  // Changes as an admin makes them in Entra; editing `tenant` directly works as well.
  addUser(user: TenantUser): TenantUser;
  /** Throws for an unknown (or hard-deleted) user. */
  updateUser(id: string, patch: Partial<TenantUser>): TenantUser;
  /** Moves the user to the deleted items: hidden everywhere else, assignments and memberships kept. */
  softDeleteUser(id: string, when?: Date): void;
  restoreUser(id: string): void;
  /** Removes the user for good, with its memberships and assignments. */
  hardDeleteUser(id: string): void;
  addMember(groupId: string, memberId: string): void;
  removeMember(groupId: string, memberId: string): void;
  /** Assigns a user, group or service principal to the (first, unless named) service principal. */
  assign(principalId: string, principalType: Assignment['principalType'], appRoleId?: string, resourceId?: string): Assignment;
  /** Removes every assignment of the principal (to the named service principal, or any). */
  unassign(principalId: string, resourceId?: string): void;
  /**
   * Makes every delta and skip token issued so far unusable, as Graph does after about 7 days
   * or a tenant migration: the next use answers `status` (default 410 Gone) with `code`
   * (default syncStateNotFound; Graph also sends resyncRequired).
   */
  expireDeltaTokens(options?: { status?: number; code?: string }): void;
  close(): Promise<void>;
}

export type TenantUser = EmulatedTenant['users'][number];
export type Assignment = EmulatedTenant['assignments'][number];

/** The app role of an assignment that gives no specific role ("Default Access"). */
export const DEFAULT_ACCESS_ROLE = '00000000-0000-0000-0000-000000000000';

/** Where the certificate lives, from the sources (test/emulators) or the build (dist/test/emulators). */
export function certificatePaths(): { cert: string; key: string } {
  const candidates = [path.join(__dirname, 'certs'), path.join(__dirname, '..', '..', '..', 'test', 'emulators', 'certs')];
  for (const dir of candidates) {
    const cert = path.join(dir, 'localhost.crt');
    if (fs.existsSync(cert)) return { cert, key: path.join(dir, 'localhost.key') };
  }
  throw new Error(`test certificate not found in ${candidates.join(' or ')}`);
}

const MAX_BATCH = 20;
const MAX_TOP = 999;
const MAX_IN_VALUES = 15;
const USER_DEFAULT_PROPERTIES = [
  'businessPhones', 'displayName', 'givenName', 'jobTitle', 'mail', 'mobilePhone',
  'officeLocation', 'preferredLanguage', 'surname', 'userPrincipalName', 'id',
];
const JSON_TYPE = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

type Headers = Record<string, string>;
type Reply = { status: number; headers?: Headers; body?: unknown } | 'reset' | 'hang';

interface Request {
  method: string;
  /** Path below /v1.0, starting with "/". */
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body?: unknown;
  inBatch: boolean;
}

interface ArmedFault extends GraphFault {
  matched: number;
  fired: number;
}

const REASONS: Record<number, [string, string]> = {
  400: ['BadRequest', 'Bad request.'],
  401: ['InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.'],
  403: ['Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'],
  404: ['Request_ResourceNotFound', 'Resource does not exist or one of its queried reference-property objects are not present.'],
  429: ['TooManyRequests', 'Too many requests.'],
  500: ['UnknownError', 'An internal server error occurred.'],
  502: ['BadGateway', 'Bad gateway.'],
  503: ['serviceNotAvailable', 'The service is temporarily unavailable.'],
  504: ['GatewayTimeout', 'The gateway timed out.'],
};

function graphError(status: number, code?: string, message?: string, headers?: Headers): Reply {
  const [defaultCode, defaultMessage] = REASONS[status] ?? ['UnknownError', `Status ${status}.`];
  const requestId = randomUUID();
  return {
    status,
    headers,
    body: {
      error: {
        code: code ?? defaultCode,
        message: message ?? defaultMessage,
        innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': requestId, 'client-request-id': requestId },
      },
    },
  };
}

const same = (a: string, b: string): boolean => a === b || a.toLowerCase() === b.toLowerCase();
const COLLECTION_PROPERTIES = new Set(['businessPhones', 'appRoles']);
const EXTENSION_ATTRIBUTE_NAMES = Array.from({ length: 15 }, (_, i) => `extensionAttribute${i + 1}`);

function project(item: Record<string, unknown>, select: string[] | undefined, defaults?: string[]): Record<string, unknown> {
  const fields = select ?? defaults;
  if (!fields) return { ...item };
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = item[field];
    if (field === 'onPremisesExtensionAttributes') {
      // Graph always sends all fifteen, null when unset.
      const nested = (value ?? {}) as Record<string, unknown>;
      out[field] = Object.fromEntries(EXTENSION_ATTRIBUTE_NAMES.map((name) => [name, nested[name] ?? null]));
      continue;
    }
    out[field] = value === undefined ? (COLLECTION_PROPERTIES.has(field) ? [] : null) : value;
  }
  return out;
}

const isSoftDeleted = (user: { deletedDateTime?: string | null }): boolean => typeof user.deletedDateTime === 'string';

type DeltaResource = 'users' | 'groups';
/** Object id (lower-case) → its id and what the round reported about it. */
type Snapshot = Map<string, { id: string; state: string }>;
interface DeltaState {
  resource: DeltaResource;
  select: string[] | undefined;
  /** The objects a `$filter=id eq …` limits the round to (lower-case), or all. */
  ids: string[] | undefined;
  snapshot: Snapshot;
}

/** Graph limits a delta query to 50 objects named in its filter. */
const MAX_DELTA_FILTER_IDS = 50;

/** Delta queries filter only by object id: `id eq 'a' or id eq 'b'` (no `in`). */
function parseIdFilter(text: string): { ids: string[] } | { error: string } {
  const ids: string[] = [];
  for (const clause of text.trim().split(/\s+or\s+/i)) {
    const match = /^id\s+eq\s+'([^']*)'$/i.exec(clause.trim());
    if (!match) return { error: 'Unsupported query: delta queries filter only by id, as id eq \'…\' or id eq \'…\'.' };
    ids.push((match[1] as string).toLowerCase());
  }
  if (ids.length > MAX_DELTA_FILTER_IDS) return { error: `A delta query filters at most ${MAX_DELTA_FILTER_IDS} objects (got ${ids.length}).` };
  return { ids };
}

/** Parses the filters the reader needs: `prop eq 'x'|true|false|null` and `prop in ('a','b')`. */
function parseFilter(text: string): { property: string; values: unknown[] } | { error: string } {
  const literal = /^'((?:[^']|'')*)'|^(true|false|null)\b/;
  const readLiteral = (rest: string): { value: unknown; rest: string } | undefined => {
    const match = literal.exec(rest);
    if (!match) return undefined;
    const value = match[1] !== undefined ? match[1].replace(/''/g, "'") : JSON.parse(match[2] as string);
    return { value, rest: rest.slice(match[0].length).trimStart() };
  };
  const head = /^\s*([A-Za-z]+)\s+(eq|in)\s+/.exec(text);
  if (!head) return { error: 'Unsupported Query.' };
  const property = head[1] as string;
  let rest = text.slice(head[0].length).trim();
  if (head[2] === 'eq') {
    const read = readLiteral(rest);
    if (!read || read.rest !== '') return { error: 'Invalid filter clause.' };
    return { property, values: [read.value] };
  }
  if (!rest.startsWith('(') || !rest.endsWith(')')) return { error: 'Invalid filter clause.' };
  rest = rest.slice(1, -1).trim();
  const values: unknown[] = [];
  while (rest !== '') {
    const read = readLiteral(rest);
    if (!read) return { error: 'Invalid filter clause.' };
    values.push(read.value);
    rest = read.rest;
    if (rest.startsWith(',')) rest = rest.slice(1).trimStart();
    else if (rest !== '') return { error: 'Invalid filter clause.' };
  }
  if (values.length > MAX_IN_VALUES) {
    return { error: `Too many child clauses specified in search filter expression containing 'OR' operators: ${values.length}. Max allowed: ${MAX_IN_VALUES}.` };
  }
  return { property, values };
}

type TenantGroup = EmulatedTenant['groups'][number];
type TenantServicePrincipal = EmulatedTenant['servicePrincipals'][number];
/** A user and its position in `tenant.users` (answers keep the tenant's order). */
interface Placed { user: TenantUser; pos: number }

/** Case-insensitive lookups over the tenant (keys lower-cased), so no request scans it per item. */
interface TenantLookups {
  /** Every user, soft-deleted ones included, by id. */
  userById: Map<string, Placed>;
  /** Users that are not soft-deleted, by id and by userPrincipalName (the first in tenant order wins). */
  liveByIdOrUpn: Map<string, TenantUser>;
  liveById: Map<string, Placed>;
  liveByUpn: Map<string, Placed[]>;
  groupById: Map<string, TenantGroup>;
  servicePrincipalById: Map<string, TenantServicePrincipal>;
  /** Member id → the groups that hold it directly, in tenant order. */
  groupsOfMember: Map<string, TenantGroup[]>;
}

/**
 * Lookups that follow the tenant as it is now. Tests edit `tenant` directly (an id, a UPN, a
 * deletion mark, a member list, a whole array), so the lookups are never trusted blindly: each
 * call walks the tenant's keys and compares them by identity with the ones the lookups were built
 * from, and rebuilds them when anything differs. The walk allocates nothing and does no
 * case-folding, so it costs a small fraction of one scan with case-insensitive comparisons — and a
 * request used to make one such scan per member, assignment or filter value.
 */
function tenantLookups(tenantOf: () => EmulatedTenant): () => TenantLookups {
  let keys: unknown[] = [];
  let built: TenantLookups | null = null;
  const matches = (tenant: EmulatedTenant): boolean => {
    // Written out (no helper per key): this runs once per request over every user and member.
    const k = keys;
    let i = 0;
    if (k[i++] !== tenant || k[i++] !== tenant.users || k[i++] !== tenant.users.length) return false;
    for (const u of tenant.users) {
      if (k[i++] !== u || k[i++] !== u.id || k[i++] !== u.userPrincipalName || k[i++] !== u.deletedDateTime) return false;
    }
    if (k[i++] !== tenant.groups || k[i++] !== tenant.groups.length) return false;
    for (const g of tenant.groups) {
      if (k[i++] !== g || k[i++] !== g.id || k[i++] !== g.members || k[i++] !== g.members.length) return false;
      for (const m of g.members) if (k[i++] !== m) return false;
    }
    if (k[i++] !== tenant.servicePrincipals || k[i++] !== tenant.servicePrincipals.length) return false;
    for (const sp of tenant.servicePrincipals) if (k[i++] !== sp || k[i++] !== sp.id) return false;
    return i === k.length;
  };
  const build = (tenant: EmulatedTenant): TenantLookups => {
    keys = [tenant, tenant.users, tenant.users.length];
    const next: TenantLookups = {
      userById: new Map(), liveByIdOrUpn: new Map(), liveById: new Map(), liveByUpn: new Map(),
      groupById: new Map(), servicePrincipalById: new Map(), groupsOfMember: new Map(),
    };
    tenant.users.forEach((user, pos) => {
      keys.push(user, user.id, user.userPrincipalName, user.deletedDateTime);
      const id = user.id.toLowerCase();
      if (!next.userById.has(id)) next.userById.set(id, { user, pos });
      if (isSoftDeleted(user)) return;
      const upn = user.userPrincipalName.toLowerCase();
      if (!next.liveById.has(id)) next.liveById.set(id, { user, pos });
      const sameUpn = next.liveByUpn.get(upn);
      if (sameUpn) sameUpn.push({ user, pos });
      else next.liveByUpn.set(upn, [{ user, pos }]);
      if (!next.liveByIdOrUpn.has(id)) next.liveByIdOrUpn.set(id, user);
      if (!next.liveByIdOrUpn.has(upn)) next.liveByIdOrUpn.set(upn, user);
    });
    keys.push(tenant.groups, tenant.groups.length);
    for (const group of tenant.groups) {
      keys.push(group, group.id, group.members, group.members.length);
      for (const member of group.members) keys.push(member);
      const id = group.id.toLowerCase();
      if (!next.groupById.has(id)) next.groupById.set(id, group);
      const seen = new Set<string>();
      for (const member of group.members) {
        const key = member.toLowerCase();
        if (seen.has(key)) continue;
        seen.add(key);
        const groups = next.groupsOfMember.get(key);
        if (groups) groups.push(group);
        else next.groupsOfMember.set(key, [group]);
      }
    }
    keys.push(tenant.servicePrincipals, tenant.servicePrincipals.length);
    for (const sp of tenant.servicePrincipals) {
      keys.push(sp, sp.id);
      if (!next.servicePrincipalById.has(sp.id.toLowerCase())) next.servicePrincipalById.set(sp.id.toLowerCase(), sp);
    }
    return next;
  };
  return () => {
    const tenant = tenantOf();
    if (!built || !matches(tenant)) built = build(tenant);
    return built;
  };
}

export async function startGraphEmulator(options: GraphEmulatorOptions): Promise<GraphEmulator> {
  const pageSize = options.pageSize ?? 100;
  const faults: ArmedFault[] = [];
  const skipTokens = new Map<string, { path: string; offset: number }>();
  const deltaTokens = new Map<string, DeltaState>();
  const deltaSkips = new Map<string, { resource: DeltaResource; entries: Array<Record<string, unknown>>; offset: number; next: DeltaState }>();
  const expiredTokens = new Map<string, { status: number; code: string }>();
  const { cert, key } = certificatePaths();
  const freshLookups = tenantLookups(() => api.tenant);
  // One check of the lookups per top-level request: the tenant cannot change while a request
  // (or the sub-requests of one $batch) is being answered, which happens synchronously.
  let requestLookups: TenantLookups | null = null;
  const lookups = (): TenantLookups => (requestLookups ??= freshLookups());

  // --- paging -----------------------------------------------------------------------------------

  /** One page of `items`; `toJson` shapes only the items on it (a page of 999 out of 100,000). */
  function page<T>(req: Request, items: T[], context: string, toJson: (item: T) => Record<string, unknown>): Reply {
    const topText = req.query.get('$top');
    let size = pageSize;
    if (topText !== null) {
      const top = Number(topText);
      if (!Number.isInteger(top) || top < 1 || top > MAX_TOP) {
        return graphError(400, 'Request_BadRequest', `Invalid page size specified: '${topText}'. Must be between 1 and ${MAX_TOP} inclusive.`);
      }
      size = Math.min(top, pageSize);
    }
    let offset = 0;
    const skipToken = req.query.get('$skiptoken');
    if (skipToken !== null) {
      const saved = skipTokens.get(skipToken);
      if (!saved || saved.path !== req.path.toLowerCase()) {
        return graphError(400, 'Request_BadRequest', 'The specified page token value has expired or is invalid.');
      }
      offset = saved.offset;
    }
    const count = req.query.get('$count');
    if (count !== null && count.toLowerCase() === 'true' && req.headers['consistencylevel']?.toLowerCase() !== 'eventual') {
      return graphError(400, 'Request_BadRequest', '$count is not currently supported.');
    }

    const body: Record<string, unknown> = { '@odata.context': `${api.url}/v1.0/$metadata#${context}` };
    if (count !== null && count.toLowerCase() === 'true') body['@odata.count'] = items.length;
    body.value = items.slice(offset, offset + size).map(toJson);
    if (offset + size < items.length) {
      const token = randomBytes(18).toString('base64url');
      skipTokens.set(token, { path: req.path.toLowerCase(), offset: offset + size });
      const query = new URLSearchParams(req.query);
      query.delete('$skiptoken');
      query.set('$skiptoken', token);
      // Graph's nextLinks keep $ and , readable; URLSearchParams would escape them.
      const queryText = query.toString().replace(/%24/g, '$').replace(/%2C/gi, ',');
      body['@odata.nextLink'] = `${api.nextLinkOrigin ?? api.url}/v1.0${req.path}?${queryText}`;
    }
    return { status: 200, body };
  }

  const selectOf = (req: Request): string[] | undefined => {
    const select = req.query.get('$select');
    return select === null ? undefined : select.split(',').map((s) => s.trim()).filter(Boolean);
  };

  // --- delta -----------------------------------------------------------------------------------
  // A delta token holds a snapshot of what its round reported; the next round is the difference
  // between the tenant now and that snapshot. So direct edits of `tenant` show up like any other.

  function routeDelta(req: Request, resource: DeltaResource, extra: string[]): Reply {
    if (extra.length > 0) return graphError(400, 'BadRequest', `Resource not found for the segment '${extra[0]}'.`);
    if (req.query.has('$top') || req.query.has('$orderby') || req.query.has('$expand')) {
      return graphError(400, 'Request_UnsupportedQuery', `$top, $orderby and $expand are not supported with /${resource}/delta.`);
    }
    const skipToken = req.query.get('$skiptoken');
    const deltaToken = req.query.get('$deltatoken');
    const token = skipToken ?? deltaToken;
    if (token !== null) {
      const expired = expiredTokens.get(token);
      if (expired) {
        const message = expired.code.toLowerCase() === 'resyncrequired'
          ? 'Resync required. Replace any local items with the server\'s version (including deletes).'
          : 'The sync state token is not valid or has expired. Start a new sync.';
        return graphError(expired.status, expired.code, message, { Location: `${api.url}/v1.0/${resource}/delta` });
      }
    }
    if (skipToken !== null) {
      const pending = deltaSkips.get(skipToken);
      if (!pending || pending.resource !== resource) return graphError(400, 'Request_BadRequest', 'Badly formed token.');
      deltaSkips.delete(skipToken);
      return deltaPage(resource, pending.entries, pending.offset, pending.next);
    }
    let previous: DeltaState | undefined;
    let select: string[] | undefined;
    let ids: string[] | undefined;
    if (deltaToken !== null) {
      previous = deltaTokens.get(deltaToken);
      if (!previous || previous.resource !== resource) return graphError(400, 'Request_BadRequest', 'Badly formed token.');
      ({ select, ids } = previous);
    } else {
      select = selectOf(req);
      const filterText = req.query.get('$filter');
      if (filterText !== null) {
        const parsed = parseIdFilter(filterText);
        if ('error' in parsed) return graphError(400, 'Request_UnsupportedQuery', parsed.error);
        ids = parsed.ids;
      }
    }
    const next: DeltaState = { resource, select, ids, snapshot: resource === 'users' ? userSnapshot(select, ids) : groupSnapshot(select, ids) };
    const entries = resource === 'users' ? userChanges(previous?.snapshot, next.snapshot) : groupChanges(previous?.snapshot, next.snapshot);
    return deltaPage(resource, entries, 0, next);
  }

  function deltaPage(resource: DeltaResource, entries: Array<Record<string, unknown>>, offset: number, next: DeltaState): Reply {
    const origin = api.nextLinkOrigin ?? api.url;
    const body: Record<string, unknown> = { '@odata.context': `${api.url}/v1.0/$metadata#${resource}` };
    // A page holds pageSize objects, a member in members@delta counting as one: a group with many
    // member changes fills a page by itself, as in Graph.
    const weight = (entry: Record<string, unknown>): number => Math.max(1, (entry['members@delta'] as unknown[] | undefined)?.length ?? 0);
    let end = offset;
    for (let used = 0; end < entries.length && (end === offset || used + weight(entries[end]!) <= pageSize); end++) used += weight(entries[end]!);
    body.value = entries.slice(offset, end);
    const token = randomBytes(18).toString('base64url');
    if (end < entries.length) {
      deltaSkips.set(token, { resource, entries, offset: end, next });
      body['@odata.nextLink'] = `${origin}/v1.0/${resource}/delta?$skiptoken=${token}`;
    } else {
      deltaTokens.set(token, next);
      body['@odata.deltaLink'] = `${origin}/v1.0/${resource}/delta?$deltatoken=${token}`;
    }
    return { status: 200, body };
  }

  /** Per user: 'soft' while soft-deleted, else the JSON of what the round reports about it. */
  function userSnapshot(select: string[] | undefined, ids: string[] | undefined): Snapshot {
    const snapshot: Snapshot = new Map();
    const chosen = ids
      ? ids.map((id) => lookups().userById.get(id)).filter((p): p is Placed => p !== undefined).sort((a, b) => a.pos - b.pos).map((p) => p.user)
      : api.tenant.users;
    const fields = [...(select ?? USER_DEFAULT_PROPERTIES), 'id'];
    const selectKey = fields.join(',');
    for (const user of chosen) {
      snapshot.set(user.id.toLowerCase(), { id: user.id, state: isSoftDeleted(user) ? 'soft' : reportedState(user, select, fields, selectKey) });
    }
    return snapshot;
  }

  /**
   * The JSON a delta round reports for a user. Remembered per user with the values it was made
   * from, and made again only when one of them differs: a quiet round over 100,000 users then
   * compares values instead of serialising every user. Nested values (extension attributes,
   * phone lists) are compared by their JSON, since tests edit them in place.
   */
  const reportedStates = new WeakMap<TenantUser, { selectKey: string; values: unknown[]; state: string }>();
  function reportedState(user: TenantUser, select: string[] | undefined, fields: string[], selectKey: string): string {
    const values = fields.map((f) => {
      const value = user[f];
      return value !== null && typeof value === 'object' ? JSON.stringify(value) : value;
    });
    const known = reportedStates.get(user);
    if (known && known.selectKey === selectKey && known.values.every((v, i) => v === values[i])) return known.state;
    const state = JSON.stringify({ ...project(user, select, USER_DEFAULT_PROPERTIES), id: user.id });
    reportedStates.set(user, { selectKey, values, state });
    return state;
  }

  function userChanges(before: Snapshot | undefined, now: Snapshot): Array<Record<string, unknown>> {
    const entries: Array<Record<string, unknown>> = [];
    for (const [key, { id, state }] of now) {
      const old = before?.get(key)?.state;
      if (state === 'soft') {
        // Soft-deleted: "changed" says it can still be restored from the deleted items.
        if (old !== undefined && old !== 'soft') entries.push({ id, '@removed': { reason: 'changed' } });
      } else if (old !== state) {
        entries.push(JSON.parse(state) as Record<string, unknown>);
      }
    }
    for (const [key, { id }] of before ?? []) {
      if (!now.has(key)) entries.push({ id, '@removed': { reason: 'deleted' } });
    }
    return entries;
  }

  /** Per group: its selected properties and, when tracked, its members as "type id" lines. */
  function groupSnapshot(select: string[] | undefined, ids: string[] | undefined): Snapshot {
    const snapshot: Snapshot = new Map();
    const withMembers = select === undefined || select.includes('members');
    const properties = (select ?? ['displayName']).filter((p) => p !== 'members');
    for (const group of api.tenant.groups) {
      if (ids && !ids.includes(group.id.toLowerCase())) continue;
      const members: string[] = [];
      if (withMembers) {
        for (const memberId of group.members) {
          const type = memberType(memberId);
          if (type) members.push(`${type} ${memberId}`);
        }
      }
      const props = { ...project(group, properties), id: group.id };
      snapshot.set(group.id.toLowerCase(), { id: group.id, state: JSON.stringify({ props, members: withMembers ? members : null }) });
    }
    return snapshot;
  }

  function memberType(memberId: string): string | undefined {
    const key = memberId.toLowerCase();
    const user = lookups().userById.get(key)?.user;
    // A soft-deleted user leaves its groups until it is restored.
    if (user) return isSoftDeleted(user) ? undefined : '#microsoft.graph.user';
    if (lookups().groupById.has(key)) return '#microsoft.graph.group';
    if (lookups().servicePrincipalById.has(key)) return '#microsoft.graph.servicePrincipal';
    return undefined;
  }

  function groupChanges(before: Snapshot | undefined, now: Snapshot): Array<Record<string, unknown>> {
    const entries: Array<Record<string, unknown>> = [];
    type GroupState = { props: Record<string, unknown>; members: string[] | null };
    const asMember = (line: string, removed: boolean): Record<string, unknown> => {
      const [type, id] = line.split(' ');
      return removed ? { '@odata.type': type, id, '@removed': { reason: 'deleted' } } : { '@odata.type': type, id };
    };
    for (const [key, { state }] of now) {
      const old = before?.get(key)?.state;
      if (old === state) continue;
      const current = JSON.parse(state) as GroupState;
      const previous = old === undefined ? undefined : (JSON.parse(old) as GroupState);
      if (current.members === null) {
        entries.push(current.props);
        continue;
      }
      const had = new Set(previous?.members ?? []);
      const has = new Set(current.members);
      const delta = [
        ...current.members.filter((m) => !had.has(m)).map((m) => asMember(m, false)),
        ...[...had].filter((m) => !has.has(m)).map((m) => asMember(m, true)),
      ];
      if (delta.length === 0) {
        entries.push(current.props);
        continue;
      }
      // Like Graph, a long member list is spread over several entries of the same group.
      for (let start = 0; start < delta.length; start += pageSize) {
        entries.push({ ...current.props, 'members@delta': delta.slice(start, start + pageSize) });
      }
    }
    for (const [key, { id }] of before ?? []) {
      if (!now.has(key)) entries.push({ id, '@removed': { reason: 'deleted' } });
    }
    return entries;
  }

  // --- resources --------------------------------------------------------------------------------

  /** Users that are not soft-deleted: everything but the deleted items sees only these. */
  const liveUsers = () => api.tenant.users.filter((u) => !isSoftDeleted(u));
  const findUser = (idOrUpn: string) => lookups().liveByIdOrUpn.get(idOrUpn.toLowerCase());
  const liveUser = (id: string) => lookups().liveById.get(id.toLowerCase())?.user;
  const findGroup = (id: string) => lookups().groupById.get(id.toLowerCase());
  const isHiddenPrincipal = (principalId: string): boolean => {
    const byId = lookups().userById;
    const user = (byId.get(principalId) ?? byId.get(principalId.toLowerCase()))?.user;
    return user !== undefined && isSoftDeleted(user);
  };
  const notFound = (id: string): Reply =>
    graphError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

  function routeServicePrincipals(req: Request, segments: string[]): Reply {
    const [, id, relation, ...more] = segments;
    const sp = id === undefined ? undefined : lookups().servicePrincipalById.get(id.toLowerCase());
    if (id === undefined) return graphError(400, 'BadRequest', 'Listing service principals is not emulated.');
    if (!sp) return notFound(id);
    if (relation === undefined) return { status: 200, body: project(sp, selectOf(req)) };
    if (relation === 'appRoleAssignedTo' && more.length === 0) {
      const principalName = (principalId: string): string | null =>
        liveUser(principalId)?.displayName ??
        findGroup(principalId)?.displayName ??
        lookups().servicePrincipalById.get(principalId.toLowerCase())?.displayName ??
        null;
      // Filtered again for every page, as the tenant may change between pages; cheap per item.
      const assignments = api.tenant.assignments.filter((a) => same(a.resourceId, sp.id) && !isHiddenPrincipal(a.principalId));
      return page(req, assignments, `servicePrincipals('${sp.id}')/appRoleAssignedTo`, (a) => project({
          id: a.id,
          appRoleId: a.appRoleId,
          createdDateTime: '2024-01-01T00:00:00Z',
          deletedDateTime: null,
          principalDisplayName: principalName(a.principalId),
          principalId: a.principalId,
          principalType: a.principalType,
          resourceDisplayName: sp.displayName,
          resourceId: sp.id,
        }, selectOf(req)));
    }
    return graphError(400, 'BadRequest', `Resource not found for the segment '${relation}'.`);
  }

  function routeGroups(req: Request, segments: string[]): Reply {
    const [, id, relation, cast, ...more] = segments;
    if (id === undefined) {
      // Groups as Graph lists them (id and displayName here), $filter=id in (…) as for users.
      const groups = filtered(req, () => api.tenant.groups.map((g) => ({ id: g.id, displayName: g.displayName })));
      if ('error' in groups) return groups.error;
      return page(req, groups, 'groups', (g) => project(g, selectOf(req)));
    }
    if (id === 'delta') return routeDelta(req, 'groups', segments.slice(2));
    const group = findGroup(id);
    if (!group) return notFound(id);
    if ((relation === 'members' || relation === 'transitiveMembers') && cast === 'microsoft.graph.user' && more.length === 0) {
      const memberIds: string[] = [];
      if (relation === 'members') {
        memberIds.push(...group.members);
      } else {
        const seenGroups = new Set<string>([group.id.toLowerCase()]);
        const queue = [...group.members];
        while (queue.length > 0) {
          const memberId = queue.shift() as string;
          const nested = findGroup(memberId);
          if (nested) {
            if (!seenGroups.has(nested.id.toLowerCase())) {
              seenGroups.add(nested.id.toLowerCase());
              queue.push(...nested.members);
            }
          } else {
            memberIds.push(memberId);
          }
        }
      }
      const seenUsers = new Set<string>();
      const users: TenantUser[] = [];
      for (const memberId of memberIds) {
        const user = liveUser(memberId);
        if (!user || seenUsers.has(user.id)) continue;
        seenUsers.add(user.id);
        users.push(user);
      }
      return page(req, users, 'users', (u) => project(u, selectOf(req), USER_DEFAULT_PROPERTIES));
    }
    return graphError(400, 'BadRequest', `Resource not found for the segment '${cast ?? relation ?? ''}'.`);
  }

  function routeUsers(req: Request, segments: string[]): Reply {
    const [, id, ...more] = segments;
    if (id === 'delta') return routeDelta(req, 'users', more);
    if (id !== undefined) {
      const user = findUser(id);
      if (!user) return notFound(id);
      if ((more[0] === 'memberOf' || more[0] === 'transitiveMemberOf') && more[1] === 'microsoft.graph.group' && more.length === 2) {
        // The groups the user is in: directly, or through nested groups too.
        const direct = (memberId: string) => [...(lookups().groupsOfMember.get(memberId.toLowerCase()) ?? [])];
        const found = new Map<string, (typeof api.tenant.groups)[number]>();
        const queue = direct(user.id);
        while (queue.length > 0) {
          const g = queue.shift()!;
          if (found.has(g.id.toLowerCase())) continue;
          found.set(g.id.toLowerCase(), g);
          if (more[0] === 'transitiveMemberOf') queue.push(...direct(g.id));
        }
        return page(req, [...found.values()], 'groups', (g) => project({ id: g.id, displayName: g.displayName }, selectOf(req)));
      }
      if (more.length > 0) return graphError(400, 'BadRequest', `Resource not found for the segment '${more[0]}'.`);
      return { status: 200, body: project(user, selectOf(req), USER_DEFAULT_PROPERTIES) };
    }
    const users = filtered(req, liveUsers, liveUsersWhere);
    if ('error' in users) return users.error;
    return page(req, users, 'users', (u) => project(u, selectOf(req), USER_DEFAULT_PROPERTIES));
  }

  /**
   * Live users whose id or userPrincipalName equals (without case) one of `values`, in tenant
   * order, from the lookups; undefined for a filter the lookups do not cover (then it is scanned).
   */
  function liveUsersWhere(property: string, values: unknown[]): TenantUser[] | undefined {
    if (!values.every((v) => typeof v === 'string')) return undefined;
    const keys = (values as string[]).map((v) => v.toLowerCase());
    let found: Placed[];
    if (property === 'id') found = keys.map((k) => lookups().liveById.get(k)).filter((p): p is Placed => p !== undefined);
    else if (property === 'userPrincipalName') found = keys.flatMap((k) => lookups().liveByUpn.get(k) ?? []);
    else return undefined;
    const unique = new Map(found.map((p) => [p.pos, p]));
    return [...unique.values()].sort((a, b) => a.pos - b.pos).map((p) => p.user);
  }

  function filtered<T extends Record<string, unknown>>(
    req: Request,
    all: () => T[],
    indexed?: (property: string, values: unknown[]) => T[] | undefined,
  ): T[] | { error: Reply } {
    const filterText = req.query.get('$filter');
    if (filterText === null) return all();
    const filter = parseFilter(filterText);
    if ('error' in filter) return { error: graphError(400, 'Request_UnsupportedQuery', filter.error) };
    const fromLookups = indexed?.(filter.property, filter.values);
    if (fromLookups) return fromLookups;
    return all().filter((item) => {
      const value = item[filter.property];
      return filter.values.some((wanted) =>
        typeof value === 'string' && typeof wanted === 'string' ? same(value, wanted) : value === wanted);
    });
  }

  function routeDirectory(req: Request, segments: string[]): Reply {
    const [, container, idOrCast, ...more] = segments;
    if (container !== 'deletedItems' || more.length > 0) {
      return graphError(400, 'BadRequest', `Resource not found for the segment '${container ?? ''}'.`);
    }
    const deleted = api.tenant.users.filter(isSoftDeleted);
    const defaults = [...USER_DEFAULT_PROPERTIES, 'deletedDateTime'];
    if (idOrCast === undefined) {
      return graphError(400, 'Request_BadRequest', 'The OData cast type is required when listing deleted items, e.g. /directory/deletedItems/microsoft.graph.user.');
    }
    if (idOrCast === 'microsoft.graph.user') {
      const users = filtered(req, () => deleted);
      if ('error' in users) return users.error;
      return page(req, users, 'directory/deletedItems/microsoft.graph.user', (u) => project(u, selectOf(req), defaults));
    }
    const user = deleted.find((u) => same(u.id, idOrCast));
    if (!user) return notFound(idOrCast);
    return { status: 200, body: { '@odata.type': '#microsoft.graph.user', ...project(user, selectOf(req), defaults) } };
  }

  function routeBatch(req: Request): Reply {
    const requests = (req.body as { requests?: unknown } | undefined)?.requests;
    if (!Array.isArray(requests)) return graphError(400, 'BadRequest', 'Invalid batch payload format.');
    if (requests.length > MAX_BATCH) {
      return graphError(400, 'BadRequest', `Number of requests in the batch exceeds the limit of ${MAX_BATCH}.`);
    }
    const ids = new Set<string>();
    for (const sub of requests as Array<Record<string, unknown>>) {
      if (typeof sub?.id !== 'string' || typeof sub.url !== 'string' || typeof sub.method !== 'string') {
        return graphError(400, 'BadRequest', 'Invalid batch payload format: every request needs id, method and url.');
      }
      if (ids.has(sub.id)) return graphError(400, 'BadRequest', `Duplicate request id '${sub.id}' in the batch.`);
      ids.add(sub.id);
    }
    const responses = (requests as Array<{ id: string; method: string; url: string; headers?: Headers }>).map((sub) => {
      const relative = sub.url.startsWith('/') ? sub.url : `/${sub.url}`;
      const parsed = new URL(relative, 'https://graph.invalid');
      const subHeaders: Headers = {};
      for (const [name, value] of Object.entries(sub.headers ?? {})) subHeaders[name.toLowerCase()] = String(value);
      const subReq: Request = {
        method: sub.method.toUpperCase(),
        path: parsed.pathname.replace(/^\/v1\.0(?=\/)/, ''),
        query: parsed.searchParams,
        headers: subHeaders,
        inBatch: true,
      };
      const answer = answerWithFaults(subReq, decodeSafe(relative));
      // A sub-request has no socket of its own to reset or hold (fire() skips those inside a batch).
      const reply = answer === 'reset' || answer === 'hang' ? { status: 500 as number, headers: undefined, body: undefined } : answer;
      batchRequests.push({ method: subReq.method, path: decodeSafe(relative), status: reply.status });
      return { id: sub.id, status: reply.status, headers: { 'Content-Type': 'application/json', ...(reply.headers ?? {}) }, body: reply.body };
    });
    // Graph answers in any order; reversing keeps readers from matching responses by position.
    return { status: 200, body: { responses: responses.reverse() } };
  }

  function route(req: Request): Reply {
    const segments = req.path.split('/').filter(Boolean).map(decodeSafe);
    const [collection] = segments;
    if (collection === '$batch') {
      if (req.inBatch) return graphError(400, 'BadRequest', 'A batch cannot contain a batch.');
      if (req.method !== 'POST') return graphError(405, 'BadRequest', 'Use POST for $batch.');
      return routeBatch(req);
    }
    if (req.method !== 'GET') return graphError(405, 'BadRequest', `${req.method} is not emulated.`);
    switch (collection) {
      case 'servicePrincipals':
        return routeServicePrincipals(req, segments);
      case 'groups':
        return routeGroups(req, segments);
      case 'users':
        return routeUsers(req, segments);
      case 'directory':
        return routeDirectory(req, segments);
      default:
        return graphError(400, 'BadRequest', `Resource not found for the segment '${collection ?? ''}'.`);
    }
  }

  // --- faults -----------------------------------------------------------------------------------

  function answerWithFaults(req: Request, recordedPath: string): Reply {
    const fault = fire(req, recordedPath);
    if (fault === undefined) return route(req);
    if (fault !== 'dropLinks') return fault;
    const reply = route(req);
    if (reply !== 'reset' && reply !== 'hang' && reply.body && typeof reply.body === 'object') {
      const { '@odata.nextLink': _next, '@odata.deltaLink': _delta, ...rest } = reply.body as Record<string, unknown>;
      return { ...reply, body: rest };
    }
    return reply;
  }

  function fire(req: Request, recordedPath: string): Reply | 'dropLinks' | undefined {
    for (const fault of faults) {
      if (fault.fired >= fault.times) continue;
      if (req.inBatch && fault.pathIncludes === undefined) continue;
      if (req.inBatch && (fault.kind === 'reset' || fault.kind === 'hang')) continue;
      if (fault.method !== undefined && fault.method.toUpperCase() !== req.method) continue;
      if (fault.pathIncludes !== undefined && !recordedPath.includes(fault.pathIncludes)) continue;
      fault.matched++;
      if (fault.matched <= (fault.afterMatches ?? 0)) continue;
      fault.fired++;
      if (fault.kind === 'reset' || fault.kind === 'hang') return fault.kind;
      if (fault.kind === 'dropLinks') return 'dropLinks';
      if (fault.kind === 'throttle') {
        return graphError(429, undefined, undefined, { 'Retry-After': String(fault.retryAfterSeconds ?? 1) });
      }
      const status = fault.status ?? 500;
      return graphError(status, undefined, undefined,
        fault.retryAfterSeconds === undefined ? undefined : { 'Retry-After': String(fault.retryAfterSeconds) });
    }
    return undefined;
  }

  // --- http -------------------------------------------------------------------------------------

  const requests: RecordedRequest[] = [];
  const batchRequests: RecordedRequest[] = [];
  /** Sockets of requests a 'hang' fault never answers; close() destroys what the clients left. */
  const held = new Set<Socket>();

  async function handle(message: IncomingMessage, response: ServerResponse): Promise<void> {
    const rawUrl = message.url ?? '/';
    const recordedPath = decodeSafe(rawUrl);
    const method = (message.method ?? 'GET').toUpperCase();
    const send = (reply: Reply): void => {
      if (reply === 'reset') {
        requests.push({ method, path: recordedPath, status: 0 });
        message.socket.destroy();
        return;
      }
      if (reply === 'hang') {
        requests.push({ method, path: recordedPath, status: 0 });
        held.add(message.socket);
        message.socket.once('close', () => held.delete(message.socket));
        return;
      }
      requests.push({ method, path: recordedPath, status: reply.status });
      const requestId = randomUUID();
      response.writeHead(reply.status, {
        'content-type': JSON_TYPE,
        'request-id': requestId,
        'client-request-id': String(message.headers['client-request-id'] ?? requestId),
        ...(reply.headers ?? {}),
      });
      response.end(reply.body === undefined ? undefined : JSON.stringify(reply.body));
    };

    const chunks: Buffer[] = [];
    for await (const chunk of message) chunks.push(chunk as Buffer);
    if (api.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, api.latencyMs));

    if (options.isValidToken) {
      const auth = message.headers.authorization ?? '';
      const token = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
      if (!token) return send(graphError(401, 'InvalidAuthenticationToken', 'Access token is empty.'));
      if (!options.isValidToken(token)) {
        return send(graphError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.'));
      }
    }

    const parsed = new URL(rawUrl, api.url);
    if (!parsed.pathname.startsWith('/v1.0/')) {
      return send(graphError(400, 'BadRequest', 'Invalid version: use /v1.0.'));
    }
    const headers: Headers = {};
    for (const [name, value] of Object.entries(message.headers)) {
      if (typeof value === 'string') headers[name.toLowerCase()] = value;
    }
    let body: unknown;
    if (chunks.length > 0) {
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(graphError(400, 'BadRequest', 'The request body is not valid JSON.'));
      }
    }
    const req: Request = {
      method,
      path: parsed.pathname.slice('/v1.0'.length),
      query: parsed.searchParams,
      headers,
      body,
      inBatch: false,
    };
    requestLookups = null;
    send(answerWithFaults(req, recordedPath));
  }

  const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (message, response) => {
    handle(message, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, { 'content-type': JSON_TYPE });
        response.end(JSON.stringify({ error: { code: 'UnknownError', message: String(error) } }));
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const api: GraphEmulator = {
    url: `https://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    hostname: '127.0.0.1',
    tenant: options.tenant,
    requests,
    batchRequests,
    nextLinkOrigin: undefined,
    latencyMs: options.latencyMs ?? 0,
    resetRequests(): void {
      requests.length = 0;
      batchRequests.length = 0;
    },
    inject(fault: GraphFault): void {
      faults.push({ ...fault, matched: 0, fired: 0 });
    },
    addUser(user: TenantUser): TenantUser {
      if (freshLookups().userById.has(user.id.toLowerCase())) throw new Error(`user ${user.id} exists already`);
      api.tenant.users.push(user);
      return user;
    },
    updateUser(id: string, patch: Partial<TenantUser>): TenantUser {
      const user = freshLookups().userById.get(id.toLowerCase())?.user;
      if (!user) throw new Error(`no user ${id} in the emulated tenant`);
      return Object.assign(user, patch);
    },
    softDeleteUser(id: string, when: Date = new Date()): void {
      api.updateUser(id, { deletedDateTime: when.toISOString().replace(/\.\d{3}Z$/, 'Z') });
    },
    restoreUser(id: string): void {
      const user = api.updateUser(id, {});
      if (!isSoftDeleted(user)) throw new Error(`user ${id} is not in the deleted items`);
      delete user.deletedDateTime;
    },
    hardDeleteUser(id: string): void {
      const tenant = api.tenant;
      const before = tenant.users.length;
      tenant.users = tenant.users.filter((u) => !same(u.id, id));
      if (tenant.users.length === before) throw new Error(`no user ${id} in the emulated tenant`);
      for (const group of tenant.groups) group.members = group.members.filter((m) => !same(m, id));
      tenant.assignments = tenant.assignments.filter((a) => !same(a.principalId, id));
    },
    addMember(groupId: string, memberId: string): void {
      const group = api.tenant.groups.find((g) => same(g.id, groupId));
      if (!group) throw new Error(`no group ${groupId} in the emulated tenant`);
      if (!group.members.some((m) => same(m, memberId))) group.members.push(memberId);
    },
    removeMember(groupId: string, memberId: string): void {
      const group = api.tenant.groups.find((g) => same(g.id, groupId));
      if (!group) throw new Error(`no group ${groupId} in the emulated tenant`);
      group.members = group.members.filter((m) => !same(m, memberId));
    },
    assign(principalId: string, principalType: Assignment['principalType'], appRoleId = DEFAULT_ACCESS_ROLE, resourceId?: string): Assignment {
      const resource = resourceId ?? api.tenant.servicePrincipals[0]?.id;
      if (!resource) throw new Error('the emulated tenant has no service principal to assign to');
      const assignment: Assignment = { id: randomBytes(16).toString('base64url'), resourceId: resource, principalId, principalType, appRoleId };
      api.tenant.assignments.push(assignment);
      return assignment;
    },
    unassign(principalId: string, resourceId?: string): void {
      api.tenant.assignments = api.tenant.assignments.filter((a) =>
        !(same(a.principalId, principalId) && (resourceId === undefined || same(a.resourceId, resourceId))));
    },
    clearFaults(): void {
      faults.length = 0;
    },
    hanging(): number {
      return held.size;
    },
    expireDeltaTokens(options: { status?: number; code?: string } = {}): void {
      const expiry = { status: options.status ?? 410, code: options.code ?? 'syncStateNotFound' };
      for (const token of [...deltaTokens.keys(), ...deltaSkips.keys()]) expiredTokens.set(token, expiry);
      deltaTokens.clear();
      deltaSkips.clear();
    },
    close(): Promise<void> {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
