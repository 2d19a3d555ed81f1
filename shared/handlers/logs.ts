/**
 * GET /api/logs?user=&cycle=&status=&since=24h&until=&limit=&continuationToken=&format=json|csv —
 * the provisioning logs, newest first, paged (pass back `continuationToken`). Registered by
 * functions/logs.ts, hosted locally by `tvsync serve`.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { formatLogs, parseSince } from '../logs-format';
import { getApp, withInvocation } from '../runtime';
import type { ProvisioningLogStatus } from '../state/logs';
import { badRequest, describeError, json } from './respond';

const CALLER_ERRORS = new Set(['BAD_REQUEST', 'STATE_INVALID_ARGUMENT', 'LOGS_INVALID_ARGUMENT']);

export function logsHandler(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return withInvocation(context, async () => {
    const q = request.query;
    const format = q.get('format') ?? 'json';
    try {
      if (format !== 'json' && format !== 'csv') throw badRequest('format must be json or csv');
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
      return json(200, page);
    } catch (err) {
      const { code, message, settings } = describeError(err);
      const bad = CALLER_ERRORS.has(code);
      if (!bad) context.error(`logs failed: ${message}`);
      return json(bad ? 400 : settings ? 503 : 500, { error: { code, message } });
    }
  });
}
