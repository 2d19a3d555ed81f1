/**
 * The group planner: a pure function from (assigned Entra groups and their members, user links,
 * group links and the members tvsync wrote, what was read of TeamViewer) to group actions.
 * No I/O, no clock: everything it decides can be tested with tables of cases.
 *
 * Invariants:
 * - Wanted name = GROUP_NAME_PREFIX + the Entra display name (trimmed). A name that is empty,
 *   longer than 100 UTF-16 units (stricter than TeamViewer's 100 characters) or holds a control
 *   character fails that group only; so does a name two assigned groups want (ignoring case),
 *   except for the one group that already holds it.
 * - Never two TeamViewer groups for one Entra group: an unlinked group adopts the TeamViewer group
 *   whose name equals the wanted name ignoring case, and is created only when there is none; a
 *   create intent (create sent, answer lost) is resolved by the name it was sent with. A
 *   TeamViewer group is tied to at most one Entra group (links and this plan's adoptions claim it).
 *   Groups that cannot be decided without the TeamViewer group list wait when it was not read.
 * - A group found by the name of an interrupted create is adopted, not owned: tvsync cannot prove
 *   its POST made it, and it deletes only groups it can prove it created.
 * - Members are the group's Entra members (AssignedUser.viaGroups) whose user link has a TeamViewer
 *   id and is active: a user tvsync has deactivated leaves the groups it manages.
 * - A user whose deactivation tvsync wanted but did not carry out (`held`: staged by the guard, the
 *   token's owner, a failed or skipped call) is taken out of no group and keeps its member rows,
 *   even of a group they left in Entra: that would be a deprovisioning nobody reviewed. They leave
 *   once the deactivation happened. Nobody is added for being held. (A group going is emptied
 *   whole, as the guard judged it: `deletions` do not look at `held`.)
 * - Never removes a member tvsync does not manage: only TeamViewer users that are linked to an
 *   Entra user are ever removed (an account added by hand stays).
 * - A group leaving tvsync's hands (unassigned or deleted in Entra) is deleted only when tvsync
 *   created it; an adopted one is emptied of the members tvsync manages and unlinked. Those actions
 *   come apart, in `deletions`, so the accidental-deletion guard can hold them back whole.
 * - Roles: a mapped group gets its role when tvsync has not written it (or TeamViewer, where read,
 *   shows another); a group whose mapping is unresolved keeps its role; a group no longer mapped
 *   keeps the role it has in TeamViewer (as Entra leaves a target value when a mapping is removed).
 * - A group already as it should be produces no action: a quiet cycle writes nothing.
 */
import type { Link } from '../domain/model';
import type { AssignedGroup, GroupLink, TeamViewerGroup, TeamViewerRole } from '../domain/group-model';

/** TeamViewer's limit, counted in UTF-16 units (never more than its characters). */
export const MAX_GROUP_NAME = 100;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

interface GroupActionBase {
  /** Entra group object id, lower-case. */
  entraGroupId: string;
  /** The TeamViewer group name the action is about: the wanted one, or the last written for a group that goes. */
  name: string;
}

export type GroupAction =
  /** Clear the group's member rows, write an intent, POST; on TEAMVIEWER_GROUP_NAME_TAKEN list and adopt. */
  | (GroupActionBase & { kind: 'group-create'; replacesTeamViewerGroupId?: string })
  /** Link to an existing TeamViewer group (clearing member rows of any earlier link). */
  | (GroupActionBase & { kind: 'group-link'; teamViewerGroupId: string; origin: GroupLink['origin']; reason: string })
  | (GroupActionBase & { kind: 'group-rename'; teamViewerGroupId: string; from: string })
  /** teamViewerGroupId null: the group this plan creates for the same Entra group. */
  | (GroupActionBase & { kind: 'member-add'; teamViewerGroupId: string | null; members: string[] })
  | (GroupActionBase & { kind: 'member-remove'; teamViewerGroupId: string; members: string[]; reason: string })
  | (GroupActionBase & { kind: 'role-assign'; teamViewerGroupId: string | null; role: TeamViewerRole; previous: TeamViewerRole | null })
  /** State only, no TeamViewer call: members found already there, rows of members no longer managed, the role written. */
  | (GroupActionBase & { kind: 'group-record'; teamViewerGroupId: string; record: string[]; forget: string[]; role?: TeamViewerRole | null })
  | (GroupActionBase & { kind: 'group-delete'; teamViewerGroupId: string; reason: string })
  /** Drop the link and its member rows (after any member-remove before it); teamViewerGroupId null for a create intent. */
  | (GroupActionBase & { kind: 'group-unlink'; teamViewerGroupId: string | null; reason: string })
  | (GroupActionBase & { kind: 'group-fail'; code: GroupFailureCode; reason: string; teamViewerGroupId?: string });

