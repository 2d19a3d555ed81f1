/**
 * The quiet cycle: nothing changed in Entra since the last cycle, which succeeded outright. It
 * writes nothing — unless TeamViewer was changed by hand, in which case the cycle goes on to the
 * full read so the plan puts it back from what Entra says now.
 *
 * Invariants:
 * - With DRIFT_CHECK=every-cycle, TeamViewer's users are listed and compared with what tvsync wrote
 *   (shared/sync/drift.ts); the listing also proves the token. Otherwise the token is checked, so a
 *   revoked token is noticed this cycle and not at the next change.
 * - A quiet cycle's counts are carried over from the last cycle: everything it left in place is
 *   still in place, and no link is read for a number.
 * - The watermark is saved only when the cycle is really quiet; a cycle that goes on to the full
 *   read records that read (lastFullReadAt) and saves the watermark at its end like any other.
 */
import { raceAbort } from '../../http/timeout';
import type { TeamViewerUser } from '../../domain/model';
import { comparedAttributes, findDrift } from '../drift';
import { WATERMARK_KEY, type Watermark } from '../watermark';
import type { DeltaOutcome } from './read';
import type { CycleRun } from './run';

/** quiet: the cycle is done; otherwise the full read follows, with what TeamViewer listed (if it did). */
export type QuietOutcome = { quiet: true } | { quiet: false; listed: TeamViewerUser[] | null };

export async function quietCycle(run: CycleRun, delta: DeltaOutcome): Promise<QuietOutcome> {
  const { record, log, cycleId } = run;
  run.progress('reading TeamViewer');
  const check = await checkDrift(run);
  if (!check.found) {
    const prev = run.previous?.counts;
    record.imported = run.previous?.imported ?? 0;
    record.counts.unchanged = prev ? prev.unchanged + prev.created + prev.updated + prev.enabled + prev.disabled + prev.linked : 0;
    // What the group settings could not do still stands: nothing was read to say otherwise.
    if (run.deps.groups?.settings.provisioning === 'assigned' && run.previous?.groupWarnings) record.groupWarnings = run.previous.groupWarnings;
    record.result = 'succeeded';
    await run.deps.state.putMeta<Watermark>(WATERMARK_KEY, delta.watermark, delta.etag);
    log.info(`cycle ${cycleId}: nothing changed in Entra ID since the last cycle (${delta.requests} Graph requests)${check.listed ? ' nor in TeamViewer' : ''}; nothing to write`, { cycleId, graphRequests: delta.requests });
    return { quiet: true };
  }
  log.info(`cycle ${cycleId}: ${check.drifted} managed user(s) changed in TeamViewer by hand and ${check.vanished} no longer listed; reading Entra ID to put them back`, { cycleId, drifted: check.drifted, vanished: check.vanished });
  delta.watermark.lastFullReadAt = run.startedAt.toISOString();
  run.progress('reading Entra ID');
  return { quiet: false, listed: check.listed };
}

interface DriftFound {
  /** True when a managed user was changed in TeamViewer by hand or is no longer listed. */
  found: boolean;
  drifted: number;
  vanished: number;
  /** TeamViewer's users, when they were listed. */
  listed: TeamViewerUser[] | null;
}

async function checkDrift(run: CycleRun): Promise<DriftFound> {
  const { deps } = run;
  const signal = run.deadline.reading;
  const compared = comparedAttributes(run.config);
  if ((deps.driftCheck ?? 'every-cycle') !== 'every-cycle' || compared.length === 0) {
    await deps.teamViewer.testConnection({ signal });
    return { found: false, drifted: 0, vanished: 0, listed: null };
  }
  const [listed, links] = await Promise.all([deps.teamViewer.listUsers({ signal }), raceAbort(deps.state.listLinkDigests(), signal)]);
  const { drifted, vanished } = findDrift(links, listed, compared);
  return { found: drifted.length + vanished.length > 0, drifted: drifted.length, vanished: vanished.length, listed };
}
