/**
 * One provisioning cycle, as its table of contents: each phase is a function with one job, in the
 * module named after it under shared/sync/cycle/, and keeps the invariants written at its top.
 *
 *   begin       close interrupted cycles, decide the kind, write the cycle's row      begin.ts
 *   read        what changed in Entra (deltas) — quiet, or the full read              read.ts
 *   quiet       nothing changed in Entra: check TeamViewer for hand edits             quiet.ts
 *   scope, map  who is entitled and what TeamViewer should hold                       scope-map.ts
 *   plan users  the pure planner, repairs of hand edits marked                        plan-users.ts
 *   plan groups the pure group planner (GROUP_PROVISIONING=assigned)                  plan-groups.ts
 *   guard       the accidental-deletion guard over every deactivation and group going guard.ts
 *   apply       one machinery for every kind of work: users, then user groups         apply.ts, apply-users.ts, apply-groups.ts
 *   record      the outcome, the watermark, quarantine, the final row, the report     record.ts
 *
 * A failure anywhere before applying ends the cycle `failed` with nothing planned or written; the
 * record phase runs whatever happened.
 *
 * Personal data: lines that name a user (UPN) are logged at debug only, which host.json keeps out
 * of Application Insights; info and warn lines carry counts and ids.
 */
import { Applier } from './cycle/apply';
import { applyGroups } from './cycle/apply-groups';
import { indexLinks, refreshLinks, userWork } from './cycle/apply-users';
import { beginCycle } from './cycle/begin';
import { guardDeactivations } from './cycle/guard';
import { groupsGoing, groupsToChange, planGroupsPhase } from './cycle/plan-groups';
import { planUsers } from './cycle/plan-users';
import type { CycleDeps, CycleOptions, CycleReport } from './cycle/ports';
import { quietCycle } from './cycle/quiet';
import { keptForApplying, readChanges, readEverything, type ChangesRead } from './cycle/read';
import { finishCycle, recordOutcome, recordPlan, settleApplying } from './cycle/record';
import type { CycleRun } from './cycle/run';
import { scopeAndMap } from './cycle/scope-map';
import type { TeamViewerUser } from '../domain/model';

export type { CycleDeps, CycleOptions, CyclePhase, CycleReport, CycleState, EntraSource, TeamViewerTarget } from './cycle/ports';
export type { ActionReport, ActionStatus } from '../domain/model';

/** A running cycle that wrote no progress for this long was interrupted (the process died). */
export const HEARTBEAT_STALE_MS = 2 * 60_000;

export async function runCycle(deps: CycleDeps, options: CycleOptions): Promise<CycleReport> {
  const run = await beginCycle(deps, options);
  try {
    const changes = await readChanges(run);
    const quiet = changes.delta?.unchanged ? await quietCycle(run, changes.delta) : null;
    if (!quiet?.quiet) await provision(run, changes, quiet?.listed ?? null);
  } catch (err) {
    run.fail(err);
  }
  return finishCycle(run);
}

/** The full path: read everything, plan, guard, apply, record. `listed`: TeamViewer's users, if a quiet cycle listed them. */
async function provision(run: CycleRun, changes: ChangesRead, listed: TeamViewerUser[] | null): Promise<void> {
  const { snapshot, users, groups, guard } = await planCycle(run, listed);

  const applier = Applier.start(run, changes.escrows);
  await applier.apply(users.actions, userWork(run, guard, snapshot.links));
  // After users: members are named by the TeamViewer ids users got.
  await applyGroups(run, applier, guard, groups, snapshot);
  await settleApplying(run, applier);
  if (!run.dryRun && !applier.abort && !applier.budgetReached) {
    await refreshLinks(run, users);
    await indexLinks(run, snapshot.links);
  }
  await recordOutcome(run, applier, changes, guard);
}

/**
 * Read, scope and map, plan, guard. Returns what applying needs and nothing more: the users read
 * and their mapped forms stay behind in this function, so they are let go before applying starts.
 */
async function planCycle(run: CycleRun, listed: TeamViewerUser[] | null) {
  const snapshot = await readEverything(run, listed);
  const scoped = await scopeAndMap(run, snapshot);
  const users = planUsers(run, snapshot, scoped);
  const groups = planGroupsPhase(run, snapshot, users);
  const guard = await guardDeactivations(run, users, snapshot, scoped, groupsGoing(groups));
  await recordPlan(run, { planned: users.actions.length + groupsToChange(groups?.plan ?? null), unchanged: users.unchanged, imported: snapshot.users.length });
  return { snapshot: keptForApplying(snapshot), users, groups, guard };
}
