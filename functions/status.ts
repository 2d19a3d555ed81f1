import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { SettingsError } from '../shared/config';
import { redactText } from '../shared/log';
import { getApp, withInvocation } from '../shared/runtime';

/** GET /api/status: the status document as JSON. */
export function statusHandler(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return withInvocation(context, () => status(context));
}

async function status(context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const tvsync = await getApp();
    return { status: 200, jsonBody: await tvsync.status(), headers: { 'cache-control': 'no-store' } };
  } catch (err) {
    const code = err instanceof SettingsError ? err.code : ((err as { code?: string }).code ?? 'INTERNAL');
    context.error(`status failed: ${redactText((err as Error).message)}`);
    return { status: 503, jsonBody: { health: 'disabled', error: { code, message: redactText((err as Error).message) } }, headers: { 'cache-control': 'no-store' } };
  }
}

app.http('status', { methods: ['GET'], authLevel: 'function', route: 'status', handler: statusHandler });
