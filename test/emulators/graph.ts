/**
 * Microsoft Graph emulator (https, v1.0): the slice of Graph the Entra reader uses, with Graph's
 * JSON shapes, paging, $batch, bearer-token checks and injectable faults.
 *
 *   GET  /v1.0/servicePrincipals/{id}
 *   GET  /v1.0/servicePrincipals/{id}/appRoleAssignedTo                 paged
 *   GET  /v1.0/groups/{id}/members/microsoft.graph.user                 paged, direct members only
 *   GET  /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user       paged, nested groups expanded
 *   GET  /v1.0/users/{id | userPrincipalName}
 *   GET  /v1.0/users                                                    paged, $filter (eq, in)
 *   GET  /v1.0/users/delta                                              not yet (501), see routeUsers
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
 */
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntraUser } from '../../shared/sync/model';

export interface EmulatedTenant {
  servicePrincipals: Array<{ id: string; appId: string; displayName: string }>;
  users: Array<EntraUser & { department?: string | null; jobTitle?: string | null; [k: string]: unknown }>;
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
  /** throttle: 429 + Retry-After; status: any status (e.g. 403, 500, 503); reset: the socket is destroyed. */
  kind: 'throttle' | 'status' | 'reset';
  /** How many matching requests fail. */
  times: number;
  status?: number;
  /** Sent as Retry-After on throttle (default 1) and, when given, on status faults. */
  retryAfterSeconds?: number;
  /** Only requests whose path (with query, decoded) contains this; also applies to $batch sub-requests. */
  pathIncludes?: string;
  /** Let this many matching requests pass before failing (e.g. 2 to fail the 3rd page). */
  afterMatches?: number;
}

export interface GraphEmulatorOptions {
  tenant: EmulatedTenant;
  /** Server-side maximum page size (default 100). */
  pageSize?: number;
  /** When given, every request needs `Authorization: Bearer <token>` with a token it accepts. */
  isValidToken?: (token: string) => boolean;
  port?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path with query, decoded, e.g. "/v1.0/users?$select=id". Status 0 means the socket was reset. */
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
  /** When set, nextLinks point at this origin instead of `url` (to test that a reader refuses them). */
  nextLinkOrigin: string | undefined;
  close(): Promise<void>;
}

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
type Reply = { status: number; headers?: Headers; body?: unknown } | 'reset';

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

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function project(item: Record<string, unknown>, select: string[] | undefined, defaults?: string[]): Record<string, unknown> {
  const fields = select ?? defaults;
  if (!fields) return { ...item };
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = item[field];
    out[field] = value === undefined ? (field === 'businessPhones' ? [] : null) : value;
  }
  return out;
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

