/**
 * Entra parity, row by row (../shared/spec/entra-provisioning.md: scope, scoping filters,
 * mappings, matching, deprovisioning), each through a real cycle: settings → DefaultAzureCredential
 * (managed identity emulator) → Graph emulator (https) → planner → TeamViewer emulator → Azurite.
 */
import { describe, expect, it } from 'vitest';
import type { EmulatedTenant } from '../emulators/graph';
import { DEFAULT_ROLE, groupId, SP_ID, USER_ROLE, userId } from '../support/tenant';
import { inProcess } from '../support/in-process';
import type { World } from '../support/world';

const harness = inProcess();
/**
 * These tenants have a handful of users, most of whom leave scope at once: with the default guard
 * such a read is held as suspicious (half or fewer of the users). What is tested here is what
 * deprovisioning does once it runs, so the share check is off; the guard has its own tests
 * (test/unit/guard.test.ts, test/integration/guards.test.ts).
 */
const cycle: typeof harness.cycle = (w, settings = {}) => harness.cycle(w, { SUSPICIOUS_DROP_PERCENT: '0', ...settings });

type Person = { n: number; upn?: string; enabled?: boolean; department?: string; extensionAttribute3?: string; givenName?: string | null; displayName?: string | null };

/** A small explicit tenant: people by number, groups by number with member numbers. */
function tenant(people: Person[], groups: Array<{ n: number; members: Array<number | `g${number}`> }>, assignments: Array<{ user?: number; group?: number; sp?: boolean; role?: string }>): EmulatedTenant {
  return {
    servicePrincipals: [{ id: SP_ID, appId: 'b1e3a2c4-0000-4000-8000-7ea3c1e0ab1e', displayName: 'TeamViewer' }],
    users: people.map((p) => ({
      id: userId(p.n),
      userPrincipalName: p.upn ?? `user${p.n}@contoso.example`,
      displayName: p.displayName === undefined ? `User ${p.n}` : p.displayName,
      givenName: p.givenName === undefined ? 'User' : p.givenName,
      surname: `${p.n}`,
      mail: p.upn ?? `user${p.n}@contoso.example`,
      accountEnabled: p.enabled ?? true,
      department: p.department ?? null,
      ...(p.extensionAttribute3 ? { onPremisesExtensionAttributes: { extensionAttribute3: p.extensionAttribute3 } } : {}),
    })),
    groups: groups.map((g) => ({ id: groupId(g.n), displayName: `Group ${g.n}`, members: g.members.map((m) => (typeof m === 'number' ? userId(m) : groupId(Number(m.slice(1))))) })),
    assignments: assignments.map((a, i) => ({
      id: `asg-${i}`,
      resourceId: SP_ID,
      principalId: a.user !== undefined ? userId(a.user) : a.group !== undefined ? groupId(a.group) : 'c0ffee00-0000-4000-8000-000000000001',
      principalType: a.user !== undefined ? 'User' : a.group !== undefined ? 'Group' : 'ServicePrincipal',
      appRoleId: a.role ?? DEFAULT_ROLE,
    })),
  };
}

function world(t: EmulatedTenant, options: Parameters<typeof harness.world>[0] = {}): Promise<World> {
  return harness.world({ tenant: t, graphPageSize: 5, ...options });
}

const tvUser = (w: World, n: number, upn = `user${n}@contoso.example`) => w.teamViewer.users().find((u) => u.userName.toLowerCase() === upn.toLowerCase());
const created = (w: World) => w.teamViewer.users().filter((u) => u.createdBy === 'scim').map((u) => u.userName).sort();

