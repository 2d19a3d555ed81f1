/**
 * `tvsync serve`: a small local host for the same handlers the Functions host runs — the
 * heartbeat timer and every HTTP route under http://localhost:<port>/api/… — so the whole app runs
 * without Azure Functions Core Tools. It converts node:http requests to @azure/functions'
 * HttpRequest and calls the handlers of shared/handlers/: there is no second implementation.
 * Like `func start`, it checks no function keys; it listens on 127.0.0.1 only.
 *
 * Invariant: no web page can drive it. With no key, the only thing that stands between a page
 * the operator visits and the operator routes is the browser's same-origin policy, so:
 * - every request must name serve itself in `Host` (127.0.0.1, localhost or [::1] with serve's
 *   port): a DNS-rebinding page reaches us under its own host name and is refused, so it cannot
 *   read /api/status or /api/logs;
 * - every POST must come from serve's own origin (a foreign `Origin`, or `Sec-Fetch-Site` other
 *   than same-origin / none, is refused) and be `Content-Type: application/json`: an HTML form can
 *   send only urlencoded, multipart or text/plain, and a script that sets JSON triggers a CORS
 *   preflight, which serve never grants;
 * - options are read from the JSON body only (shared/handlers/operator.ts), never the query.
 * A refused request reaches no handler: 403 with `{ error: { code, message } }`.
 *
 * In Azure none of this is needed, and the checks live here rather than in the handlers: the
 * routes take a function or master key that the browser never attaches on its own (it is a header
 * or query value, not a cookie), and the Host there is the app's public name, not loopback.
 */
import http from 'node:http';
import { format } from 'node:util';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { statusHandler } from './handlers/status';
import { logsHandler } from './handlers/logs';
import { syncTimer } from './handlers/sync';
import { allowDeactivationsHandler, provisionHandler, restartHandler, runNowHandler, testConnectionHandler } from './handlers/operator';
import type { Logger } from './log';

type RouteHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

/** The same routes, methods and names as the app.http registrations in functions/. */
export const ROUTES: ReadonlyArray<{ method: string; route: string; name: string; authLevel: 'function' | 'admin'; handler: RouteHandler }> = [
  { method: 'GET', route: 'status', name: 'status', authLevel: 'function', handler: statusHandler },
  { method: 'GET', route: 'logs', name: 'logs', authLevel: 'function', handler: logsHandler },
  { method: 'POST', route: 'run', name: 'run', authLevel: 'admin', handler: runNowHandler },
  { method: 'POST', route: 'restart', name: 'restart', authLevel: 'admin', handler: restartHandler },
  { method: 'POST', route: 'test-connection', name: 'test-connection', authLevel: 'admin', handler: testConnectionHandler },
  { method: 'POST', route: 'provision', name: 'provision', authLevel: 'admin', handler: provisionHandler },
  { method: 'POST', route: 'allow-deactivations', name: 'allow-deactivations', authLevel: 'admin', handler: allowDeactivationsHandler },
];

export interface Server {
  url: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  port: number;
  /** Seconds between heartbeats (each runs a cycle only when one is due); 0 = no timer. */
  beatSeconds: number;
  logger: Logger;
}

/** Why a request is refused before any handler sees it, or null when it may go on. */
export interface Refusal {
  code: 'HOST_NOT_ALLOWED' | 'CROSS_SITE_REQUEST' | 'JSON_REQUIRED';
  message: string;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
/** Methods that change nothing; every other one must prove it comes from serve's own origin. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** Checks Host, Origin, Sec-Fetch-Site and Content-Type against serve's own address (see the top). */
export function refusal(method: string, headers: http.IncomingHttpHeaders, port: number): Refusal | null {
  const own = new Set(LOOPBACK_NAMES.map((name) => `${name}:${port}`));
  const host = (headers.host ?? '').toLowerCase();
  if (!own.has(host)) {
    return { code: 'HOST_NOT_ALLOWED', message: `tvsync serve answers only to http://localhost:${port} or http://127.0.0.1:${port} (the request named host ${JSON.stringify(headers.host ?? '')})` };
  }
  if (SAFE_METHODS.has(method)) return null;
  const origin = headers.origin;
  if (origin !== undefined && !own.has(originHost(origin))) {
    return { code: 'CROSS_SITE_REQUEST', message: `a ${method} from another origin (${JSON.stringify(origin)}) is refused: operator routes take requests from tvsync serve's own origin or from tools such as curl` };
  }
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { code: 'CROSS_SITE_REQUEST', message: `a ${method} sent by a page of another site (Sec-Fetch-Site: ${site}) is refused` };
  }
  const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    return { code: 'JSON_REQUIRED', message: `a ${method} must be sent as Content-Type: application/json (got ${JSON.stringify(headers['content-type'] ?? '')}), options in a JSON body` };
  }
  return null;
}

