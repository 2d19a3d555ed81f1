import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { SettingsError } from '../shared/config';
import { redactText } from '../shared/log';
import { getApp, withInvocation } from '../shared/runtime';
import { LeaseHeldError } from '../shared/sync/lease';
import type { App } from '../shared/app';

/**
 * Operator endpoints (authLevel admin: the host's master key): the same powers as the CLI, through
 * the same App methods. Each answers JSON; errors carry a `code` and a sentence, never a secret.
 */
type Handler = (tvsync: App, request: HttpRequest, by: string) => Promise<HttpResponseInit>;

const json = (status: number, jsonBody: unknown): HttpResponseInit => ({ status, jsonBody, headers: { 'cache-control': 'no-store' } });

function operatorHandler(handler: Handler) {
  return (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    withInvocation(context, async () => {
      try {
        const tvsync = await getApp();
        return await handler(tvsync, request, `HTTP ${context.functionName}`);
      } catch (err) {
        if (err instanceof LeaseHeldError) return json(409, { error: { code: err.code, message: err.message } });
        const code = err instanceof SettingsError ? err.code : ((err as { code?: string }).code ?? 'INTERNAL');
        const message = redactText((err as Error).message ?? String(err));
        context.error(`${context.functionName} failed: ${message}`);
        return json(code === 'BAD_REQUEST' ? 400 : err instanceof SettingsError ? 503 : 500, { error: { code, message } });
      }
    });
}

async function body(request: HttpRequest): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (!text.trim()) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw Object.assign(new Error('the request body must be a JSON object'), { code: 'BAD_REQUEST' });
}

const flag = (request: HttpRequest, data: Record<string, unknown>, name: string) =>
  data[name] === true || request.query.get(name) === 'true';

/** POST /api/run: the next heartbeat starts a cycle whatever the interval says. */
export const runNowHandler = operatorHandler(async (tvsync, _request, by) => {
  await tvsync.requestRun(by);
  return json(202, { accepted: true, message: 'a cycle starts at the next heartbeat' });
});

/** POST /api/restart[?full=true]: forget watermark, escrows and quarantine (never the guard); full also re-matches links. */
export const restartHandler = operatorHandler(async (tvsync, request, by) => {
  const full = flag(request, await body(request), 'full');
  return json(200, { restarted: true, ...(await tvsync.restart({ full, by })) });
});

/** POST /api/test-connection: Table Storage, Microsoft Graph and TeamViewer, each with the reason. */
export const testConnectionHandler = operatorHandler(async (tvsync) => {
  const checks = await tvsync.testConnection();
  const ok = checks.every((c) => c.ok);
  return json(ok ? 200 : 502, { ok, checks });
});

/** POST /api/provision {"user": "<upn or object id>", "dryRun": false}: Entra's five steps for one user. */
export const provisionHandler = operatorHandler(async (tvsync, request) => {
  const data = await body(request);
  const user = typeof data.user === 'string' ? data.user.trim() : (request.query.get('user') ?? '').trim();
  if (!user) return json(400, { error: { code: 'BAD_REQUEST', message: 'give the user as {"user": "<userPrincipalName or object id>"}' } });
  const result = await tvsync.provision(user, { dryRun: flag(request, data, 'dryRun') });
  return json(result.ok ? 200 : 422, result);
});

/** POST /api/allow-deactivations: release what the accidental-deletion guard holds back. */
export const allowDeactivationsHandler = operatorHandler(async (tvsync, _request, by) => {
  const released = await tvsync.allowDeactivations(by);
  return json(200, released ? { allowed: true, count: released.count, reason: released.reason, since: released.since } : { allowed: false, message: 'nothing is held back' });
});

app.http('run', { methods: ['POST'], authLevel: 'admin', route: 'run', handler: runNowHandler });
app.http('restart', { methods: ['POST'], authLevel: 'admin', route: 'restart', handler: restartHandler });
app.http('test-connection', { methods: ['POST'], authLevel: 'admin', route: 'test-connection', handler: testConnectionHandler });
app.http('provision', { methods: ['POST'], authLevel: 'admin', route: 'provision', handler: provisionHandler });
app.http('allow-deactivations', { methods: ['POST'], authLevel: 'admin', route: 'allow-deactivations', handler: allowDeactivationsHandler });