describe('scope', () => {
  it('assigned: direct users and direct members of assigned groups, any app role; nested groups and SP assignments are not followed', async () => {
    const w = await world(tenant(
      [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }],
      [{ n: 1, members: [2, 'g2'] }, { n: 2, members: [3] }],
      [{ user: 1, role: USER_ROLE }, { group: 1 }, { sp: true }],
    ));
    const report = await cycle(w);
    expect(report.result).toBe('succeeded');
    expect(created(w)).toEqual(['user1@contoso.example', 'user2@contoso.example']);
  });

  it('EXPAND_NESTED_GROUPS=true follows nested groups (beyond Entra)', async () => {
    const w = await world(tenant([{ n: 1 }, { n: 2 }, { n: 3 }], [{ n: 1, members: [1, 'g2'] }, { n: 2, members: [2, 'g3'] }, { n: 3, members: [3] }], [{ group: 1 }]));
    await cycle(w, { EXPAND_NESTED_GROUPS: 'true' });
    expect(created(w)).toEqual(['user1@contoso.example', 'user2@contoso.example', 'user3@contoso.example']);
    // Turning it off again: the nested members leave scope and are deactivated.
    const report = await cycle(w, { EXPAND_NESTED_GROUPS: 'false' });
    expect(report.kind).toBe('initial');
    expect(tvUser(w, 2)?.active).toBe(false);
    expect(tvUser(w, 3)?.active).toBe(false);
    expect(tvUser(w, 1)?.active).toBe(true);
  });

  it('SYNC_SCOPE=all takes every user in the tenant, then scoping filters decide', async () => {
    const w = await world(tenant([{ n: 1, department: 'Sales' }, { n: 2, department: 'Sales' }, { n: 3, department: 'HR' }], [], []));
    await cycle(w, { SYNC_SCOPE: 'all', SCOPING_FILTERS: JSON.stringify([{ clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }] }]) });
    expect(created(w)).toEqual(['user1@contoso.example', 'user2@contoso.example']);
  });
});

describe('scoping filters through a cycle', () => {
  const sales = JSON.stringify([
    { name: 'Sales', clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }] },
    { name: 'Flagged', clauses: [{ attribute: 'extensionAttribute3', operator: 'REGEX MATCH', value: '^TV' }, { attribute: 'givenName', operator: 'IS NOT NULL' }] },
  ]);

  it('clauses AND within a filter, filters OR, a null value is false', async () => {
    const w = await world(tenant(
      [{ n: 1, department: 'Sales' }, { n: 2, department: 'sales' }, { n: 3, extensionAttribute3: 'TV-1' }, { n: 4, extensionAttribute3: 'TV-2', givenName: null }, { n: 5 }],
      [],
      [1, 2, 3, 4, 5].map((user) => ({ user })),
    ));
    await cycle(w, { SCOPING_FILTERS: sales });
    expect(created(w)).toEqual(['user1@contoso.example', 'user3@contoso.example']);
  });

  it('a user who leaves scope is deactivated, and comes back when in scope again', async () => {
    const t = tenant([{ n: 1, department: 'Sales' }], [], [{ user: 1 }]);
    const w = await world(t);
    await cycle(w, { SCOPING_FILTERS: sales });
    t.users[0].department = 'Marketing';
    const out = await cycle(w, { SCOPING_FILTERS: sales });
    expect(out.actions).toEqual([expect.objectContaining({ kind: 'disable', reason: expect.stringMatching(/department/) })]);
    expect(tvUser(w, 1)?.active).toBe(false);
    t.users[0].department = 'Sales';
    await cycle(w, { SCOPING_FILTERS: sales });
    expect(tvUser(w, 1)?.active).toBe(true);
  });

  it('SKIP_OUT_OF_SCOPE_DELETIONS=true leaves a user who leaves scope active, but still deactivates a disabled one', async () => {
    const t = tenant([{ n: 1, department: 'Sales' }, { n: 2, department: 'Sales' }, { n: 3, department: 'Sales' }], [], [{ user: 1 }, { user: 2 }, { user: 3 }]);
    const w = await world(t);
    const settings = { SCOPING_FILTERS: sales, SKIP_OUT_OF_SCOPE_DELETIONS: 'true' };
    await cycle(w, settings);
    t.users[0].department = 'HR';
    t.assignments = t.assignments.filter((a) => a.principalId !== userId(2));
    t.users[2].accountEnabled = false;
    await cycle(w, settings);
    expect(tvUser(w, 1)?.active).toBe(true);
    expect(tvUser(w, 2)?.active).toBe(true);
    expect(tvUser(w, 3)?.active).toBe(false);
  });

  it('an invalid filter stops start-up naming the clause', async () => {
    const w = await world(tenant([{ n: 1 }], [], [{ user: 1 }]));
    await expect(cycle(w, { SCOPING_FILTERS: JSON.stringify([{ name: 'Bad', clauses: [{ attribute: 'department', operator: 'EQUALZ', value: 'x' }] }]) })).rejects.toThrow(/SCOPING_FILTERS.*Bad.*EQUALZ/s);
    expect(w.teamViewer.requests).toEqual([]);
  });
});

