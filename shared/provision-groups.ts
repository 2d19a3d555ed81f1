/**
 * Provision on demand, for user groups (GROUP_PROVISIONING=assigned): after the user's own action,
 * the groups the user joins and leaves — the assigned groups they are a member of in Entra, as long
 * as they have an active TeamViewer account tvsync manages — applied at once, as a cycle would.
 *
 * Invariants:
 * - Only groups tvsync has linked are written; a group no cycle has created yet is named ("joins
 *   when the next cycle creates it"), never created here: creating, adopting and deleting groups
 *   is the cycle's work, under the accidental-deletion guard.
 * - Only memberships tvsync wrote are ever removed (its member rows), so an account added by hand
 *   stays; a member row is written after TeamViewer confirmed the add, deleted after it confirmed
 *   the removal.
 * - A user whose deactivation was wanted but did not happen (the token's owner, an owner that could
 *   not be identified) leaves no group, as in a cycle: that would deprovision them in part.
 * - A group problem (a missing right or licence, TeamViewer down) is a warning of this step: the
 *   user's own provisioning stands.
 */
import type { EntraReader } from './entra/reader';
import type { GroupLink, GroupSettings } from './domain/group-model';
import type { ActionReport, AssignedUser, Link } from './domain/model';
import type { GroupStateStore } from './state/groups';
import type { TeamViewerUserGroups } from './teamviewer/usergroups';
import { userLinksAfter } from './sync/cycle/apply-groups';
import { groupNameFor } from './sync/group-planner';

export interface ProvisionGroupDeps {
  settings: GroupSettings;
  state: GroupStateStore;
  teamViewer: TeamViewerUserGroups;
}

export interface GroupsOutcome {
  status: 'success' | 'warning' | 'skipped';
  detail: string;
}

/**
 * What becomes of the user's group memberships once `report` (the user's action, done or — in a
 * dry run — planned; null when there was nothing to do) is applied. `deactivationWanted`: the
 * action wanted the account inactive (wantsInactive); if it is still active, it leaves no group.
 */
export async function provisionGroups(
  deps: { entra: EntraReader; groups: ProvisionGroupDeps },
  user: AssignedUser,
  link: Link | undefined,
  report: ActionReport | null,
  dryRun: boolean,
  deactivationWanted = false,
): Promise<GroupsOutcome> {
  const { groups } = deps;
  const [assigned, links] = await Promise.all([deps.entra.readAssignedGroups(), groups.state.listGroupLinks()]);
  const after = userLinksAfter(link ? [link] : [], report ? [report] : [], dryRun).find((l) => l.entraId.toLowerCase() === user.id.toLowerCase());
  const member = after?.teamViewerId && after.active ? after.teamViewerId : null;
  const inEntra = new Set(user.viaGroups.map((g) => g.toLowerCase()));
  const linkOf = new Map(links.map((l) => [l.entraGroupId.toLowerCase(), l]));
  const quote = (name: string) => JSON.stringify(name);

  const join: GroupLink[] = [];
  const leave: GroupLink[] = [];
  const later: string[] = [];
  const already: string[] = [];
  for (const group of assigned) {
    const l = linkOf.get(group.id.toLowerCase());
    const wanted = member !== null && inEntra.has(group.id.toLowerCase());
    const written = member !== null && l?.teamViewerGroupId && !member.startsWith('planned:') ? await groups.state.hasMember(group.id, member) : false;
    if (wanted && !l?.teamViewerGroupId) {
      const name = groupNameFor(groups.settings.prefix, group.displayName);
      later.push('name' in name ? name.name : group.displayName);
    } else if (wanted && !written) join.push(l!);
    else if (wanted) already.push(l!.name);
  }
  // Groups the user leaves: linked ones whose member rows hold the user's account, no longer wanted.
  const previous = link?.teamViewerId ?? null;
  const held = deactivationWanted && member !== null && member === previous;
  if (previous && !held) {
    for (const l of links) {
      // A group no longer assigned goes as a whole, under the accidental-deletion guard: the cycle's work.
      if (!l.teamViewerGroupId || !assigned.some((g) => g.id.toLowerCase() === l.entraGroupId.toLowerCase())) continue;
      if (member === previous && inEntra.has(l.entraGroupId.toLowerCase())) continue;
      if (await groups.state.hasMember(l.entraGroupId, previous)) leave.push(l);
    }
  }

  const words = [
    ...join.map((l) => `${dryRun ? 'would join' : 'joins'} ${quote(l.name)} (TeamViewer user group ${l.teamViewerGroupId})`),
    ...leave.map((l) => `${dryRun ? 'would leave' : 'leaves'} ${quote(l.name)} (TeamViewer user group ${l.teamViewerGroupId})`),
    ...later.map((name) => `joins ${quote(name)} when the next cycle creates it`),
    ...(already.length > 0 ? [`already in ${already.map(quote).join(', ')}`] : []),
    ...(held ? ['keeps its user groups: the deactivation did not happen'] : []),
  ];
  if (words.length === 0) return { status: 'success', detail: member ? 'in no user group tvsync provisions' : 'no active TeamViewer account, so in no user group' };
  if (dryRun || (join.length === 0 && leave.length === 0)) return { status: dryRun ? 'skipped' : 'success', detail: `${words.join('; ')}${dryRun ? ' (dry run: nothing written)' : ''}` };

  const failures: string[] = [];
  for (const l of join) {
    await changeMembership(groups, l, member as string, 'add').catch((err: Error) => failures.push(`joining ${quote(l.name)}: ${err.message}`));
  }
  for (const l of leave) {
    await changeMembership(groups, l, previous as string, 'remove').catch((err: Error) => failures.push(`leaving ${quote(l.name)}: ${err.message}`));
  }
  return failures.length > 0
    ? { status: 'warning', detail: `${words.join('; ')} — not done: ${failures.join('; ')}` }
    : { status: 'success', detail: words.join('; ') };
}

async function changeMembership(groups: ProvisionGroupDeps, link: GroupLink, teamViewerId: string, change: 'add' | 'remove'): Promise<void> {
  const tvGroup = link.teamViewerGroupId as string;
  if (change === 'add') {
    await groups.teamViewer.addMembers(tvGroup, [teamViewerId]);
    await groups.state.addMembers(link.entraGroupId, [teamViewerId]);
  } else {
    await groups.teamViewer.removeMembers(tvGroup, [teamViewerId]);
    await groups.state.removeMembers(link.entraGroupId, [teamViewerId]);
  }
  if (link.members !== undefined) {
    await groups.state.putGroupLink({ ...link, members: Math.max(0, link.members + (change === 'add' ? 1 : -1)), updatedAt: new Date().toISOString() });
  }
}
