/**
 * Plan users: the pure planner (shared/sync/planner.ts) over what was read, then the repairs of
 * hand edits in TeamViewer marked — or, with DRIFT_CHECK=off, taken out (shared/sync/drift.ts).
 * No I/O.
 *
 * Invariant: repairs are marked before the accidental-deletion guard judges the plan, so a repair
 * that deactivates counts like any other deactivation.
 */
import { comparedAttributes, markDrift, type DriftAttribute, type LinkRefresh } from '../drift';
import { plan, type Plan } from '../planner';
import type { Snapshot } from './read';
import type { CycleRun } from './run';
import type { Scoped } from './scope-map';

export interface UserPlan extends Plan {
  /** Links to record anew after applying (drift the plan leaves alone, values never recorded). */
  refresh: LinkRefresh[];
  /** The attributes the drift check compares under this configuration. */
  compared: DriftAttribute[];
}

export function planUsers(run: CycleRun, snapshot: Snapshot, scoped: Scoped): UserPlan {
  const { links, teamViewer, owner } = snapshot;
  const planned = plan({
    users: scoped.desired,
    links,
    teamViewer,
    protectedTeamViewerIds: new Set(owner ? [owner.id] : []),
    skipOutOfScopeDeletions: run.config.skipOutOfScopeDeletions,
    goneReasons: scoped.goneReasons,
  });
  const compared = comparedAttributes(run.config);
  const drift = markDrift(planned.actions, { links, teamViewer, mode: run.deps.driftCheck ?? 'every-cycle', compared });
  if (drift.leftAlone > 0) run.log.info(`cycle ${run.cycleId}: ${drift.leftAlone} change(s) made in TeamViewer by hand left as they are (DRIFT_CHECK=off)`, { cycleId: run.cycleId, leftAlone: drift.leftAlone });
  return { ...planned, actions: drift.actions, refresh: drift.refresh, compared };
}
