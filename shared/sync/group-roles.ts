/**
 * The group settings, checked and resolved: GROUP_NAME_PREFIX and GROUP_ROLES as shared/config.ts
 * reads them (every problem named, nothing guessed), and GROUP_ROLES resolved against what exists
 * now — the groups assigned in Entra and the roles of the TeamViewer company. Pure: no I/O.
 *
 * Invariants:
 * - A GROUP_ROLES entry names its group by object id or by exact display name (letter case
 *   included), and its role by id or by name. Nothing is matched by guesswork beyond that: a role
 *   name that differs only in letter case is taken when exactly one role matches it so; two
 *   assigned groups with the display name, or two entries landing on one group, are problems.
 * - A group an entry names but whose role cannot be resolved is `unresolved`: its role is left as
 *   it is in TeamViewer (and in state) until the entry is fixed — an unknown role never reads as
 *   "no role wanted".
 */
import type { AssignedGroup, GroupRoleSetting, TeamViewerRole } from '../domain/group-model';

/** Room left for the Entra name: a TeamViewer group name has at most 100 characters. */
export const MAX_PREFIX_LENGTH = 50;
/** Entra display names have at most 256 characters; role names are no longer in practice. */
const MAX_VALUE_LENGTH = 256;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// C0 and C1 controls and DEL; checked per UTF-16 unit, no backtracking.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const quoted = (value: string): string => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);

/** What is wrong with a GROUP_NAME_PREFIX, or null. Trailing spaces are kept ("Entra - "), leading ones refused. */
export function checkGroupNamePrefix(prefix: string): string | null {
  if (prefix.length > MAX_PREFIX_LENGTH) {
    return `is ${prefix.length} characters; at most ${MAX_PREFIX_LENGTH}, so that prefix and Entra name fit TeamViewer's 100`;
  }
  if (CONTROL.test(prefix)) return 'contains a control character or line break';
  if (/^\s/.test(prefix)) return `${quoted(prefix)} starts with white space; TeamViewer names should not`;
  return null;
}

/** GROUP_ROLES parsed, or every problem with it (each naming its entry). Empty text: no roles. */
export function parseGroupRoles(text: string): { roles: GroupRoleSetting[]; problems: string[] } {
  if (text.trim() === '') return { roles: [], problems: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { roles: [], problems: [`is not JSON (${(error as Error).message}); expected [{"group": "<Entra group object id or display name>", "role": "<TeamViewer role name or id>"}]`] };
  }
  if (!Array.isArray(parsed)) return { roles: [], problems: ['must be a JSON array of {"group": …, "role": …} entries'] };

  const roles: GroupRoleSetting[] = [];
  const problems: string[] = [];
  const firstEntryOf = new Map<string, number>();
  parsed.forEach((entry: unknown, index) => {
    const where = `entry ${index + 1}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where} is not an object like {"group": "Helpdesk", "role": "Support agent"}`);
      return;
    }
    const record = entry as Record<string, unknown>;
    const before = problems.length;
    for (const key of Object.keys(record)) {
      if (key !== 'group' && key !== 'role') problems.push(`${where} has the unknown key ${quoted(key)} (only "group" and "role")`);
    }
    const text = (key: 'group' | 'role', what: string): string | undefined => {
      const value = record[key];
      if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
        problems.push(`${where} has no "${key}" (${what})`);
      } else if (typeof value !== 'string') {
        problems.push(`${where}: "${key}" must be a string (${what})`);
      } else if (value.length > MAX_VALUE_LENGTH) {
        problems.push(`${where}: "${key}" is ${value.length} characters; at most ${MAX_VALUE_LENGTH}`);
      } else {
        return value;
      }
      return undefined;
    };
    const group = text('group', 'an Entra group object id or its exact display name');
    const role = text('role', 'a TeamViewer role name or id');
    if (group !== undefined) {
      const key = groupKey(group);
      const first = firstEntryOf.get(key);
      if (first !== undefined) problems.push(`${where} maps the group ${quoted(group)} again (first in entry ${first}); give each group one role`);
      else firstEntryOf.set(key, index + 1);
    }
    if (problems.length === before && group !== undefined && role !== undefined) roles.push({ group, role });
  });
  return { roles, problems };
}

/** Object ids compare without case; display names exactly. */
function groupKey(group: string): string {
  return GUID.test(group.trim()) ? `id:${group.trim().toLowerCase()}` : `name:${group}`;
}

