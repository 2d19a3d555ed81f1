import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { SettingsError } from '../shared/config';
import { redactText } from '../shared/log';
import { formatLogs, parseSince } from '../shared/logs-format';
import { getApp, withInvocation } from '../shared/runtime';
import type { ProvisioningLogStatus } from '../shared/state/logs';

/**
 * GET /api/logs?user=&cycle=&status=&since=24h&until=&limit=&continuationToken=&format=json|csv —
 * the provisioning logs, newest first, paged (pass back `continuationToken`).
 */
export function logsHandler(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return withInvocation(context, async () => {
    const q = request.query;
    const format = q.get('format') ?? 'json';
    try {
      if (format !== 'json' && format !== 'csv') throw Object.assign(new Error('format must be json or csv'), { code: 'BAD_REQUEST' });
      const tvsync = await getApp();
      const page = await tvsync.logs.query({
        user: q.get('user') ?? undefined,
        cycleId: q.get('cycle') ?? undefined,
        status: (q.get('status') ?? undefined) as ProvisioningLogStatus | undefined,
        since: q.get('since') ? parseSince(q.get('since')!) : undefined,
        until: q.get('until') ? parseSince(q.get('until')!) : undefined,
        limit: q.get('limit') ? Number(q.get('limit')) : undefined,
        continuationToken: q.get('continuationToken') ?? undefined,
      });
      if (format === 'csv') {
        return { status: 200, body: formatLogs(page.records, 'csv'), headers: { 'content-type': 'text/csv; charset=utf-8', 'cache-control': 'no-store', ...(page.continuationToken ? { 'x-continuation-token': page.continuationToken } : {}) } };
      }
      return { status: 200, jsonBody: page, headers: { 'cache-control': 'no-store' } };
    } catch (err) {
      const code = err instanceof SettingsError ? err.code : ((err as { code?: string }).code ?? 'INTERNAL');
      const message = redactText((err as Error).message);
      const bad = code === 'BAD_REQUEST' || code === 'STATE_INVALID_ARGUMENT' || code === 'LOGS_INVALID_ARGUMENT';
      if (!bad) context.error(`logs failed: ${message}`);
      return { status: bad ? 400 : err instanceof SettingsError ? 503 : 500, jsonBody: { error: { code, message } }, headers: { 'cache-control': 'no-store' } };
    }
  });
}

app.http('logs', { methods: ['GET'], authLevel: 'function', route: 'logs', handler: logsHandler });
