/**
 * The guard phase: the accidental-deletion guard (shared/sync/guard.ts, pure) applied to the plan.
 * It releases what an admin allowed, judges every other deactivation, holds them back (staged)
 * when there are too many or the read looks short, and saves the guard's state before anything
 * is applied.
 *
 * Invariants:
 * - Every deactivation of the plan is judged — repairs of hand edits included — whatever planned
 *   it; nothing applies one the guard holds. A user group going (deleted, or emptied and
 *   unlinked) is judged in the same call and counts as one deactivation.
 * - Without the token owner nothing is deactivated (each becomes a warning) and the guard's state
 *   is left exactly as it was: this cycle decided nothing about it.
 * - The guard's state is saved conditionally: an admin who changed it meanwhile wins, and the next
 *   cycle re-reads it. An allowance is used up only when every deactivation it released succeeded.
 */
import type { ActionStatus } from '../../domain/model';
import { consumeAllowance, DEFAULT_GUARD, judge, type GuardState, type HeldUser } from '../guard';
import { commitGuard, readGuard, readIds, type GuardStore } from '../guard-state';
import type { GroupAction } from '../group-planner';
import { deactivates, type Action, type Plan } from '../planner';
import type { Snapshot } from './read';
import type { CycleRun } from './run';
import type { Scoped } from './scope-map';

/** What the guard needs of the user groups that go this cycle (GROUP_PROVISIONING=assigned). */
export interface GroupsGoing {
  /** The planner's deletions: member-remove and group-unlink of adopted groups, group-delete of created ones. */
  deletions: readonly GroupAction[];
  /** Linked user groups: with the managed users, the base of a percentage threshold. */
  managed: number;
}

/** The guard's verdict for one cycle, and how to record what became of it. */
export interface GuardRun {
  /** Deactivations and group deletions held back (staged) this cycle. */
  held: ReadonlySet<Action | GroupAction>;
  /** Why they are held, for their reports. */
  holdMessage: string;
  /** Deactivations turned into warnings because the token owner is unknown. */
  heldForOwner: number;
  /**
   * After applying: uses the allowance up when `ok` and every deactivation (and group deletion) it
   * released succeeded. `reports` name users and groups by Entra object id; a failure wins.
   */
  finish(reports: ReadonlyArray<{ entraId: string; status: ActionStatus }>, ok: boolean): Promise<void>;
}

/**
 * The accidental-deletion guard (shared/sync/guard.ts): releases what an admin allowed, judges
 * every other deactivation, holds them back when there are too many or the read looks short, and
 * saves the guard's state before anything is applied. Without the token owner nothing is
 * deactivated and the guard's state is left exactly as it was: this cycle decided nothing about it.
 */
