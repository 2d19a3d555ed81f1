/**
 * Entra's "restart provisioning", under the run lease: forgets the delta watermark, the escrows and
 * the failure quarantine, so the next cycle is a new initial cycle, started at the next heartbeat.
 *
 * Invariants:
 * - The accidental-deletion guard's row (baseline, staged set, allowance) is not touched: a restart
 *   never lets through a deactivation the guard holds back or would hold back.
 * - `full` marks every link to be matched again by userName when its user is next read; no link is
 *   dropped, so users who left are still deactivated. Losing the lease stops the marking.
 */
import type { Logger } from '../log';
import { mapWithConcurrency } from '../http/pool';
import type { StateStore } from '../state/store';
import { stagedAllowed, GUARD_KEY, type GuardState } from '../sync/guard';
import { acquireLease } from '../sync/lease';
import { QUARANTINE_KEY } from '../sync/quarantine';
import { WATERMARK_KEY } from '../sync/watermark';
import { requestRun } from './beat';

export interface RestartResult {
  full: boolean;
  /** Links marked to be matched again by userName (full only). */
  rematching: number;
  /** Deactivations that stay held back until allowed. */
  stagedKept: number;
}

export async function restartProvisioning(store: StateStore, logger: Logger, { full, by }: { full: boolean; by: string }): Promise<RestartResult> {
  const lease = await acquireLease(store, { purpose: `restart${full ? ' --full' : ''} by ${by}`, logger });
  try {
    await store.deleteMeta(WATERMARK_KEY);
    await store.deleteMeta(QUARANTINE_KEY);
    // Like Entra's restart, the new initial cycle starts at the next heartbeat.
    await requestRun(store, by);
    for (const escrow of await store.listEscrows()) await store.deleteEscrow(escrow.entraId);
    const rematching = full ? await markForRematch(store, lease.signal) : 0;
    const guard = await store.getMeta<GuardState>(GUARD_KEY);
    const stagedKept = guard?.value.staged && !stagedAllowed(guard.value) ? guard.value.staged.count : 0;
    logger.warn(`provisioning restarted by ${by}${full ? ` (full: ${rematching} links to be matched again by userName; none dropped)` : ''}; the next cycle is a new initial cycle${stagedKept ? `; ${stagedKept} staged deactivation(s) stay held back until allowed` : ''}`);
    return { full, rematching, stagedKept };
  } finally {
    await lease.release();
  }
}

/** restart --full: every link is matched again by userName when its user is next read; none is dropped. */
async function markForRematch(store: StateStore, signal: AbortSignal): Promise<number> {
  const links = await store.listLinks();
  await mapWithConcurrency(links, 16, async (link) => {
    if (signal.aborted) throw signal.reason;
    if (!link.rematch) await store.putLink({ ...link, rematch: true });
  });
  return links.length;
}