export async function startGraphEmulator(options: GraphEmulatorOptions): Promise<GraphEmulator> {
  const pageSize = options.pageSize ?? 100;
  const faults: ArmedFault[] = [];
  const skipTokens = new Map<string, { path: string; offset: number }>();
  const { cert, key } = certificatePaths();

  // --- paging -----------------------------------------------------------------------------------

  function page(req: Request, items: Array<Record<string, unknown>>, context: string): Reply {
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
    body.value = items.slice(offset, offset + size);
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

  // --- resources --------------------------------------------------------------------------------

  const findUser = (idOrUpn: string) =>
    api.tenant.users.find((u) => same(u.id, idOrUpn) || same(u.userPrincipalName, idOrUpn));
  const notFound = (id: string): Reply =>
    graphError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

  function routeServicePrincipals(req: Request, segments: string[]): Reply {
    const [, id, relation, ...more] = segments;
    const sp = id === undefined ? undefined : api.tenant.servicePrincipals.find((s) => same(s.id, id));
    if (id === undefined) return graphError(400, 'BadRequest', 'Listing service principals is not emulated.');
    if (!sp) return notFound(id);
    if (relation === undefined) return { status: 200, body: project(sp, selectOf(req)) };
    if (relation === 'appRoleAssignedTo' && more.length === 0) {
      const principalName = (principalId: string): string | null =>
        api.tenant.users.find((u) => same(u.id, principalId))?.displayName ??
        api.tenant.groups.find((g) => same(g.id, principalId))?.displayName ??
        api.tenant.servicePrincipals.find((s) => same(s.id, principalId))?.displayName ??
        null;
      const items = api.tenant.assignments
        .filter((a) => same(a.resourceId, sp.id))
        .map((a) => project({
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
      return page(req, items, `servicePrincipals('${sp.id}')/appRoleAssignedTo`);
    }
    return graphError(400, 'BadRequest', `Resource not found for the segment '${relation}'.`);
  }

  function routeGroups(req: Request, segments: string[]): Reply {
    const [, id, relation, cast, ...more] = segments;
    if (id === undefined) return graphError(400, 'BadRequest', 'Listing groups is not emulated.');
    const group = api.tenant.groups.find((g) => same(g.id, id));
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
          const nested = api.tenant.groups.find((g) => same(g.id, memberId));
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
      const users: Array<Record<string, unknown>> = [];
      for (const memberId of memberIds) {
        const user = api.tenant.users.find((u) => same(u.id, memberId));
        if (!user || seenUsers.has(user.id)) continue;
        seenUsers.add(user.id);
        users.push(project(user, selectOf(req), USER_DEFAULT_PROPERTIES));
      }
      return page(req, users, 'users');
    }
    return graphError(400, 'BadRequest', `Resource not found for the segment '${cast ?? relation ?? ''}'.`);
  }

  function routeUsers(req: Request, segments: string[]): Reply {
    const [, id, ...more] = segments;
    if (id === 'delta') {
      // The incremental-cycle issue implements this: deltaLink/nextLink, @removed, 410 on stale tokens.
      return graphError(501, 'NotImplemented', '/users/delta is not emulated yet.');
    }
    if (id !== undefined) {
      if (more.length > 0) return graphError(400, 'BadRequest', `Resource not found for the segment '${more[0]}'.`);
      const user = findUser(id);
      if (!user) return notFound(id);
      return { status: 200, body: project(user, selectOf(req), USER_DEFAULT_PROPERTIES) };
    }
    let users = api.tenant.users as Array<Record<string, unknown>>;
    const filterText = req.query.get('$filter');
    if (filterText !== null) {
      const filter = parseFilter(filterText);
      if ('error' in filter) return graphError(400, 'Request_UnsupportedQuery', filter.error);
      users = users.filter((user) => {
        const value = user[filter.property];
        return filter.values.some((wanted) =>
          typeof value === 'string' && typeof wanted === 'string' ? same(value, wanted) : value === wanted);
      });
    }
    return page(req, users.map((u) => project(u, selectOf(req), USER_DEFAULT_PROPERTIES)), 'users');
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
      const answer = fire(subReq, decodeSafe(relative)) ?? route(subReq);
      // A sub-request has no socket of its own to reset (fire() skips resets inside a batch).
      const reply = answer === 'reset' ? { status: 500 as number, headers: undefined, body: undefined } : answer;
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
      default:
        return graphError(400, 'BadRequest', `Resource not found for the segment '${collection ?? ''}'.`);
    }
  }

  // --- faults -----------------------------------------------------------------------------------

  function fire(req: Request, recordedPath: string): Reply | undefined {
    for (const fault of faults) {
      if (fault.fired >= fault.times) continue;
      if (req.inBatch && fault.pathIncludes === undefined) continue;
      if (req.inBatch && fault.kind === 'reset') continue;
      if (fault.pathIncludes !== undefined && !recordedPath.includes(fault.pathIncludes)) continue;
      fault.matched++;
      if (fault.matched <= (fault.afterMatches ?? 0)) continue;
      fault.fired++;
      if (fault.kind === 'reset') return 'reset';
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
    send(fire(req, recordedPath) ?? route(req));
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
    resetRequests(): void {
      requests.length = 0;
      batchRequests.length = 0;
    },
    inject(fault: GraphFault): void {
      faults.push({ ...fault, matched: 0, fired: 0 });
    },
    clearFaults(): void {
      faults.length = 0;
    },
    close(): Promise<void> {
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
