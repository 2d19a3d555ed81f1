/**
 * Operator endpoints (authLevel admin: the host's master key): the same powers as the CLI, through
 * the same App methods. Registered by functions/operator.ts, hosted locally by `tvsync serve`.
 * Each answers JSON; errors carry a `code` and a sentence, never a secret.
 *
 * Options come from the JSON body only. A query string is refused, not ignored: a caller who
 * wrote `?full=true` must learn that it did not ask for a full restart, and a link someone clicks
 * can then never carry an option. (`code`, the function key the host may leave in the query, is
 * the one exception.)
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { App } from '../app';
import { getApp, withInvocation } from '../runtime';
import { LeaseHeldError } from '../sync/lease';
import { badRequest, describeError, json } from './respond';

type Body = Record<string, unknown>;
type Handler = (tvsync: App, body: Body, by: string) => Promise<HttpResponseInit>;

/** Query parameters the Functions host itself may leave on an admin call. */
const HOST_QUERY_PARAMETERS = new Set(['code']);

function operatorHandler(options: readonly string[], handler: Handler) {
  return (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    withInvocation(context, async () => {
      try {
        const body = await readOptions(request, options);
        const tvsync = await getApp();
        return await handler(tvsync, body, `HTTP ${context.functionName}`);
      } catch (err) {
        if (err instanceof LeaseHeldError) return json(409, { error: { code: err.code, message: err.message } });
        const { code, message, settings } = describeError(err);
        if (code !== 'BAD_REQUEST') context.error(`${context.functionName} failed: ${message}`);
        return json(statusFor(code, settings), { error: { code, message } });
      }
    });
}

/** A refused request (400), an operation that must wait for state to settle (409), bad settings (503), else 500. */
function statusFor(code: string, settings: boolean): number {
  if (code === 'BAD_REQUEST') return 400;
  // The staged set is recorded by the next cycle; the guard changed while being updated.
  if (code === 'GUARD_SET_NOT_RECORDED' || code === 'STATE_CONFLICT') return 409;
  return settings ? 503 : 500;
}

/** The JSON object in the body (empty when there is none), holding only the route's options. */
async function readOptions(request: HttpRequest, options: readonly string[]): Promise<Body> {
  const query = [...request.query.keys()].filter((name) => !HOST_QUERY_PARAMETERS.has(name));
  if (query.length > 0) {
    const example = options.length ? ` such as {"${options[0]}": …}` : '';
    throw badRequest(`options go in a JSON body${example}, not in the query string (got ?${query.join('&')})`);
  }
  const text = await request.text();
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('the request body must be a JSON object');
  const unknown = Object.keys(parsed).filter((key) => !options.includes(key));
  if (unknown.length > 0) {
    throw badRequest(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}${options.length ? ` (this route takes ${options.join(', ')})` : ' (this route takes none)'}`);
  }
  return parsed as Body;
}

function flag(body: Body, name: string): boolean {
  const value = body[name];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw badRequest(`"${name}" must be true or false`);
  return value;
}

/** POST /api/run: the next heartbeat starts a cycle whatever the interval says. */
export const runNowHandler = operatorHandler([], async (tvsync, _body, by) => {
  await tvsync.requestRun(by);
  return json(202, { accepted: true, message: 'a cycle starts at the next heartbeat' });
});

/** POST /api/restart {"full": false}: forget watermark, escrows and quarantine (never the guard); full also re-matches links. */
export const restartHandler = operatorHandler(['full'], async (tvsync, body, by) => {
  const full = flag(body, 'full');
  return json(200, { restarted: true, ...(await tvsync.restart({ full, by })) });
});

/** POST /api/test-connection: Table Storage, Microsoft Graph and TeamViewer, each with the reason. */
export const testConnectionHandler = operatorHandler([], async (tvsync) => {
  const checks = await tvsync.testConnection();
  const ok = checks.every((c) => c.ok);
  return json(ok ? 200 : 502, { ok, checks });
});

/** POST /api/provision {"user": "<upn or object id>", "dryRun": false}: Entra's five steps for one user. */
export const provisionHandler = operatorHandler(['user', 'dryRun'], async (tvsync, body) => {
  const user = typeof body.user === 'string' ? body.user.trim() : '';
  if (!user) throw badRequest('give the user as {"user": "<userPrincipalName or object id>"}');
  const result = await tvsync.provision(user, { dryRun: flag(body, 'dryRun') });
  return json(result.ok ? 200 : 422, result);
});

/** POST /api/allow-deactivations: release what the accidental-deletion guard holds back. */
export const allowDeactivationsHandler = operatorHandler([], async (tvsync, _body, by) => {
  const released = await tvsync.allowDeactivations(by);
  return json(200, released ? { allowed: true, count: released.count, reason: released.reason, since: released.since } : { allowed: false, message: 'nothing is held back' });
});
