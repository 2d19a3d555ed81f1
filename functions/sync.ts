import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getApp, withInvocation } from '../shared/runtime';

/**
 * Heartbeat: runs a cycle when one is due (SYNC_INTERVAL_MINUTES since the last start). A cycle
 * that fails makes the invocation fail too, so the platform's failure alerts see it.
 */
export function syncTimer(timer: Timer, context: InvocationContext): Promise<void> {
  return withInvocation(context, async () => {
    const tvsync = await getApp();
    if (timer.isPastDue) context.info('heartbeat is past due; a due cycle still runs once');
    const report = await tvsync.beat('timer');
    if (!report) return;
    context.info(`cycle ${report.cycleId} (${report.kind}) ${report.result}: ${JSON.stringify(report.counts)}`);
    if (report.result === 'failed') throw new Error(`cycle ${report.cycleId} failed: ${report.error?.code ?? 'unknown'} — ${report.error?.message ?? ''}`);
  });
}

app.timer('sync', { schedule: '%SYNC_SCHEDULE%', runOnStartup: false, useMonitor: true, handler: syncTimer });
