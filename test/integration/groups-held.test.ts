/**
 * User groups while a deactivation is held, through real cycles (Azurite, the Graph, identity and
 * TeamViewer emulators): a user tvsync wanted to deactivate but did not — staged by the
 * accidental-deletion guard, the token's owner, a token whose owner is unknown, a PATCH that
 * failed, a dry run — keeps every TeamViewer user-group membership it has: taking them out would be
 * a partial deprovisioning nobody reviewed. Members leave a group only once their deactivation
 * happened, or when they left the Entra group and stay provisioned. A group going that the guard
 * stages keeps its members too.
 */
import { describe, expect, it } from 'vitest';
import type { App } from '../../shared/app';
import type { EmulatedTenant } from '../emulators/graph';
import { inProcess } from '../support/in-process';
import { FIELD, GROUPS_ON, groupTenant, HELPDESK, logins, memberLogins, tvGroup, unassignGroup, type TenantGroup } from '../support/groups';
import { userId } from '../support/tenant';
import type { World } from '../support/world';

const harness = inProcess();
const OWNER = 'it-admin@contoso.example';

/** groupTenant, but users `groupOnly` are assigned only through their groups (leaving one takes them out of scope). */
function tenantWith(users: number, groups: TenantGroup[], groupOnly: number[]): EmulatedTenant {
  const tenant = groupTenant(users, groups);
  const only = new Set(groupOnly.map(userId));
  tenant.assignments = tenant.assignments.filter((a) => !only.has(a.principalId));
  return tenant;
}

async function provisioned(tenant: EmulatedTenant, settings: Record<string, string> = {}, world: Parameters<typeof harness.world>[0] = {}): Promise<{ w: World; app: App }> {
  const w = await harness.world({ ...world, tenant });
  const app = await harness.app(w, { ...GROUPS_ON, ...settings });
  const first = await app.runCycle({ trigger: 'cli' });
  expect(first.result).toBe('succeeded');
  return { w, app };
}

const active = (w: World, login: string) => w.teamViewer.users().find((u) => u.userName.toLowerCase() === login.toLowerCase())?.active;