describe('attribute mappings through a cycle', () => {
  it('direct, constant and expression mappings; create-only and default-if-null on create only; null never sent', async () => {
    const t = tenant([{ n: 1, givenName: null, displayName: null }], [], [{ user: 1 }]);
    const w = await world(t);
    const mappings = JSON.stringify([
      { target: 'userName', expression: 'ToLower([userPrincipalName])' },
      { target: 'displayName', expression: 'Coalesce([displayName], Join(" ", "Member", [surname]))' },
      { target: 'name.givenName', source: 'givenName', apply: 'create', default: 'Colleague' },
      { target: 'preferredLanguage', constant: 'de' },
      { target: 'ssoCustomerId', constant: 'sso-123' },
    ]);
    await cycle(w, { ATTRIBUTE_MAPPINGS: mappings });
    const made = w.teamViewer.users()[w.teamViewer.users().length - 1];
    expect(made).toMatchObject({ userName: 'user1@contoso.example', displayName: 'Member 1', preferredLanguage: 'de', ssoCustomerId: 'sso-123' });

    // Later changes: the expression result is updated; create-only values are not sent again.
    t.users[0].displayName = 'Renamed Person';
    w.teamViewer.resetRequests();
    const second = await cycle(w, { ATTRIBUTE_MAPPINGS: mappings });
    expect(second.actions).toEqual([expect.objectContaining({ kind: 'update', changes: [{ attribute: 'displayName', old: 'Member 1', new: 'Renamed Person' }] })]);
    expect(w.teamViewer.writes()).toBe(1);
  });

  it('a runtime expression error fails that user only; the others are provisioned', async () => {
    const ADMIN_ROLE = '9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f';
    const t = tenant([{ n: 1 }, { n: 2 }], [{ n: 1, members: [2] }], [{ user: 1, role: USER_ROLE }, { user: 2, role: USER_ROLE }, { group: 1, role: ADMIN_ROLE }]);
    t.servicePrincipals[0].appRoles = [
      { id: USER_ROLE, value: 'User', displayName: 'User', isEnabled: true, allowedMemberTypes: ['User'], description: 'User' },
      { id: ADMIN_ROLE, value: 'Admin', displayName: 'Admin', isEnabled: true, allowedMemberTypes: ['User'], description: 'Admin' },
    ] as never;
    const w = await world(t);
    const report = await cycle(w, { ATTRIBUTE_MAPPINGS: JSON.stringify([{ target: 'userName', source: 'userPrincipalName' }, { target: 'displayName', expression: 'SingleAppRoleAssignment([appRoleAssignments])' }]) });
    expect(report.result).toBe('partial');
    expect(report.counts).toMatchObject({ created: 1, failed: 1 });
    expect(report.actions.find((a) => a.status === 'failure')).toMatchObject({ entraId: userId(2), error: { code: 'EXPRESSION_RUNTIME' } });
    expect(tvUser(w, 1)?.displayName).toBe('User');
  });

  it('changing the mappings makes the next cycle a new initial cycle', async () => {
    const w = await world(tenant([{ n: 1 }], [], [{ user: 1 }]));
    expect((await cycle(w)).kind).toBe('initial');
    expect((await cycle(w)).kind).toBe('incremental');
    const changed = await cycle(w, { ATTRIBUTE_MAPPINGS: JSON.stringify([{ target: 'userName', source: 'userPrincipalName' }, { target: 'displayName', expression: 'ToUpper([displayName])' }]) });
    expect(changed.kind).toBe('initial');
    expect(tvUser(w, 1)?.displayName).toBe('USER 1');
  });
});