export type GroupRoleProblemCode =
  | 'GROUP_ROLE_UNKNOWN_GROUP'
  | 'GROUP_ROLE_AMBIGUOUS_GROUP'
  | 'GROUP_ROLE_GROUP_MAPPED_TWICE'
  | 'GROUP_ROLE_UNKNOWN_ROLE'
  | 'GROUP_ROLE_AMBIGUOUS_ROLE';

export interface GroupRoleProblem {
  /** 1-based position in GROUP_ROLES. */
  entry: number;
  group: string;
  role: string;
  code: GroupRoleProblemCode;
  /** A sentence for test-connection and the cycle's report. */
  message: string;
}

export interface ResolvedGroupRoles {
  /** Entra group id (lower-case) → the role its TeamViewer group must hold. */
  byGroup: Map<string, TeamViewerRole>;
  /** Groups an entry names whose role could not be resolved: leave their role alone. */
  unresolved: Set<string>;
  problems: GroupRoleProblem[];
}

/**
 * GROUP_ROLES against the assigned groups (by object id, else exact display name) and the
 * company's roles (by id, else name). Entries whose group is not assigned now are problems too
 * (a typo, or a group not yet assigned): report them, they change nothing.
 */
export function resolveGroupRoles(settings: readonly GroupRoleSetting[], roles: readonly TeamViewerRole[], groups: readonly AssignedGroup[]): ResolvedGroupRoles {
  const byGroup = new Map<string, TeamViewerRole>();
  const unresolved = new Set<string>();
  const problems: GroupRoleProblem[] = [];
  const claimedBy = new Map<string, number>();

  settings.forEach((setting, index) => {
    const entry = index + 1;
    const problem = (code: GroupRoleProblemCode, message: string) => problems.push({ entry, group: setting.group, role: setting.role, code, message: `GROUP_ROLES entry ${entry}: ${message}` });

    const groupMatch = findGroup(setting.group, groups);
    if (groupMatch.length === 0) {
      problem('GROUP_ROLE_UNKNOWN_GROUP', `no group assigned to the TeamViewer application has the object id or exact display name ${quoted(setting.group)}`);
      return;
    }
    if (groupMatch.length > 1) {
      problem('GROUP_ROLE_AMBIGUOUS_GROUP', `${groupMatch.length} assigned groups are named ${quoted(setting.group)} (${groupMatch.map((g) => g.id).join(', ')}); name the group by its object id`);
      return;
    }
    const group = groupMatch[0]!;
    const earlier = claimedBy.get(group.id);
    if (earlier !== undefined) {
      problem('GROUP_ROLE_GROUP_MAPPED_TWICE', `group ${quoted(group.displayName)} (${group.id}) is already mapped by entry ${earlier}; its role is left as it is until only one entry names it`);
      byGroup.delete(group.id);
      unresolved.add(group.id);
      return;
    }
    claimedBy.set(group.id, entry);

    const roleMatch = findRole(setting.role, roles);
    if (roleMatch.length === 1) {
      byGroup.set(group.id, roleMatch[0]!);
      return;
    }
    unresolved.add(group.id);
    if (roleMatch.length === 0) {
      problem('GROUP_ROLE_UNKNOWN_ROLE', `the TeamViewer company has no role named ${quoted(setting.role)} (roles: ${roles.map((r) => quoted(r.name)).join(', ') || 'none'}); the role of ${quoted(group.displayName)} is left as it is`);
    } else {
      problem('GROUP_ROLE_AMBIGUOUS_ROLE', `${roleMatch.length} TeamViewer roles are named ${quoted(setting.role)} (${roleMatch.map((r) => r.id).join(', ')}); give the role's id instead`);
    }
  });
  return { byGroup, unresolved, problems };
}

function findGroup(wanted: string, groups: readonly AssignedGroup[]): AssignedGroup[] {
  if (GUID.test(wanted.trim())) {
    const byId = groups.filter((g) => g.id.toLowerCase() === wanted.trim().toLowerCase());
    if (byId.length > 0) return byId;
  }
  return groups.filter((g) => g.displayName === wanted);
}

function findRole(wanted: string, roles: readonly TeamViewerRole[]): TeamViewerRole[] {
  if (GUID.test(wanted.trim())) {
    const byId = roles.filter((r) => r.id.toLowerCase() === wanted.trim().toLowerCase());
    if (byId.length > 0) return byId;
  }
  const exact = roles.filter((r) => r.name === wanted);
  if (exact.length > 0) return exact;
  return roles.filter((r) => r.name.toLowerCase() === wanted.toLowerCase());
}