export type GroupActionKind = GroupAction['kind'];

export type GroupFailureCode =
  | 'GROUP_NAME_EMPTY'
  | 'GROUP_NAME_TOO_LONG'
  | 'GROUP_NAME_INVALID'
  | 'GROUP_NAME_CLAIMED_TWICE'
  | 'GROUP_NAME_TAKEN'
  | 'GROUP_AMBIGUOUS_MATCH';

/** Does this action take a TeamViewer group out of tvsync's hands? (The guard counts these in `deletions`.) */
export const removesGroup = (a: GroupAction): boolean => a.kind === 'group-delete' || a.kind === 'group-unlink';

export interface GroupPlanInput {
  /** GROUP_NAME_PREFIX. */
  prefix: string;
  /** The groups assigned to the application, with their names now (complete, as the reader promises). */
  groups: readonly AssignedGroup[];
  /** Users read from Entra and the assigned groups each belongs to (AssignedUser satisfies it). */
  users: ReadonlyArray<{ id: string; viaGroups: readonly string[] }>;
  /** User links after the user phase: who is provisioned, as which TeamViewer user, active or not. */
  userLinks: ReadonlyArray<Pick<Link, 'entraId' | 'teamViewerId' | 'active'>>;
  /**
   * TeamViewer ids of users whose deactivation was wanted this cycle and did not happen (staged,
   * the token's owner, failed, skipped): never taken out of a group.
   */
  held?: ReadonlySet<string>;
  groupLinks: readonly GroupLink[];
  /** Members tvsync wrote, by Entra group id (GroupStateStore.listAllMembers). */
  written: ReadonlyMap<string, readonly string[]>;
  /** Every TeamViewer user group, when read this cycle; undefined: not read. */
  teamViewerGroups?: readonly TeamViewerGroup[];
  /** Members now, by TeamViewer group id, for the groups whose members were read this cycle. */
  teamViewerMembers?: ReadonlyMap<string, readonly string[]>;
  /** Role id now (null: none), by TeamViewer group id, for the groups whose role was read. */
  teamViewerRoles?: ReadonlyMap<string, string | null>;
  /** GROUP_ROLES resolved (resolveGroupRoles); undefined: roles are not managed this cycle. */
  roles?: { byGroup: ReadonlyMap<string, TeamViewerRole>; unresolved: ReadonlySet<string> };
  /** Why linked groups that are no longer assigned went (default: unassigned). */
  goneReasons?: ReadonlyMap<string, string>;
}

export interface GroupPlan {
  /** For groups that stay or come, grouped by Entra group, in the order to apply them. */
  actions: GroupAction[];
  /** For groups that go: member-remove then group-unlink (adopted), or group-delete (created). */
  deletions: GroupAction[];
  /** Linked groups already as they should be. */
  unchanged: number;
  /** Entra groups that wait for the TeamViewer group list (not linked yet, or a create intent). */
  needTeamViewerGroups: string[];
}

