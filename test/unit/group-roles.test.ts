import { describe, expect, it } from 'vitest';
import { resolveGroupRoles } from '../../shared/sync/group-roles';
import type { AssignedGroup, TeamViewerRole } from '../../shared/domain/group-model';

const HELPDESK = '11111111-0000-4000-8000-000000000001';
const FIELD = '11111111-0000-4000-8000-000000000002';
const TWIN_A = '11111111-0000-4000-8000-000000000003';
const TWIN_B = '11111111-0000-4000-8000-000000000004';
const groups: AssignedGroup[] = [
  { id: HELPDESK, displayName: 'Helpdesk' },
  { id: FIELD, displayName: 'Field engineers' },
  { id: TWIN_A, displayName: 'Sales' },
  { id: TWIN_B, displayName: 'Sales' },
];
const SUPPORT: TeamViewerRole = { id: 'aaaaaaaa-0000-4000-8000-000000000001', name: 'Support agent' };
const ADMIN: TeamViewerRole = { id: 'aaaaaaaa-0000-4000-8000-000000000002', name: 'Administrator' };
const DUP1: TeamViewerRole = { id: 'aaaaaaaa-0000-4000-8000-000000000003', name: 'Viewer' };
const DUP2: TeamViewerRole = { id: 'aaaaaaaa-0000-4000-8000-000000000004', name: 'Viewer' };
const roles = [SUPPORT, ADMIN, DUP1, DUP2];

describe('GROUP_ROLES resolved against the assigned groups and the TeamViewer roles', () => {
  it.each([
    ['a group by exact display name and a role by name', { group: 'Helpdesk', role: 'Support agent' }, HELPDESK, SUPPORT],
    ['a group by object id in capitals and a role by id', { group: FIELD.toUpperCase(), role: ADMIN.id.toUpperCase() }, FIELD, ADMIN],
    ['a role name in other letters when only one role matches so', { group: 'Helpdesk', role: 'ADMINISTRATOR' }, HELPDESK, ADMIN],
    ['one of two same-named groups by its object id', { group: TWIN_B, role: 'Support agent' }, TWIN_B, SUPPORT],
  ])('When an entry names %s, then that group gets that role', (_what, entry, groupId, role) => {
    const resolved = resolveGroupRoles([entry], roles, groups);
    expect(resolved).toEqual({ byGroup: new Map([[groupId, role]]), unresolved: new Set(), problems: [] });
  });

  it.each([
    ['a display name in other letters', { group: 'helpdesk', role: 'Support agent' }, 'GROUP_ROLE_UNKNOWN_GROUP', []],
    ['a group not assigned to the app', { group: 'Finance', role: 'Support agent' }, 'GROUP_ROLE_UNKNOWN_GROUP', []],
    ['a display name two assigned groups share', { group: 'Sales', role: 'Support agent' }, 'GROUP_ROLE_AMBIGUOUS_GROUP', []],
    ['a role the company does not have', { group: 'Helpdesk', role: 'Superhero' }, 'GROUP_ROLE_UNKNOWN_ROLE', [HELPDESK]],
    ['a role name two roles share', { group: 'Helpdesk', role: 'Viewer' }, 'GROUP_ROLE_AMBIGUOUS_ROLE', [HELPDESK]],
  ])('When an entry names %s, then it is a problem and no role is set (a known group keeps its role)', (_what, entry, code, unresolved) => {
    const resolved = resolveGroupRoles([entry], roles, groups);
    expect(resolved.byGroup.size).toBe(0);
    expect([...resolved.unresolved]).toEqual(unresolved);
    expect(resolved.problems).toEqual([expect.objectContaining({ entry: 1, code, group: entry.group, role: entry.role, message: expect.stringMatching(/^GROUP_ROLES entry 1: /) })]);
  });

  it('When two entries land on one group (by id and by name), then neither applies and the second is named', () => {
    const resolved = resolveGroupRoles([{ group: 'Helpdesk', role: 'Support agent' }, { group: HELPDESK, role: 'Administrator' }, { group: 'Field engineers', role: 'Administrator' }], roles, groups);
    expect(resolved.byGroup).toEqual(new Map([[FIELD, ADMIN]]));
    expect(resolved.unresolved).toEqual(new Set([HELPDESK]));
    expect(resolved.problems.map((p) => [p.entry, p.code])).toEqual([[2, 'GROUP_ROLE_GROUP_MAPPED_TWICE']]);
  });

  it('When the role list is empty (no licence read yet), then every entry is an unknown role, listed once each', () => {
    const resolved = resolveGroupRoles([{ group: 'Helpdesk', role: 'Support agent' }, { group: 'Field engineers', role: 'Administrator' }], [], groups);
    expect(resolved.problems.map((p) => p.code)).toEqual(['GROUP_ROLE_UNKNOWN_ROLE', 'GROUP_ROLE_UNKNOWN_ROLE']);
    expect(resolved.problems[0]?.message).toContain('roles: none');
    expect(resolved.unresolved).toEqual(new Set([HELPDESK, FIELD]));
  });
});
