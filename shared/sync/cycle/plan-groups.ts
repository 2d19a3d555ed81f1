/**
 * Plan groups: the pure group planner (shared/sync/group-planner.ts) over what was read, before the
 * guard — so the groups that go (deleted, or emptied and unlinked) are judged with the users'
 * deactivations — and the warnings the group settings earn (GROUP_ROLES naming an unknown role or a
 * group that is not assigned). No I/O.
 *
 * Invariants:
 * - The deletions planned here are the ones applied (and held by the guard): they do not depend on
 *   what the users' changes do. Everything else is planned again after the users were applied
 *   (apply-groups.ts), since members are named by the TeamViewer ids the users' changes give.
 * - A warning is never a failure: user provisioning and the other groups go on.
 * - The users whose deactivation the user plan wants are taken here, before the guard turns any
 *   into a warning (an unknown token owner): with the token's owner, whom the plan never
 *   deactivates, they are the users a group may not lose unless the deactivation happened.
 */
import type { Link } from '../../domain/model';
import type { GroupPlanInput } from '../group-planner';
import { planGroups, type GroupAction, type GroupPlan } from '../group-planner';
import { deactivates, type Action, type Plan } from '../planner';
import type { Snapshot } from './read';
import type { GroupsRead, GroupsSnapshot } from './read-groups';
import type { GroupsGoing } from './guard';
import type { CycleRun } from './run';

/** Warnings kept on a cycle's row at most, each at most this long. */
const MAX_WARNINGS = 20;
const MAX_WARNING_LENGTH = 300;

export interface GroupPhase {
  /** What was read; a failed read plans nothing. */
  read: GroupsRead;
  /** The plan with the links as they were before users were applied; null when the read failed. */
  plan: GroupPlan | null;
  /**
   * Entra ids (lower-case) of the users the user plan wants inactive — deactivations, and the
   * token's owner it leaves active on purpose. Those still active after applying are held.
   */
  deactivating: ReadonlySet<string>;
}

/** The group plan before the guard; null when group provisioning is off. `users`: the user plan, before the guard. */
export function planGroupsPhase(run: CycleRun, snapshot: Snapshot, users: Pick<Plan, 'actions'>): GroupPhase | null {
  const read = snapshot.groups;
  if (!read) return null;
  const deactivating = wantedInactive(users, snapshot.owner?.id ?? null);
  if (!read.ok) return { read, plan: null, deactivating };
  const planned = planGroups(groupPlanInput(run, read.snapshot, snapshot, snapshot.links));
  const warnings = (read.snapshot.roles?.problems ?? []).map((p) => p.message.slice(0, MAX_WARNING_LENGTH));
  if (warnings.length > 0) {
    run.record.groupWarnings = warnings.slice(0, MAX_WARNINGS);
    for (const w of warnings) run.log.warn(`cycle ${run.cycleId}: ${w}`, { cycleId: run.cycleId });
  }
  if (planned.needTeamViewerGroups.length > 0) run.log.warn(`cycle ${run.cycleId}: ${planned.needTeamViewerGroups.length} group(s) wait for TeamViewer's list of user groups`, { cycleId: run.cycleId });
  return { read, plan: planned, deactivating };
}

/** The users the plan makes inactive, and the token's owner when it wants them inactive (wantsInactive). */
function wantedInactive(users: Pick<Plan, 'actions'>, ownerId: string | null): Set<string> {
  return new Set(users.actions.filter((a) => wantsInactive(a, ownerId)).map((a) => a.entraId.toLowerCase()));
}

/**
 * Does this planned user action want the user's account inactive? A deactivation, or the warning
 * skip the planner leaves for the token's owner instead of one (out of scope, or the active mapping
 * gave False). Until it happens, the user keeps their user groups.
 */
export function wantsInactive(a: Action, ownerId: string | null): boolean {
  return deactivates(a) || (a.kind === 'skip' && a.warning === true && ownerId !== null && a.teamViewerId === ownerId);
}

/** The planner's input: what was read, with the user links given (before or after users were applied). */
export function groupPlanInput(run: CycleRun, groups: GroupsSnapshot, snapshot: Snapshot, userLinks: GroupPlanInput['userLinks'], held?: ReadonlySet<string>): GroupPlanInput {
  return {
    prefix: run.deps.groups?.settings.prefix ?? '',
    groups: groups.assigned,
    users: snapshot.users,
    userLinks,
    ...(held ? { held } : {}),
    groupLinks: groups.links,
    written: groups.written,
    teamViewerGroups: groups.teamViewerGroups,
    teamViewerMembers: groups.teamViewerMembers,
    teamViewerRoles: groups.teamViewerRoles,
    ...(groups.roles ? { roles: groups.roles } : {}),
  };
}

/** How many groups have changes planned (the progress bar counts a group as one piece of work). */
export function groupsToChange(plan: GroupPlan | null): number {
  if (!plan) return 0;
  return new Set([...plan.actions, ...plan.deletions].map((a: GroupAction) => a.entraGroupId)).size;
}

export type UserLinkView = Pick<Link, 'entraId' | 'teamViewerId' | 'active'>;

/** What the guard judges of the groups: those that go, and how many groups tvsync manages. */
export function groupsGoing(phase: GroupPhase | null): GroupsGoing | null {
  if (!phase?.plan || !phase.read.ok) return null;
  return { deletions: phase.plan.deletions, managed: phase.read.snapshot.links.filter((l) => l.teamViewerGroupId).length };
}