/** `http://localhost:7071` → `localhost:7071`; anything that is not an http origin → '' (never ours). */
function originHost(origin: string): string {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' ? url.host.toLowerCase() : '';
  } catch {
    return '';
  }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 1_000_000) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function send(res: http.ServerResponse, response: HttpResponseInit): Promise<void> {
  const headers: Record<string, string> = {};
  const given = response.headers;
  if (given) for (const [k, v] of Object.entries(given as Record<string, string>)) headers[k.toLowerCase()] = String(v);
  let payload = '';
  if (response.jsonBody !== undefined) {
    payload = JSON.stringify(response.jsonBody, null, 2);
    headers['content-type'] ??= 'application/json; charset=utf-8';
  } else if (typeof response.body === 'string') {
    payload = response.body;
    headers['content-type'] ??= 'text/plain; charset=utf-8';
  }
  headers['x-content-type-options'] ??= 'nosniff';
  res.writeHead(response.status ?? 200, headers);
  res.end(payload);
}

/** An invocation whose log lines go to serve's logger (its level, the CLI's sanitised stderr), not to stdout. */
function invocation(functionName: string, logger: Logger): InvocationContext {
  return new InvocationContext({
    functionName,
    logHandler: (level, ...args) => {
      const line = format(...args);
      if (level === 'error' || level === 'critical') logger.error(line);
      else if (level === 'warning') logger.warn(line);
      else if (level === 'information') logger.info(line);
      else if (level !== 'none') logger.debug(line);
    },
  });
}

const refused = (why: Refusal): HttpResponseInit => ({ status: 403, jsonBody: { error: why }, headers: { 'cache-control': 'no-store' } });

/** One request: guard, route, method, then the handler with an @azure/functions HttpRequest. */
async function handle(req: http.IncomingMessage, res: http.ServerResponse, port: number, logger: Logger): Promise<void> {
  const method = req.method ?? 'GET';
  const why = refusal(method, req.headers, port);
  if (why) return send(res, refused(why));
  const url = new URL(req.url ?? '/', `http://localhost:${port}`);
  const route = ROUTES.find((r) => `/api/${r.route}` === url.pathname);
  if (!route) return send(res, { status: 404, jsonBody: { error: { code: 'NOT_FOUND', message: `no route ${url.pathname}; routes: ${ROUTES.map((r) => `${r.method} /api/${r.route}`).join(', ')}` } } });
  if (method !== route.method) return send(res, { status: 405, headers: { allow: route.method }, jsonBody: { error: { code: 'METHOD_NOT_ALLOWED', message: `use ${route.method}` } } });
  const body = await readBody(req);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
  const request = new HttpRequest({ url: url.toString(), method, headers, ...(body.length ? { body: { string: body.toString('utf8') } } : {}) });
  await send(res, await route.handler(request, invocation(route.name, logger)));
}

export async function serve(options: ServeOptions): Promise<Server> {
  let port = options.port;
  const server = http.createServer((req, res) => {
    handle(req, res, port, options.logger).catch((err: Error) => {
      options.logger.error(`serve: ${err.message}`);
      if (!res.headersSent) void send(res, { status: 500, jsonBody: { error: { code: 'INTERNAL', message: 'the handler failed; see the log' } } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : options.port;

  let beating: Promise<void> | null = null;
  const beat = () => {
    if (beating) return; // a long cycle: the next beat waits, beats never pile up
    beating = syncTimer({ isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } }, invocation('sync', options.logger))
      .catch((err: Error) => options.logger.warn(`heartbeat: ${err.message}`))
      .finally(() => {
        beating = null;
      });
  };
  const timer = options.beatSeconds > 0 ? setInterval(beat, options.beatSeconds * 1000) : null;
  if (options.beatSeconds > 0) beat();

  return {
    url: `http://localhost:${port}/api`,
    async close() {
      if (timer) clearInterval(timer);
      await beating;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
