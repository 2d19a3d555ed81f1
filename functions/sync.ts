import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getApp } from '../shared/runtime';

/** Heartbeat: runs a cycle when one is due (SYNC_INTERVAL_MINUTES since the last start). */
export async function syncTimer(timer: Timer, context: InvocationContext): Promise<void> {
  const tvsync = await getApp(context);
  if (timer.isPastDue) context.info('heartbeat is past due; a due cycle still runs once');
  const report = await tvsync.beat('timer');
  if (report) context.info(`cycle ${report.cycleId} (${report.kind}) ${report.result}: ${JSON.stringify(report.counts)}`);
}

app.timer('sync', { schedule: '%SYNC_SCHEDULE%', runOnStartup: false, useMonitor: true, handler: syncTimer });
