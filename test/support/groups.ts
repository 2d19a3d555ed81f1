/**
 * Helpers for the user-group tests: a tenant whose users are assigned directly (so a group's
 * assignment changes only the group, never who is provisioned) and whose groups are assigned too,
 * and short ways to read what the TeamViewer emulator holds.
 */
import type { EmulatedTenant } from '../emulators/graph';
import { DEFAULT_ROLE, directTenant, groupId, personUpn, SP_ID, userId } from './tenant';
import type { World } from './world';

export const HELPDESK = groupId(1);
export const FIELD = groupId(2);
export const OPS = groupId(3);

export interface TenantGroup {
  id: string;
  name: string;
  /** Users by number (person.N). */
  members: number[];
  /** Assigned to the application (default true). */
  assigned?: boolean;
}

/** `users` people assigned directly, and `groups` with those members, assigned to the application. */
export function groupTenant(users: number, groups: TenantGroup[]): EmulatedTenant {
  const tenant = directTenant(users);
  for (const g of groups) {
    tenant.groups.push({ id: g.id, displayName: g.name, members: g.members.map(userId) });
    if (g.assigned !== false) assignGroup(tenant, g.id);
  }
  return tenant;
}

export function assignGroup(tenant: EmulatedTenant, id: string): void {
  tenant.assignments.push({ id: `asg-${id}`, resourceId: SP_ID, principalId: id, principalType: 'Group', appRoleId: DEFAULT_ROLE });
}

export function unassignGroup(tenant: EmulatedTenant, id: string): void {
  tenant.assignments = tenant.assignments.filter((a) => a.principalId !== id);
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The TeamViewer user group of that name (ignoring case), or undefined. */
export function tvGroup(w: World, name: string): { id: string; name: string } | undefined {
  return w.teamViewer.userGroups.groups().find((g) => g.name.toLowerCase() === name.toLowerCase());
}

/** The members of a TeamViewer user group, as logins, sorted. */
export function memberLogins(w: World, name: string): string[] {
  const group = tvGroup(w, name);
  if (!group) throw new Error(`no TeamViewer user group ${name}`);
  const logins = new Map(w.teamViewer.users().map((u) => [u.id, u.userName.toLowerCase()]));
  return w.teamViewer.userGroups.members(group.id).map((m) => logins.get(m) ?? m).sort();
}

export const logins = (...numbers: number[]): string[] => numbers.map(personUpn).sort();

/** Requests the emulator got for user groups and roles (Web API), as "METHOD path" without the query. */
export function groupCalls(w: World): string[] {
  return w.teamViewer.requests
    .filter((r) => /^\/api\/v1\/(usergroups|userroles)/.test(r.path))
    .map((r) => `${r.method} ${r.path.split('?')[0]}`);
}

export const GROUPS_ON = { GROUP_PROVISIONING: 'assigned' } as const;