/** The TeamViewer name for an Entra group, or why it cannot have one. */
export function groupNameFor(prefix: string, displayName: string): { name: string } | { code: GroupFailureCode; reason: string } {
  const base = displayName.trim();
  if (base === '') return { code: 'GROUP_NAME_EMPTY', reason: 'the Entra display name is empty' };
  const name = `${prefix}${base}`;
  if (CONTROL.test(name)) return { code: 'GROUP_NAME_INVALID', reason: `the name ${JSON.stringify(name)} contains a control character or line break` };
  if (name.length > MAX_GROUP_NAME) {
    return { code: 'GROUP_NAME_TOO_LONG', reason: `the name ${JSON.stringify(name.slice(0, 40))}… has ${name.length} characters; TeamViewer takes ${MAX_GROUP_NAME}: shorten the Entra display name${prefix ? ' or GROUP_NAME_PREFIX' : ''}` };
  }
  return { name };
}

const lower = (s: string): string => s.toLowerCase();
const sorted = (ids: Iterable<string>): string[] => [...ids].sort();
const minus = (a: Iterable<string>, b: ReadonlySet<string>): Set<string> => new Set([...a].filter((x) => !b.has(x)));

/** What the planner knows of one group's TeamViewer side once its link is resolved. */
type Target =
  | { kind: 'existing'; id: string; currentName: string; fresh: boolean }
  | { kind: 'new' }
  | { kind: 'none' };