describe('matching and deprovisioning', () => {
  it('a UPN rename is a PATCH of userName on the linked user, not a new user', async () => {
    const t = tenant([{ n: 1 }], [], [{ user: 1 }]);
    const w = await world(t);
    await cycle(w);
    const before = tvUser(w, 1)!;
    t.users[0].userPrincipalName = 'new.name@contoso.example';
    const report = await cycle(w);
    expect(report.counts).toMatchObject({ updated: 1, created: 0 });
    expect(w.teamViewer.users()).toHaveLength(2); // the token owner + this user
    expect(w.teamViewer.users().find((u) => u.id === before.id)?.userName).toBe('new.name@contoso.example');
  });

  it('unassigned, disabled and group-removed users are deactivated and kept; re-enabled ones are reactivated', async () => {
    const t = tenant([{ n: 1 }, { n: 2 }, { n: 3 }], [{ n: 1, members: [3] }], [{ user: 1 }, { user: 2 }, { group: 1 }]);
    const w = await world(t);
    await cycle(w);
    t.assignments = t.assignments.filter((a) => a.principalId !== userId(1));
    t.users[1].accountEnabled = false;
    t.groups[0].members = [];
    const report = await cycle(w);
    expect(report.counts).toMatchObject({ disabled: 3, failed: 0 });
    expect([1, 2, 3].map((n) => tvUser(w, n)?.active)).toEqual([false, false, false]);
    t.users[1].accountEnabled = true;
    expect((await cycle(w)).counts).toMatchObject({ enabled: 1 });
    expect(tvUser(w, 2)?.active).toBe(true);
  });

  it('the account that owns the API token is never deactivated, with a warning saying why', async () => {
    const t = tenant([{ n: 1, upn: 'it-admin@contoso.example' }, { n: 2 }], [], [{ user: 1 }, { user: 2 }]);
    const w = await world(t);
    await cycle(w);
    t.assignments = [];
    const report = await cycle(w);
    expect(report.actions.find((a) => a.userPrincipalName === 'it-admin@contoso.example')).toMatchObject({ kind: 'skip', status: 'warning', reason: expect.stringMatching(/owns the TeamViewer API token/) });
    expect(tvUser(w, 1, 'it-admin@contoso.example')?.active).toBe(true);
    expect(tvUser(w, 2)?.active).toBe(false);
  });

  it('when the account that owns the token cannot be identified, deactivations are held back with a warning; creates go on', async () => {
    const t = tenant([{ n: 1 }, { n: 2 }], [], [{ user: 1 }, { user: 2 }]);
    const w = await world(t, { teamViewer: { tokenOwner: undefined } });
    await cycle(w);
    t.assignments = t.assignments.filter((a) => a.principalId !== userId(1));
    t.users.push({ id: userId(3), userPrincipalName: 'user3@contoso.example', displayName: 'User 3', givenName: 'User', surname: '3', mail: 'user3@contoso.example', accountEnabled: true });
    t.assignments.push({ id: 'asg-3', resourceId: SP_ID, principalId: userId(3), principalType: 'User', appRoleId: DEFAULT_ROLE });
    const report = await cycle(w);
    expect(report.actions.find((a) => a.entraId === userId(1))).toMatchObject({ status: 'warning', reason: expect.stringMatching(/held back.*Account management/) });
    expect(tvUser(w, 1)?.active).toBe(true);
    expect(tvUser(w, 3)?.active).toBe(true);
  });

  it('soft-deleted → deactivated (reason says deleted, even with SKIP_OUT_OF_SCOPE_DELETIONS); restored → reactivated; hard-deleted → deactivated and kept', async () => {
    const t = tenant([{ n: 1 }, { n: 2 }, { n: 3 }], [], [{ user: 1 }, { user: 2 }, { user: 3 }]);
    const w = await world(t);
    const settings = { SKIP_OUT_OF_SCOPE_DELETIONS: 'true' };
    await cycle(w, settings);
    w.graph.softDeleteUser(userId(1));
    w.graph.hardDeleteUser(userId(2));
    const report = await cycle(w, settings);
    expect(report.actions.find((a) => a.entraId === userId(1))).toMatchObject({ kind: 'disable', reason: expect.stringMatching(/deleted in Entra ID/) });
    expect(tvUser(w, 1)?.active).toBe(false);
    // Hard-deleted: gone from Graph entirely; with SKIP_OUT_OF_SCOPE_DELETIONS it is left as out of scope,
    // without it it is deactivated; either way the TeamViewer user is kept.
    expect(tvUser(w, 2)).toBeDefined();
    await cycle(w);
    expect(tvUser(w, 2)?.active).toBe(false);
    w.graph.restoreUser(userId(1));
    expect((await cycle(w)).counts.enabled).toBe(1);
    expect(tvUser(w, 1)?.active).toBe(true);
  });
});

