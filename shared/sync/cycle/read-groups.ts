/**
 * Reading for user groups (GROUP_PROVISIONING=assigned), beside the full read of users: the group
 * links and the members tvsync wrote (state), TeamViewer's user groups and roles, and — where state
 * cannot be trusted — the members and roles TeamViewer holds now. Also what the delta rounds need
 * to notice a group renamed in Entra.
 *
 * Invariants:
 * - With group provisioning off nothing here runs: no call, no table.
 * - A failed group read (a missing right or licence, TeamViewer down, a group table that cannot be
 *   read) is never "no groups": nothing is planned for groups this cycle, one failure says why, and
 *   users are provisioned as usual. Only the cycle's reading deadline ends the whole cycle.
 * - TeamViewer's user groups are listed at every full read (one request per page): a group deleted
 *   or renamed by hand is noticed there. Members and roles are read from TeamViewer only where the
 *   member rows tvsync wrote cannot be trusted: every linked group in an initial cycle (the first
 *   with groups, changed group settings, a restart) and groups about to be adopted by name.
 *   Otherwise state is the truth, so a cycle with few changes reads few pages.
 * - A group rename in Entra makes a cycle read in full: the delta round reports the name, and it is
 *   compared with the name tvsync last wrote (the group links are read only when a name came back).
 */
import { mapWithConcurrency } from '../../http/pool';
import { raceAbort } from '../../http/timeout';
import type { AssignedGroup, GroupLink, TeamViewerGroup } from '../../domain/group-model';
import { errorInfo, type ErrorInfo } from '../error-info';
import { groupNameFor } from '../group-planner';
import { resolveGroupRoles, type ResolvedGroupRoles } from '../group-roles';
import type { GroupDeps } from './ports';
import type { CycleRun } from './run';

/** Everything the group planner is given, as read this cycle. */
export interface GroupsSnapshot {
  /** The groups assigned to the application, with their names now. */
  assigned: AssignedGroup[];
  links: GroupLink[];
  /** Members tvsync wrote, by Entra group id. */
  written: Map<string, string[]>;
  teamViewerGroups: TeamViewerGroup[];
  /** Members TeamViewer holds now, for the groups whose members were read (see the invariants). */
  teamViewerMembers: Map<string, string[]>;
  /** The role each group holds now, for the groups whose role was read. */
  teamViewerRoles: Map<string, string | null>;
  /** GROUP_ROLES resolved against the assigned groups and the company's roles; undefined without GROUP_ROLES. */
  roles?: ResolvedGroupRoles;
}

export type GroupsRead = { ok: true; snapshot: GroupsSnapshot } | { ok: false; error: ErrorInfo };

/** Groups whose members or role are read at once (each a request or a few). */
const READ_CONCURRENCY = 4;

/** The group side of the full read; null when group provisioning is off. */
export async function readGroups(run: CycleRun, assigned: AssignedGroup[] | undefined): Promise<GroupsRead | null> {
  const groups = run.deps.groups;
  if (!groups || groups.settings.provisioning !== 'assigned') return null;
  const signal = run.deadline.reading;
  try {
    if (!assigned) throw Object.assign(new Error('Microsoft Graph returned no names for the assigned groups'), { code: 'GRAPH_INCOMPLETE' });
    return { ok: true, snapshot: await readSnapshot(groups, assigned, run.record.kind === 'initial', signal) };
  } catch (err) {
    if (signal.aborted) throw err;
    const error = errorInfo(err);
    run.log.warn(`cycle ${run.cycleId}: the user groups could not be read (${error.code}); no group is changed this cycle, users are provisioned as usual`, { cycleId: run.cycleId, code: error.code });
    return { ok: false, error };
  }
}

async function readSnapshot(groups: GroupDeps, assigned: AssignedGroup[], initial: boolean, signal: AbortSignal): Promise<GroupsSnapshot> {
  const { settings, teamViewer, state } = groups;
  const [links, written, teamViewerGroups, roles] = await Promise.all([
    raceAbort(state.listGroupLinks(), signal),
    raceAbort(state.listAllMembers(), signal),
    teamViewer.listGroups({ signal }),
    settings.roles.length > 0 ? teamViewer.listRoles({ signal }) : Promise.resolve(null),
  ]);
  const resolved = roles ? resolveGroupRoles(settings.roles, roles, assigned) : undefined;
  const existing = new Set(teamViewerGroups.map((g) => g.id));
  const linked = links.filter((l) => l.teamViewerGroupId && existing.has(l.teamViewerGroupId));

  // Members: every linked group in an initial cycle, and every group an assigned one may adopt.
  const readMembersOf = new Set(initial ? linked.map((l) => l.teamViewerGroupId as string) : []);
  for (const id of adoptionCandidates(settings.prefix, assigned, links, teamViewerGroups)) readMembersOf.add(id);
  const teamViewerMembers = new Map<string, string[]>();
  await mapWithConcurrency([...readMembersOf], READ_CONCURRENCY, async (id) => {
    teamViewerMembers.set(id, await teamViewer.listMembers(id, { signal }));
  });

  // Roles: in an initial cycle, the role each mapped linked group holds now.
  const teamViewerRoles = new Map<string, string | null>();
  if (initial && resolved) {
    const mapped = linked.filter((l) => resolved.byGroup.has(l.entraGroupId.toLowerCase()));
    await mapWithConcurrency(mapped, READ_CONCURRENCY, async (l) => {
      teamViewerRoles.set(l.teamViewerGroupId as string, await teamViewer.getGroupRole(l.teamViewerGroupId as string, { signal }));
    });
  }
  return { assigned, links, written, teamViewerGroups, teamViewerMembers, teamViewerRoles, ...(resolved ? { roles: resolved } : {}) };
}

/**
 * TeamViewer groups an assigned group not linked yet (or whose create was interrupted) would adopt
 * by name: their members are read, so adopting compares with what is there.
 */
function adoptionCandidates(prefix: string, assigned: readonly AssignedGroup[], links: readonly GroupLink[], teamViewerGroups: readonly TeamViewerGroup[]): string[] {
  const linkOf = new Map(links.map((l) => [l.entraGroupId.toLowerCase(), l]));
  const wanted = new Set<string>();
  for (const group of assigned) {
    const link = linkOf.get(group.id.toLowerCase());
    if (link?.teamViewerGroupId) continue;
    if (link) wanted.add(link.name.toLowerCase());
    const name = groupNameFor(prefix, group.displayName);
    if ('name' in name) wanted.add(name.name.toLowerCase());
  }
  return teamViewerGroups.filter((g) => wanted.has(g.name.toLowerCase())).map((g) => g.id);
}

/**
 * For the delta rounds (read.ts): given the group names a delta round reported, whether one of them
 * differs from the name tvsync last wrote — a rename in Entra, which a quiet cycle must not miss.
 * Undefined when group provisioning is off (renames then change nothing).
 */
export function renameCheck(run: CycleRun): ((names: readonly AssignedGroup[]) => Promise<boolean>) | undefined {
  const groups = run.deps.groups;
  if (!groups || groups.settings.provisioning !== 'assigned') return undefined;
  return async (names) => {
    if (names.length === 0) return false;
    const links = new Map((await groups.state.listGroupLinks()).map((l) => [l.entraGroupId.toLowerCase(), l]));
    return names.some((group) => {
      const link = links.get(group.id.toLowerCase());
      const wanted = groupNameFor(groups.settings.prefix, group.displayName);
      // A group not linked yet, or whose name cannot be written, is work for a full read too.
      return !link || !('name' in wanted) || link.name !== wanted.name;
    });
  };
}