export function planGroups(input: GroupPlanInput): GroupPlan {
  const snapshot = input.teamViewerGroups;
  const tvById = new Map((snapshot ?? []).map((g) => [g.id, g]));
  const tvByName = new Map<string, TeamViewerGroup[]>();
  for (const g of snapshot ?? []) tvByName.set(lower(g.name), [...(tvByName.get(lower(g.name)) ?? []), g]);
  const assigned = new Map(input.groups.map((g) => [lower(g.id), { ...g, id: lower(g.id) }]));
  const linkOf = new Map(input.groupLinks.map((l) => [lower(l.entraGroupId), l]));
  const writtenByGroup = new Map([...input.written].map(([id, ids]) => [lower(id), ids]));
  const writtenOf = (id: string): Set<string> => new Set(writtenByGroup.get(id) ?? []);

  // TeamViewer groups tied to an Entra group; adoptions made while planning claim theirs too.
  const claimed = new Map<string, string>();
  for (const l of input.groupLinks) if (l.teamViewerGroupId) claimed.set(l.teamViewerGroupId, lower(l.entraGroupId));
  const unclaimed = (name: string, entraGroupId: string) =>
    (tvByName.get(lower(name)) ?? []).filter((g) => !claimed.has(g.id) || claimed.get(g.id) === entraGroupId);

  const { managed, desired } = members(input, assigned);
  const names = wantedNames(input.prefix, [...assigned.values()]);
  const holderOf = nameHolders(names, assigned, linkOf, tvById);

  const actions: GroupAction[] = [];
  const deletions: GroupAction[] = [];
  const needTeamViewerGroups: string[] = [];
  let unchanged = 0;

  for (const group of [...assigned.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const link = linkOf.get(group.id);
    const wanted = names.get(group.id)!;
    const own: GroupAction[] = [];
    const fail = (code: GroupFailureCode, reason: string, teamViewerGroupId?: string) =>
      own.push({ entraGroupId: group.id, name: 'name' in wanted ? wanted.name : group.displayName, kind: 'group-fail', code, reason, ...(teamViewerGroupId ? { teamViewerGroupId } : {}) });

    // The name, if this group may have it.
    let name: string | undefined;
    if (!('name' in wanted)) {
      fail(wanted.code, wanted.reason, link?.teamViewerGroupId ?? undefined);
    } else if (holderOf.has(lower(wanted.name)) && holderOf.get(lower(wanted.name)) !== group.id) {
      const rivals = [...assigned.values()].filter((g) => g.id !== group.id && 'name' in names.get(g.id)! && lower((names.get(g.id) as { name: string }).name) === lower(wanted.name));
      fail('GROUP_NAME_CLAIMED_TWICE', `${rivals.length + 1} assigned Entra groups want the TeamViewer name ${JSON.stringify(wanted.name)} (also ${rivals.map((g) => g.id).join(', ')}); rename one in Entra`, link?.teamViewerGroupId ?? undefined);
    } else {
      name = wanted.name;
    }

    // The TeamViewer group it stands for.
    let target: Target = { kind: 'none' };
    const vanished = link?.teamViewerGroupId && snapshot && !tvById.has(link.teamViewerGroupId) ? link.teamViewerGroupId : undefined;
    if (link?.teamViewerGroupId && !vanished) {
      target = { kind: 'existing', id: link.teamViewerGroupId, currentName: tvById.get(link.teamViewerGroupId)?.name ?? link.name, fresh: false };
    } else if (!snapshot) {
      needTeamViewerGroups.push(group.id);
      continue;
    } else {
      // Not linked, linked to a group that is gone, or an intent whose answer was lost.
      const intent = link && !link.teamViewerGroupId ? unclaimed(link.name, group.id) : [];
      if (intent.length > 1) {
        fail('GROUP_AMBIGUOUS_MATCH', `an interrupted create left ${ambiguous(intent, link!.name)}`);
      } else if (intent.length === 1) {
        claimed.set(intent[0]!.id, group.id);
        own.push({ entraGroupId: group.id, name: intent[0]!.name, kind: 'group-link', teamViewerGroupId: intent[0]!.id, origin: 'adopted', reason: `an interrupted create left a TeamViewer group named ${JSON.stringify(link!.name)}; adopted, as tvsync cannot prove it made it` });
        target = { kind: 'existing', id: intent[0]!.id, currentName: intent[0]!.name, fresh: true };
      } else if (name !== undefined) {
        const candidates = unclaimed(name, group.id);
        const taken = (tvByName.get(lower(name)) ?? []).find((g) => claimed.has(g.id));
        if (candidates.length > 1) {
          fail('GROUP_AMBIGUOUS_MATCH', ambiguous(candidates, name));
        } else if (candidates.length === 1) {
          claimed.set(candidates[0]!.id, group.id);
          own.push({ entraGroupId: group.id, name, kind: 'group-link', teamViewerGroupId: candidates[0]!.id, origin: 'adopted', reason: `TeamViewer already has a user group named ${JSON.stringify(candidates[0]!.name)}` });
          target = { kind: 'existing', id: candidates[0]!.id, currentName: candidates[0]!.name, fresh: true };
        } else if (taken) {
          fail('GROUP_NAME_TAKEN', `TeamViewer user group ${taken.id} ${JSON.stringify(taken.name)} is already linked to another Entra group (${claimed.get(taken.id)})`);
        } else {
          own.push({ entraGroupId: group.id, name, kind: 'group-create', ...(vanished ? { replacesTeamViewerGroupId: vanished } : {}) });
          target = { kind: 'new' };
        }
      }
    }

    if (target.kind === 'existing' && name !== undefined && target.currentName !== name) {
      const other = (tvByName.get(lower(name)) ?? []).find((g) => g.id !== target.id);
      if (other) fail('GROUP_NAME_TAKEN', `cannot rename TeamViewer group ${target.id} to ${JSON.stringify(name)}: user group ${other.id} ${JSON.stringify(other.name)} has that name${claimed.has(other.id) ? ` and is linked to Entra group ${claimed.get(other.id)}` : ''}`, target.id);
      else own.push({ entraGroupId: group.id, name, kind: 'group-rename', teamViewerGroupId: target.id, from: target.currentName });
    }
    if (target.kind !== 'none') {
      const label = name ?? (target.kind === 'existing' ? target.currentName : group.displayName);
      own.push(...memberActions(input, group.id, label, target, desired.get(group.id) ?? new Set(), target.kind === 'existing' && !target.fresh ? writtenOf(group.id) : new Set(), managed, link));
    }
    if (own.length === 0) unchanged++;
    actions.push(...own);
  }

  // Linked groups no longer assigned: unassigned in Entra, or deleted.
  for (const link of [...input.groupLinks].sort((a, b) => (lower(a.entraGroupId) < lower(b.entraGroupId) ? -1 : 1))) {
    const id = lower(link.entraGroupId);
    if (assigned.has(id)) continue;
    const reason = input.goneReasons?.get(id) ?? 'no longer assigned to the TeamViewer application in Entra ID';
    const base = { entraGroupId: id, name: link.name };
    if (!link.teamViewerGroupId) {
      // A group the lost create may have made is never proven ours: it would be adopted, and an
      // adopted group that goes is left in place with none of our members (it has none). So the
      // intent is simply dropped.
      const left = snapshot ? unclaimed(link.name, id) : [];
      const what = left.length > 0 ? `; TeamViewer group ${left.map((g) => g.id).join(', ')} of that name is left in place` : '';
      actions.push({ ...base, kind: 'group-unlink', teamViewerGroupId: null, reason: `${reason}; dropping an interrupted create${what}` });
      continue;
    }
    if (snapshot && !tvById.has(link.teamViewerGroupId)) {
      actions.push({ ...base, kind: 'group-unlink', teamViewerGroupId: link.teamViewerGroupId, reason: `${reason}, and TeamViewer group ${link.teamViewerGroupId} no longer exists` });
      continue;
    }
    const currentName = tvById.get(link.teamViewerGroupId)?.name ?? link.name;
    if (link.origin === 'created') {
      deletions.push({ entraGroupId: id, name: currentName, kind: 'group-delete', teamViewerGroupId: link.teamViewerGroupId, reason });
      continue;
    }
    const current = input.teamViewerMembers?.get(link.teamViewerGroupId);
    const ours = sorted([...(current ?? writtenOf(id))].filter((m) => managed.has(m)));
    if (ours.length > 0) {
      deletions.push({ entraGroupId: id, name: currentName, kind: 'member-remove', teamViewerGroupId: link.teamViewerGroupId, members: ours, reason: `${reason}; the group was adopted, so it is only emptied of the members tvsync manages` });
    }
    deletions.push({ entraGroupId: id, name: currentName, kind: 'group-unlink', teamViewerGroupId: link.teamViewerGroupId, reason: `${reason}; the group existed before tvsync took it over, so it stays in TeamViewer` });
  }

  return { actions, deletions, unchanged, needTeamViewerGroups };
}

/** Who may be in the groups: managed TeamViewer users, and per assigned group the ones it should hold. */
function members(input: GroupPlanInput, assigned: ReadonlyMap<string, AssignedGroup>): { managed: Set<string>; desired: Map<string, Set<string>> } {
  const managed = new Set<string>();
  const activeAs = new Map<string, string>();
  for (const l of input.userLinks) {
    if (!l.teamViewerId) continue;
    managed.add(l.teamViewerId);
    if (l.active) activeAs.set(lower(l.entraId), l.teamViewerId);
  }
  const desired = new Map<string, Set<string>>();
  for (const user of input.users) {
    const teamViewerId = activeAs.get(lower(user.id));
    if (!teamViewerId) continue;
    for (const groupId of user.viaGroups) {
      const key = lower(groupId);
      if (!assigned.has(key)) continue;
      const set = desired.get(key) ?? new Set<string>();
      set.add(teamViewerId);
      desired.set(key, set);
    }
  }
  return { managed, desired };
}

function wantedNames(prefix: string, groups: readonly AssignedGroup[]): Map<string, ReturnType<typeof groupNameFor>> {
  return new Map(groups.map((g) => [g.id, groupNameFor(prefix, g.displayName)]));
}

/**
 * For every name two or more assigned groups want: the one group that already holds it in
 * TeamViewer (it keeps it), or none (then no group gets it this cycle).
 */
function nameHolders(
  names: ReadonlyMap<string, ReturnType<typeof groupNameFor>>,
  assigned: ReadonlyMap<string, AssignedGroup>,
  linkOf: ReadonlyMap<string, GroupLink>,
  tvById: ReadonlyMap<string, TeamViewerGroup>,
): Map<string, string | null> {
  const wantedBy = new Map<string, string[]>();
  for (const [id, wanted] of names) if ('name' in wanted) wantedBy.set(lower(wanted.name), [...(wantedBy.get(lower(wanted.name)) ?? []), id]);
  const holders = new Map<string, string | null>();
  for (const [name, ids] of wantedBy) {
    if (ids.length < 2) continue;
    const holding = ids.filter((id) => {
      const link = linkOf.get(id);
      if (!link?.teamViewerGroupId || !assigned.has(id)) return false;
      return lower(tvById.get(link.teamViewerGroupId)?.name ?? link.name) === name;
    });
    holders.set(name, holding.length === 1 ? holding[0]! : null);
  }
  return holders;
}

/**
 * Member and role actions for one group. `written` is empty for a group linked in this plan (its
 * rows, if any, belong to an earlier link and are cleared). With members read from TeamViewer the
 * difference is taken against them; without, against what tvsync wrote.
 */
function memberActions(
  input: GroupPlanInput,
  entraGroupId: string,
  name: string,
  target: Exclude<Target, { kind: 'none' }>,
  desired: ReadonlySet<string>,
  written: ReadonlySet<string>,
  managed: ReadonlySet<string>,
  link: GroupLink | undefined,
): GroupAction[] {
  const out: GroupAction[] = [];
  const base = { entraGroupId, name };
  const teamViewerGroupId = target.kind === 'existing' ? target.id : null;

  let add: Set<string>;
  let remove = new Set<string>();
  let record = new Set<string>();
  let forget = new Set<string>();
  const held = input.held ?? new Set<string>();
  // Held users stay where they are (never added for it): as if still wanted, where they are members.
  const stays = (m: string) => desired.has(m) || held.has(m);
  const current = teamViewerGroupId === null ? undefined : input.teamViewerMembers?.get(teamViewerGroupId);
  if (teamViewerGroupId === null) {
    add = new Set(desired);
  } else if (current) {
    const now = new Set(current);
    add = minus(desired, now);
    remove = new Set([...now].filter((m) => managed.has(m) && !stays(m)));
    record = new Set([...now].filter((m) => stays(m) && managed.has(m) && !written.has(m)));
    forget = new Set([...written].filter((m) => !desired.has(m) && !(held.has(m) && now.has(m)) && !remove.has(m)));
  } else {
    add = minus(desired, written);
    remove = new Set([...written].filter((m) => managed.has(m) && !stays(m)));
    forget = new Set([...written].filter((m) => !managed.has(m)));
  }
  if (remove.size > 0 && teamViewerGroupId !== null) {
    out.push({ ...base, kind: 'member-remove', teamViewerGroupId, members: sorted(remove), reason: 'no longer a member in Entra ID, or no longer an active TeamViewer user tvsync manages' });
  }
  if (add.size > 0) out.push({ ...base, kind: 'member-add', teamViewerGroupId, members: sorted(add) });

  // Roles.
  let roleRecord: TeamViewerRole | null | undefined;
  const roles = input.roles;
  if (roles && !roles.unresolved.has(entraGroupId)) {
    const mapped = roles.byGroup.get(entraGroupId);
    const previous = target.kind === 'existing' && !target.fresh ? link?.role ?? null : null;
    const now = teamViewerGroupId === null ? undefined : input.teamViewerRoles?.get(teamViewerGroupId);
    if (mapped) {
      const holds = now !== undefined ? now !== null && lower(now) === lower(mapped.id) : previous !== null && lower(previous.id) === lower(mapped.id);
      if (!holds) out.push({ ...base, kind: 'role-assign', teamViewerGroupId, role: mapped, previous });
      else if (!previous || lower(previous.id) !== lower(mapped.id) || previous.name !== mapped.name) roleRecord = mapped;
    } else if (previous) {
      roleRecord = null;
    }
  }

  if (teamViewerGroupId !== null && (record.size > 0 || forget.size > 0 || roleRecord !== undefined)) {
    out.push({ ...base, kind: 'group-record', teamViewerGroupId, record: sorted(record), forget: sorted(forget), ...(roleRecord !== undefined ? { role: roleRecord } : {}) });
  }
  return out;
}

function ambiguous(groups: readonly TeamViewerGroup[], name: string): string {
  return `${groups.length} TeamViewer user groups (${groups.map((g) => `${g.id} ${JSON.stringify(g.name)}`).join(', ')}) are named ${JSON.stringify(name)} apart from letter case; rename or delete one in TeamViewer`;
}