describe('user groups while deactivations are held', () => {
  it('When the guard stages the deactivations of users who left the Entra group, then they keep their TeamViewer group memberships until an admin allows them; a member who stays provisioned still leaves', async () => {
    // Helpdesk's members are assigned only through Helpdesk; Field engineers' members directly.
    const tenant = tenantWith(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3, 4] }, { id: FIELD, name: 'Field engineers', members: [5, 6] }], [1, 2, 3, 4]);
    const { w, app } = await provisioned(tenant, { DEACTIVATION_THRESHOLD: '2' });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3, 4));

    // Three of Helpdesk's members removed by mistake (more than the guard allows); person 5 leaves
    // Field engineers but stays assigned directly.
    tenant.groups.find((g) => g.id === HELPDESK)!.members = [userId(1)];
    tenant.groups.find((g) => g.id === FIELD)!.members = [userId(6)];

    const dry = await app.runCycle({ trigger: 'cli', dryRun: true });
    expect(dry.counts).toMatchObject({ staged: 3, disabled: 0 });
    expect(dry.counts.groups).toMatchObject({ membersRemoved: 1 });

    const held = await app.runCycle({ trigger: 'cli' });

    expect(held.counts).toMatchObject({ staged: 3, disabled: 0 });
    expect(held.counts.groups).toMatchObject({ membersRemoved: 1, staged: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3, 4));
    expect(memberLogins(w, 'Field engineers')).toEqual(logins(6));
    expect(await app.groups!.state.listMembers(HELPDESK)).toHaveLength(4);
    const { records } = await app.logs.query({ cycleId: held.cycleId, user: HELPDESK });
    expect(records).toEqual([]);
    // Still held next cycle: still in the group.
    expect((await app.runCycle({ trigger: 'cli' })).counts.groups).toMatchObject({ membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3, 4));

    await app.allowDeactivations('test');
    const released = await app.runCycle({ trigger: 'cli' });

    expect(released.counts).toMatchObject({ disabled: 3, staged: 0 });
    expect(released.counts.groups).toMatchObject({ membersRemoved: 3 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1));
    expect(await app.groups!.state.listMembers(HELPDESK)).toHaveLength(1);
  });

  it('When a user whose deactivation is staged is still in the Entra group (disabled in Entra), then they stay in its TeamViewer group too', async () => {
    const tenant = tenantWith(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3, 4] }], []);
    const { w, app } = await provisioned(tenant, { DEACTIVATION_THRESHOLD: '2' });

    for (const n of [2, 3, 4]) tenant.users.find((u) => u.id === userId(n))!.accountEnabled = false;
    const held = await app.runCycle({ trigger: 'cli' });

    expect(held.counts).toMatchObject({ staged: 3, disabled: 0 });
    expect(held.counts.groups).toMatchObject({ membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3, 4));
  });

  it('When the token\'s owner leaves the Entra group (and so scope), then tvsync neither deactivates them nor takes them out of the TeamViewer group', async () => {
    const tenant = tenantWith(3, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }], [1]);
    Object.assign(tenant.users[0]!, { userPrincipalName: OWNER, mail: OWNER });
    const { w, app } = await provisioned(tenant);
    expect(memberLogins(w, 'Helpdesk')).toEqual([OWNER, ...logins(2)].sort());

    tenant.groups[0]!.members = [userId(2)];
    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.actions.find((a) => a.userPrincipalName === OWNER)).toMatchObject({ kind: 'skip', status: 'warning', reason: expect.stringMatching(/owns the TeamViewer API token/) });
    expect(active(w, OWNER)).toBe(true);
    expect(report.counts.groups).toMatchObject({ membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual([OWNER, ...logins(2)].sort());
  });

  it('When the token\'s owner cannot be identified, then the users whose deactivation is held back keep their group memberships', async () => {
    const tenant = tenantWith(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3] }], [1, 2, 3]);
    const { w, app } = await provisioned(tenant, {}, { teamViewer: { tokenOwner: undefined } });

    tenant.groups[0]!.members = [userId(3)];
    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.counts).toMatchObject({ disabled: 0 });
    expect(report.actions.filter((a) => a.status === 'warning' && /held back/.test(a.reason ?? ''))).toHaveLength(2);
    expect(report.counts.groups).toMatchObject({ membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3));
  });

  it('When a deactivation fails, then the user keeps their group memberships; the next cycle deactivates them and only then takes them out', async () => {
    const tenant = tenantWith(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }], [1, 2]);
    const { w, app } = await provisioned(tenant);

    tenant.groups[0]!.members = [userId(2)];
    w.teamViewer.inject({ kind: 'status', status: 403, method: 'PATCH', times: 1 });
    const failed = await app.runCycle({ trigger: 'cli' });

    expect(failed.counts).toMatchObject({ failed: 1, disabled: 0 });
    expect(active(w, 'person.1@contoso.example')).toBe(true);
    expect(failed.counts.groups).toMatchObject({ membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2));

    const retried = await app.runCycle({ trigger: 'cli' });
    expect(retried.counts).toMatchObject({ disabled: 1, failed: 0 });
    expect(retried.counts.groups).toMatchObject({ membersRemoved: 1 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(2));
  });

  it('When a deactivation is cut off at the cycle\'s deadline, then the user keeps their group memberships; the next cycle deactivates them and takes them out', async () => {
    const tenant = tenantWith(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }], [1, 2]);
    const { w } = await provisioned(tenant);
    tenant.groups[0]!.members = [userId(2)];
    w.teamViewer.inject({ kind: 'hang', times: 1_000, method: 'PATCH' });
    const app = await harness.app(w, { ...GROUPS_ON, CYCLE_TIME_BUDGET_SECONDS: '1', TEAMVIEWER_TIMEOUT_SECONDS: '2' });

    const cut = await app.runCycle({ trigger: 'cli' });

    expect(cut.counts).toMatchObject({ disabled: 0, skipped: 1 });
    expect(cut.counts.groups).toMatchObject({ membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2));

    w.teamViewer.clearFaults();
    const next = await app.runCycle({ trigger: 'cli' });
    expect(next.counts).toMatchObject({ disabled: 1 });
    expect(next.counts.groups).toMatchObject({ membersRemoved: 1 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(2));
  });

  it('When the token\'s owner, out of the Entra group, is provisioned on demand, then the groups step takes them out of no group (a dry run says so too)', async () => {
    const tenant = tenantWith(3, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }], [1]);
    Object.assign(tenant.users[0]!, { userPrincipalName: OWNER, mail: OWNER });
    const { w, app } = await provisioned(tenant);
    tenant.groups[0]!.members = [userId(2)];

    const dry = await app.provision(OWNER, { dryRun: true });
    expect(dry.steps.find((s) => s.step === 'groups')).toMatchObject({ status: 'skipped', detail: 'keeps its user groups: the deactivation did not happen (dry run: nothing written)' });

    const result = await app.provision(OWNER);
    expect(result.steps.find((s) => s.step === 'action')).toMatchObject({ status: 'warning', detail: expect.stringMatching(/owns the TeamViewer API token/) });
    expect(result.steps.find((s) => s.step === 'groups')).toMatchObject({ status: 'success', detail: 'keeps its user groups: the deactivation did not happen' });
    expect(memberLogins(w, 'Helpdesk')).toEqual([OWNER, ...logins(2)].sort());
  });

  it('When the guard stages groups going (one tvsync created, one it adopted) with their members\' deactivations, then neither group loses a member and both stay linked', async () => {
    const tenant = tenantWith(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }, { id: FIELD, name: 'Field engineers', members: [3, 4] }], [1, 2]);
    const w = await harness.world({ tenant });
    w.teamViewer.userGroups.seedGroup('Field engineers');
    const app = await harness.app(w, { ...GROUPS_ON, DEACTIVATION_THRESHOLD: '1' });
    await app.runCycle({ trigger: 'cli' });
    expect((await app.groups!.state.listGroupLinks()).map((l) => [l.name, l.origin]).sort()).toEqual([['Field engineers', 'adopted'], ['Helpdesk', 'created']]);

    // Both groups unassigned: Helpdesk's members (assigned only through it) leave scope with it.
    unassignGroup(tenant, HELPDESK);
    unassignGroup(tenant, FIELD);
    const held = await app.runCycle({ trigger: 'cli' });

    expect(held.counts).toMatchObject({ staged: 2, disabled: 0 });
    expect(held.counts.groups).toMatchObject({ staged: 2, deleted: 0, unlinked: 0, membersRemoved: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2));
    expect(memberLogins(w, 'Field engineers')).toEqual(logins(3, 4));
    expect(await app.groups!.state.listGroupLinks()).toHaveLength(2);
    expect(await app.groups!.state.listMembers(FIELD)).toHaveLength(2);

    await app.allowDeactivations('test');
    const released = await app.runCycle({ trigger: 'cli' });
    expect(released.counts).toMatchObject({ disabled: 2 });
    expect(released.counts.groups).toMatchObject({ deleted: 1, unlinked: 1, membersRemoved: 2 });
    expect(tvGroup(w, 'Helpdesk')).toBeUndefined();
    expect(memberLogins(w, 'Field engineers')).toEqual([]);
  });
});
