/**
 * The heartbeat (registered as the `sync` timer by functions/sync.ts, beaten by `tvsync serve`):
 * runs a cycle when one is due (SYNC_INTERVAL_MINUTES since the last start). A cycle that fails
 * makes the invocation fail too, so the platform's failure alerts see it.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import { getApp, withInvocation } from '../runtime';

export function syncTimer(timer: Timer, context: InvocationContext): Promise<void> {
  return withInvocation(context, async () => {
    const tvsync = await getApp();
    if (timer.isPastDue) context.info('heartbeat is past due; a due cycle still runs once');
    const report = await tvsync.beat('timer');
    // The cycle's own record (shared/cycle-record.ts) has already been logged by the cycle runner.
    if (report?.result === 'failed') throw new Error(`cycle ${report.cycleId} failed: ${report.error?.code ?? 'unknown'} — ${report.error?.message ?? ''}`);
  });
}
