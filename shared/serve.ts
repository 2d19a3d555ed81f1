/**
 * `tvsync serve`: a small local host for the same handlers the Functions host runs — the
 * heartbeat timer and every HTTP route under http://localhost:<port>/api/… — so the whole app runs
 * without Azure Functions Core Tools. It converts node:http requests to @azure/functions'
 * HttpRequest and calls the exported handlers of functions/*.ts: there is no second
 * implementation. Like `func start`, it enforces no function keys; it listens on 127.0.0.1 only.
 */
import http from 'node:http';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { statusHandler } from '../functions/status';
import { logsHandler } from '../functions/logs';
import { syncTimer } from '../functions/sync';
import { allowDeactivationsHandler, provisionHandler, restartHandler, runNowHandler, testConnectionHandler } from '../functions/operator';
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
  res.writeHead(response.status ?? 200, headers);
  res.end(payload);
}

export async function serve(options: ServeOptions): Promise<Server> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', `http://localhost:${options.port}`);
      const route = ROUTES.find((r) => `/api/${r.route}` === url.pathname);
      if (!route) return send(res, { status: 404, jsonBody: { error: { code: 'NOT_FOUND', message: `no route ${url.pathname}; routes: ${ROUTES.map((r) => `${r.method} /api/${r.route}`).join(', ')}` } } });
      if (req.method !== route.method) return send(res, { status: 405, headers: { allow: route.method }, jsonBody: { error: { code: 'METHOD_NOT_ALLOWED', message: `use ${route.method}` } } });
      const body = await readBody(req);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const request = new HttpRequest({ url: url.toString(), method: req.method, headers, ...(body.length ? { body: { string: body.toString('utf8') } } : {}) });
      const response = await route.handler(request, new InvocationContext({ functionName: route.name }));
      await send(res, response);
    })().catch((err: Error) => {
      options.logger.error(`serve: ${err.message}`);
      if (!res.headersSent) void send(res, { status: 500, jsonBody: { error: { code: 'INTERNAL', message: 'the handler failed; see the log' } } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  let beating: Promise<void> | null = null;
  const beat = () => {
    if (beating) return; // a long cycle: the next beat waits, beats never pile up
    beating = syncTimer({ isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } }, new InvocationContext({ functionName: 'sync' }))
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