describe('every scoping operator through a cycle', () => {
  const people: Person[] = [
    { n: 1, department: 'Sales' },
    { n: 2, department: 'Sales Team' },
    { n: 3, department: 'Marketing' },
    { n: 4, extensionAttribute3: '12' },
    { n: 5, extensionAttribute3: '3' },
    { n: 6 },
  ];
  it.each([
    ['EQUALS', { attribute: 'department', operator: 'EQUALS', value: 'Sales' }, [1]],
    ['NOT EQUALS', { attribute: 'department', operator: 'NOT EQUALS', value: 'Sales' }, [2, 3]],
    ['IS NULL', { attribute: 'department', operator: 'IS NULL' }, [4, 5, 6]],
    ['IS NOT NULL', { attribute: 'department', operator: 'IS NOT NULL' }, [1, 2, 3]],
    ['IS TRUE', { attribute: 'accountEnabled', operator: 'IS TRUE' }, [1, 2, 3, 4, 5, 6]],
    ['IS FALSE', { attribute: 'accountEnabled', operator: 'IS FALSE' }, []],
    ['REGEX MATCH', { attribute: 'department', operator: 'REGEX MATCH', value: '^Sales' }, [1, 2]],
    ['NOT REGEX MATCH', { attribute: 'department', operator: 'NOT REGEX MATCH', value: '^Sales' }, [3]],
    ['Includes', { attribute: 'department', operator: 'Includes', value: 'Team' }, [2]],
    ['ENDS_WITH', { attribute: 'department', operator: 'ENDS_WITH', value: 'ing' }, [3]],
    ['Greater_Than', { attribute: 'extensionAttribute3', operator: 'Greater_Than', value: '3' }, [4]],
    ['Greater_Than_OR_EQUALS', { attribute: 'extensionAttribute3', operator: 'Greater_Than_OR_EQUALS', value: '3' }, [4, 5]],
    ['& (bitwise)', { attribute: 'extensionAttribute3', operator: '&', value: '4' }, [4]],
    ['!& (bitwise)', { attribute: 'extensionAttribute3', operator: '!&', value: '4' }, [5]],
  ])('%s', async (_label, clause, expected) => {
    const w = await world(tenant(people, [], people.map((p) => ({ user: p.n }))));
    await cycle(w, { SCOPING_FILTERS: JSON.stringify([{ name: 'op', clauses: [clause] }]) });
    expect(created(w)).toEqual((expected as number[]).map((n) => `user${n}@contoso.example`).sort());
  });
});

describe('escrows', () => {
  it('a user that keeps failing is retried next cycle, then backed off and skipped, shown in status, and cleared by restart', async () => {
    const t = tenant([{ n: 1 }, { n: 2 }], [], [{ user: 1 }, { user: 2 }]);
    const w = await world(t, { teamViewer: { externalEmails: ['user2@contoso.example'] } });
    const settings = { SYNC_INTERVAL_MINUTES: '5' };
    const first = await cycle(w, settings);
    expect(first.counts).toMatchObject({ created: 1, failed: 1 });
    const second = await cycle(w, settings);
    expect(second.actions.find((a) => a.entraId === userId(2))).toMatchObject({ status: 'failure', error: { code: 'TEAMVIEWER_CONFLICT' } });
    w.teamViewer.resetRequests();
    const third = await cycle(w, settings);
    expect(third.actions.find((a) => a.entraId === userId(2))).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/^escrowed: failed 2 time\(s\).*TEAMVIEWER_CONFLICT.*next attempt/) });
    expect(w.teamViewer.requests.filter((r) => r.method === 'POST')).toEqual([]);

    const app = await harness.app(w, settings);
    const doc = await app.status();
    expect(doc.escrows.count).toBe(1);
    expect(doc.escrows.users[0]).toMatchObject({ entraId: userId(2), attempts: 2, code: 'TEAMVIEWER_CONFLICT' });
    expect(Date.parse(doc.escrows.users[0].nextAttemptAt)).toBeGreaterThan(Date.now() + 4 * 60_000);

    await app.restart({ full: false, by: 'test' });
    expect((await app.status()).escrows.count).toBe(0);
    const after = await cycle(w, settings);
    expect(after.actions.find((a) => a.entraId === userId(2))).toMatchObject({ status: 'failure' });
  });
});