export async function guardDeactivations(run: CycleRun, result: Plan, snapshot: Snapshot, scoped: Scoped, groups: GroupsGoing | null = null): Promise<GuardRun> {
  const { deps, log, cycleId } = run;
  const groupDeletions = groups?.deletions ?? [];
  const ctx = {
    ownerUnknown: snapshot.owner === null,
    // Users (and groups) tvsync manages, users in scope and users read: what the guard's limits are shares of.
    managed: snapshot.links.filter((l) => l.teamViewerId).length + (groups?.managed ?? 0),
    inScope: scoped.desired.filter((u) => u.entitled).length,
    imported: snapshot.users.length,
    startedAt: run.startedAt,
    dryRun: run.dryRun,
  };
  const deactivating = result.actions.filter(deactivates);
  if (ctx.ownerUnknown) {
    result.actions = result.actions.map((a): Action => deactivates(a)
      ? { entraId: a.entraId, userPrincipalName: a.userPrincipalName, kind: 'skip', warning: true, teamViewerId: ('teamViewerId' in a && a.teamViewerId) || undefined, reason: 'deactivation held back: the account that owns the TeamViewer token could not be identified; grant the token "Account management: view account data"' }
      : a);
    // The guard cannot judge this cycle without the users' deactivations: the groups going wait with them.
    return {
      held: new Set(groupDeletions),
      holdMessage: 'held back with the deactivations: the account that owns the TeamViewer token could not be identified, so the accidental-deletion guard could not judge this cycle',
      heldForOwner: deactivating.length + goingGroups(groupDeletions).length,
      finish: async () => undefined,
    };
  }
  const loaded = await loadGuard(deps.state);
  const judgement = judge({
    state: loaded.value,
    deactivations: [...goingGroups(groupDeletions), ...deactivating.map(heldUser)],
    allowedIds: loaded.allowedIds,
    stagedIds: loaded.stagedIds,
    managed: ctx.managed,
    inScope: ctx.inScope,
    imported: ctx.imported,
    settings: deps.guard ?? DEFAULT_GUARD,
    cycleId,
    at: ctx.startedAt.toISOString(),
    newSetId: deps.state.newIdSetId(ctx.startedAt),
  });
  const { decision, next } = judgement;
  const allowance = loaded.value.allowance;
  if (judgement.droppedLegacyAllowance) log.warn(`cycle ${cycleId}: the allowance granted by ${allowance?.by} at ${allowance?.grantedAt} comes from an older version that did not record which users it released; it is dropped and the deactivations are judged again (allow them again if they are held)`, { cycleId });
  if (judgement.released.size > 0) log.warn(`cycle ${cycleId}: applying ${judgement.released.size} deactivation(s) allowed by ${allowance?.by} at ${allowance?.grantedAt}`, { cycleId, released: judgement.released.size });
  if (judgement.held.size > 0 && decision.hold) log.warn(`cycle ${cycleId}: ${decision.message}; run "tvsync allow-deactivations" to apply them`, { cycleId, staged: judgement.held.size, newlyHeld: next.staged?.newlyHeld });

  let etag = loaded.etag;
  let current = loaded.value;
  let stale = false;
  /** Saves the guard's state; an admin who changed it meanwhile wins, and the next cycle re-reads it. */
  const save = async (value: GuardState, newSet: { setId: string; ids: string[] } | null): Promise<void> => {
    if (ctx.dryRun || stale) return;
    if (!newSet && JSON.stringify(value) === JSON.stringify(current)) {
      current = value;
      return;
    }
    try {
      etag = await commitGuard(deps.state, { previous: current, next: value, etag, newSet }, log);
      current = value;
    } catch (err) {
      if ((err as { code?: string }).code !== 'STATE_CONFLICT') throw err;
      stale = true;
      log.warn('the deactivation guard changed during the cycle; the next cycle re-reads it', { cycleId });
    }
  };
  await save(next, judgement.newSet);
  const held = new Set<Action | GroupAction>([
    ...deactivating.filter((a) => judgement.held.has(a.entraId.toLowerCase())),
    ...groupDeletions.filter((a) => judgement.held.has(a.entraGroupId.toLowerCase())),
  ]);
  return {
    held,
    holdMessage: decision.hold ? decision.message : '',
    heldForOwner: 0,
    async finish(reports, ok) {
      if (!ok || stale || !next.allowance) return;
      const failed = new Set(reports.filter((r) => r.status !== 'success').map((r) => r.entraId.toLowerCase()));
      const succeeded = new Set(reports.filter((r) => r.status === 'success' && !failed.has(r.entraId.toLowerCase())).map((r) => r.entraId.toLowerCase()));
      if (![...judgement.released].every((id) => succeeded.has(id))) return;
      await save(consumeAllowance(next, { count: judgement.released.size, cycleId, at: ctx.startedAt.toISOString() }), null);
    },
  };
}

/** One entry per user group going, as the guard counts and shows it. */
function goingGroups(deletions: readonly GroupAction[]): HeldUser[] {
  const byGroup = new Map<string, HeldUser>();
  for (const a of deletions) {
    const tvId = 'teamViewerGroupId' in a ? a.teamViewerGroupId ?? null : null;
    const reason = 'reason' in a ? a.reason : '';
    const what = a.kind === 'group-delete' ? 'user group deleted (tvsync created it)' : 'user group emptied of the members tvsync manages and unlinked (it existed before tvsync)';
    // member-remove and group-unlink of one adopted group are one deletion.
    if (!byGroup.has(a.entraGroupId) || a.kind !== 'member-remove') byGroup.set(a.entraGroupId, { entraId: a.entraGroupId, userPrincipalName: a.name, teamViewerId: tvId, reason: `${what}: ${reason}`.slice(0, 300), kind: 'group' });
  }
  return [...byGroup.values()];
}

function heldUser(a: Action): HeldUser {
  return { entraId: a.entraId, userPrincipalName: a.userPrincipalName, teamViewerId: 'teamViewerId' in a ? (a.teamViewerId ?? null) : null, reason: 'reason' in a ? a.reason : 'deactivate' };
}

/**
 * The guard's row with the ids it names. A set can vanish between reading the row and the set
 * only when an admin's allow-deactivations replaced it meanwhile: then the row is read again.
 */
async function loadGuard(state: GuardStore): Promise<{ value: GuardState; etag: string | null; allowedIds: Set<string>; stagedIds: Set<string> | null }> {
  for (let attempt = 1; ; attempt++) {
    const { value, etag } = await readGuard(state);
    try {
      const allowedIds = value.allowance?.setId ? await readIds(state, value.allowance.setId, value.allowance.count) : new Set<string>();
      const stagedIds = value.staged?.setId ? await readIds(state, value.staged.setId, value.staged.count) : null;
      return { value, etag, allowedIds, stagedIds };
    } catch (err) {
      if ((err as { code?: string }).code !== 'STATE_NOT_FOUND' || attempt >= 3) throw err;
    }
  }
}
