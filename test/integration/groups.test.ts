/**
 * User groups through real cycles (createApp from settings, Azurite, the Graph, identity and
 * TeamViewer emulators), GROUP_PROVISIONING=assigned: groups assigned to the application become
 * TeamViewer user groups with their provisioned, active members — created or adopted by name
 * (never twice, a 409 or a lost answer included), renamed with Entra and with the prefix, members
 * added and removed in calls of at most 100, never an account tvsync does not manage; a dry run
 * writes nothing; a quiet cycle makes no user-group call; GROUP_PROVISIONING=off costs nothing.
 * Groups going, roles, missing rights and the operator surface: groups-guard.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { App } from '../../shared/app';
import type { GroupReport } from '../../shared/domain/group-model';
import { inProcess } from '../support/in-process';
import { FIELD, groupCalls, GROUPS_ON, groupTenant, HELPDESK, logins, memberLogins, OPS, range, tvGroup, type TenantGroup } from '../support/groups';
import { groupId, personUpn, userId } from '../support/tenant';
import type { World } from '../support/world';

const harness = inProcess();

async function provisioned(users: number, groups: TenantGroup[], settings: Record<string, string> = {}): Promise<{ w: World; app: App }> {
  const w = await harness.world({ tenant: groupTenant(users, groups) });
  const app = await harness.app(w, { ...GROUPS_ON, ...settings });
  return { w, app };
}

const stepsOf = (report: { groupActions?: GroupReport[] }, name: string) =>
  (report.groupActions ?? []).filter((r) => r.name === name).flatMap((r) => r.steps.map((s) => `${s.kind} ${s.status}${s.members ? ` ${s.members.count}` : ''}`));

describe('user groups', () => {
  it('When two groups are assigned, then the first cycle creates them with their provisioned members, logs each change and status lists them', async () => {
    const { w, app } = await provisioned(12, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3, 4] }, { id: FIELD, name: 'Field engineers', members: [4, 5, 6] }], { GROUP_NAME_PREFIX: 'Entra - ' });

    const report = await app.runCycle({ trigger: 'cli' });

    expect(report).toMatchObject({ kind: 'initial', result: 'succeeded' });
    expect(report.counts.created).toBe(12);
    expect(report.counts.groups).toEqual({ created: 2, linked: 0, updated: 0, deleted: 0, unlinked: 0, membersAdded: 7, membersRemoved: 0, staged: 0, failed: 0 });
    expect(w.teamViewer.userGroups.groups().map((g) => g.name).sort()).toEqual(['Entra - Field engineers', 'Entra - Helpdesk']);
    expect(memberLogins(w, 'Entra - Helpdesk')).toEqual(logins(1, 2, 3, 4));
    expect(memberLogins(w, 'Entra - Field engineers')).toEqual(logins(4, 5, 6));
    // Users first, then groups: every group call comes after the last user create.
    const lastCreate = w.teamViewer.requests.map((r) => `${r.method} ${r.path}`).lastIndexOf('POST /scim/v2/Users');
    const firstGroupWrite = w.teamViewer.requests.findIndex((r) => r.method === 'POST' && r.path === '/api/v1/usergroups');
    expect(firstGroupWrite).toBeGreaterThan(lastCreate);

    const { records } = await app.logs.query({ cycleId: report.cycleId, user: HELPDESK });
    expect(records.map((r) => r.action).sort()).toEqual(['group-create', 'members-add']);
    const add = records.find((r) => r.action === 'members-add')!;
    expect(add).toMatchObject({ status: 'success', entraId: HELPDESK, userPrincipalName: 'Entra - Helpdesk', teamViewerId: tvGroup(w, 'Entra - Helpdesk')!.id });
    expect(add.reason).toBe(`added 4 members: ${[1, 2, 3, 4].map(personUpn).join(', ')}`);
    expect(add.modifiedProperties).toEqual([{ name: 'members', old: null, new: `4 members: ${[1, 2, 3, 4].map(personUpn).join(', ')}` }]);

    const status = await app.status();
    expect(status.groups).toMatchObject({ prefix: 'Entra - ', linked: 2, lastCycle: { created: 2, membersAdded: 7 }, failures: [], warnings: [], heldDeletions: null });
    expect(status.groups!.list).toEqual([
      { entraGroupId: FIELD, name: 'Entra - Field engineers', teamViewerGroupId: tvGroup(w, 'Entra - Field engineers')!.id, origin: 'created', role: null, members: 3 },
      { entraGroupId: HELPDESK, name: 'Entra - Helpdesk', teamViewerGroupId: tvGroup(w, 'Entra - Helpdesk')!.id, origin: 'created', role: null, members: 4 },
    ]);
  });

  it('When a TeamViewer group already has the name in another letter case, then it is adopted (not created), renamed to the Entra spelling, and an account added by hand stays', async () => {
    const w = await harness.world({ tenant: groupTenant(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }]) });
    const outsider = w.teamViewer.seed({ userName: 'contractor@partner.example', displayName: 'Contractor' });
    const existing = w.teamViewer.userGroups.seedGroup('HELPDESK', [outsider.id]);
    const app = await harness.app(w, GROUPS_ON);

    const report = await app.runCycle({ trigger: 'cli' });

    expect(w.teamViewer.userGroups.groups()).toEqual([{ id: existing.id, name: 'Helpdesk' }]);
    expect(report.counts.groups).toMatchObject({ created: 0, linked: 1, updated: 1, membersAdded: 2 });
    expect(stepsOf(report, 'Helpdesk')).toEqual(['group-link success', 'group-rename success', 'member-add success 2']);
    expect(memberLogins(w, 'Helpdesk')).toEqual(['contractor@partner.example', ...logins(1, 2)]);
    expect(groupCalls(w).filter((c) => c.startsWith('POST /api/v1/usergroups'))).toEqual([`POST /api/v1/usergroups/${existing.id}/members`]);
    expect((await app.status()).groups?.list[0]).toMatchObject({ origin: 'adopted', teamViewerGroupId: existing.id });

    // Person 2 leaves the Entra group: tvsync removes them; the contractor it does not manage stays.
    w.tenant.groups[0]!.members = [userId(1)];
    const after = await app.runCycle({ trigger: 'cli' });
    expect(after.counts.groups).toMatchObject({ membersRemoved: 1, membersAdded: 0 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(['contractor@partner.example', personUpn(1)]);
  });

  it('When TeamViewer answers 409 to the create (another writer made the group meanwhile), then the cycle lists the groups and adopts it: one group, never two', async () => {
    const { w, app } = await provisioned(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }]);
    // The group appears between tvsync's listing and its create: the POST lands, its answer is 409.
    w.teamViewer.inject({ kind: 'status', status: 409, method: 'POST', pathIncludes: '/api/v1/usergroups', times: 1, applyFirst: true });

    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.result).toBe('succeeded');
    expect(w.teamViewer.userGroups.groups()).toHaveLength(1);
    expect(stepsOf(report, 'Helpdesk')).toEqual(['group-link success', 'member-add success 2']);
    expect(report.groupActions![0]!.steps[0]!.reason).toMatch(/409.*adopted, never created twice \(TEAMVIEWER_GROUP_NAME_TAKEN\)/);
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2));
    expect(groupCalls(w).filter((c) => c === 'POST /api/v1/usergroups')).toHaveLength(1);
    expect((await app.status()).groups?.list[0]).toMatchObject({ origin: 'adopted' });
  });

  it('When the create\'s answer never comes (TeamViewer made the group), then the cycle adopts the group it finds by name instead of creating a second', async () => {
    const { w, app } = await provisioned(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }], { TEAMVIEWER_TIMEOUT_SECONDS: '1' });
    w.teamViewer.inject({ kind: 'hang', method: 'POST', pathIncludes: '/api/v1/usergroups', times: 1, applyFirst: true });

    const report = await app.runCycle({ trigger: 'cli' });

    expect(w.teamViewer.userGroups.groups()).toHaveLength(1);
    expect(groupCalls(w).filter((c) => c === 'POST /api/v1/usergroups')).toHaveLength(1);
    expect(stepsOf(report, 'Helpdesk')).toEqual(['group-link success', 'member-add success 2']);
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2));
  });

  it('When a process died between the create intent and the link (the group exists, state holds only the intent), then the next cycle adopts that group: no second group', async () => {
    const { w, app } = await provisioned(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }]);
    // What state and TeamViewer hold when the process is killed right after the POST landed.
    const made = w.teamViewer.userGroups.seedGroup('Helpdesk');
    const at = new Date().toISOString();
    await app.groups!.state.putGroupLink({ entraGroupId: HELPDESK, teamViewerGroupId: null, name: 'Helpdesk', origin: 'created', role: null, createdAt: at, updatedAt: at, pending: 'create' });

    const report = await app.runCycle({ trigger: 'cli' });

    expect(w.teamViewer.userGroups.groups()).toEqual([{ id: made.id, name: 'Helpdesk' }]);
    expect(groupCalls(w).filter((c) => c === 'POST /api/v1/usergroups')).toEqual([]);
    expect(stepsOf(report, 'Helpdesk')).toEqual(['group-link success', 'member-add success 2']);
    // tvsync cannot prove its POST made it, so it holds it as adopted: never deleted, only emptied.
    expect((await app.groups!.state.listGroupLinks())[0]).toMatchObject({ teamViewerGroupId: made.id, origin: 'adopted' });
    expect((await app.groups!.state.listGroupLinks())[0]!.pending).toBeUndefined();
  });

  it('When a group is renamed in Entra, then the incremental cycle is not quiet and renames it in TeamViewer (PUT), logged old → new', async () => {
    const { w, app } = await provisioned(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }]);
    await app.runCycle({ trigger: 'cli' });
    expect((await app.runCycle({ trigger: 'cli' })).counts.groups).toMatchObject({ updated: 0 });
    w.teamViewer.resetRequests();

    w.tenant.groups[0]!.displayName = 'Service desk';
    const report = await app.runCycle({ trigger: 'timer' });

    expect(report.kind).toBe('incremental');
    expect(report.counts.groups).toMatchObject({ updated: 1, created: 0 });
    const id = tvGroup(w, 'Service desk')!.id;
    expect(groupCalls(w)).toContain(`PUT /api/v1/usergroups/${id}`);
    expect(w.teamViewer.userGroups.groups()).toEqual([{ id, name: 'Service desk' }]);
    const { records } = await app.logs.query({ cycleId: report.cycleId });
    expect(records).toEqual([expect.objectContaining({ action: 'group-rename', status: 'success', entraId: HELPDESK, teamViewerId: id, modifiedProperties: [{ name: 'name', old: 'Helpdesk', new: 'Service desk' }] })]);
  });

  it('When a group is renamed in Entra to the name another assigned group holds, then it fails saying so but its members are still kept in step; the other keeps the name', async () => {
    const { w, app } = await provisioned(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }, { id: FIELD, name: 'Field engineers', members: [2] }]);
    await app.runCycle({ trigger: 'cli' });

    w.tenant.groups[1]!.displayName = 'helpdesk';
    w.tenant.groups[1]!.members.push(userId(3));
    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.result).toBe('partial');
    expect(report.counts.groups).toMatchObject({ failed: 1, membersAdded: 1, updated: 0 });
    const failed = report.groupActions!.find((r) => r.entraId === FIELD)!;
    expect(failed).toMatchObject({ status: 'failure', kind: 'group-fail', error: { code: 'GROUP_NAME_CLAIMED_TWICE' } });
    expect(failed.steps.map((s) => `${s.kind} ${s.status}`)).toEqual(['group-fail failure', 'member-add success']);
    expect(w.teamViewer.userGroups.groups().map((g) => g.name).sort()).toEqual(['Field engineers', 'Helpdesk']);
    expect(memberLogins(w, 'Field engineers')).toEqual(logins(2, 3));
    expect((await app.status()).groups!.failures).toEqual([expect.objectContaining({ entraGroupId: FIELD, code: 'GROUP_NAME_CLAIMED_TWICE' })]);
  });

  it('When GROUP_NAME_PREFIX changes, then the next cycle is a new initial cycle that renames every linked group and changes no member', async () => {
    const { w } = await provisioned(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }, { id: FIELD, name: 'Field engineers', members: [3] }]);
    await harness.cycle(w, GROUPS_ON);
    const before = w.teamViewer.userGroups.groups();
    w.teamViewer.resetRequests();

    const report = await harness.cycle(w, { ...GROUPS_ON, GROUP_NAME_PREFIX: 'TV: ' });

    expect(report.kind).toBe('initial');
    expect(report.counts.groups).toMatchObject({ updated: 2, created: 0, membersAdded: 0, membersRemoved: 0 });
    // The same groups (ids), each renamed.
    expect(w.teamViewer.userGroups.groups()).toEqual(before.map((g) => ({ id: g.id, name: `TV: ${g.name}` })));
    expect(groupCalls(w).filter((c) => c.startsWith('PUT'))).toHaveLength(2);
    expect(memberLogins(w, 'TV: Helpdesk')).toEqual(logins(1, 2));
  });

  it('When a group has 250 members and then 150 leave, then members go in calls of at most 100 (3 adds, 2 removes in the request log)', async () => {
    const { w, app } = await provisioned(250, [{ id: OPS, name: 'Operations', members: range(1, 250) }]);

    const first = await app.runCycle({ trigger: 'cli' });

    expect(first.counts.groups).toMatchObject({ created: 1, membersAdded: 250 });
    const id = tvGroup(w, 'Operations')!.id;
    expect(groupCalls(w).filter((c) => c === `POST /api/v1/usergroups/${id}/members`)).toHaveLength(3);
    expect(w.teamViewer.userGroups.members(id)).toHaveLength(250);

    w.tenant.groups[0]!.members = range(1, 100).map(userId);
    w.teamViewer.resetRequests();
    const second = await app.runCycle({ trigger: 'cli' });

    expect(second.counts.groups).toMatchObject({ membersRemoved: 150, membersAdded: 0 });
    expect(groupCalls(w).filter((c) => c === `DELETE /api/v1/usergroups/${id}/members`)).toHaveLength(2);
    expect(memberLogins(w, 'Operations')).toEqual(logins(...range(1, 100)));
    expect((await app.status()).groups?.list[0]?.members).toBe(100);
  });

  it('When a member is disabled in Entra, then they are deactivated and leave the group in the same cycle; a user created in that cycle joins it', async () => {
    const { w, app } = await provisioned(5, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3] }]);
    await app.runCycle({ trigger: 'cli' });

    w.tenant.users.find((u) => u.id === userId(2))!.accountEnabled = false;
    w.tenant.users.push({ id: userId(99), userPrincipalName: personUpn(99), displayName: 'Person 99', givenName: 'Person', surname: '99', mail: personUpn(99), accountEnabled: true });
    w.tenant.groups[0]!.members.push(userId(99));
    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.counts).toMatchObject({ disabled: 1, created: 1 });
    expect(report.counts.groups).toMatchObject({ membersRemoved: 1, membersAdded: 1 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 3, 99));
  });

  it('When EXPAND_NESTED_GROUPS=true, then members of a group nested in an assigned group are its members too', async () => {
    const tenant = groupTenant(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }, { id: groupId(50), name: 'Night shift', members: [2, 3], assigned: false }]);
    tenant.groups[0]!.members.push(groupId(50));
    const w = await harness.world({ tenant });

    await harness.cycle(w, { ...GROUPS_ON, EXPAND_NESTED_GROUPS: 'true' });

    expect(w.teamViewer.userGroups.groups().map((g) => g.name)).toEqual(['Helpdesk']);
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3));
  });

  it('When it is a dry run, then it lists group-create and member-add with counts and samples and writes nothing to TeamViewer or state', async () => {
    const { w, app } = await provisioned(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3] }]);

    const report = await app.runCycle({ trigger: 'cli', dryRun: true });

    expect(report.dryRun).toBe(true);
    expect(report.counts.groups).toMatchObject({ created: 1, membersAdded: 3 });
    const [group] = report.groupActions!;
    expect(group).toMatchObject({ status: 'planned', name: 'Helpdesk' });
    expect(group!.steps.map((s) => [s.kind, s.status])).toEqual([['group-create', 'planned'], ['member-add', 'planned']]);
    expect(group!.steps[1]!.members).toEqual({ count: 3, sample: [1, 2, 3].map(personUpn) });
    expect(w.teamViewer.writes()).toBe(0);
    expect(w.teamViewer.userGroups.groups()).toEqual([]);
    expect(await app.groups!.state.listGroupLinks()).toEqual([]);
    expect(await app.groups!.state.listAllMembers()).toEqual(new Map());
  });

  it('When nothing changed in Entra, then the quiet cycle makes no user-group call at all; a membership change in Entra is noticed by the next', async () => {
    const { w, app } = await provisioned(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }, { id: FIELD, name: 'Field engineers', members: [3] }]);
    await app.runCycle({ trigger: 'cli' });
    w.teamViewer.resetRequests();

    const quiet = await app.runCycle({ trigger: 'timer' });

    expect(quiet.result).toBe('succeeded');
    expect(groupCalls(w)).toEqual([]);
    expect(quiet.groupActions).toEqual([]);

    // Person 3 moves from Field engineers to Helpdesk.
    w.tenant.groups[0]!.members.push(userId(3));
    w.tenant.groups[1]!.members = [];
    const moved = await app.runCycle({ trigger: 'timer' });
    expect(moved.counts.groups).toMatchObject({ membersAdded: 1, membersRemoved: 1 });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 2, 3));
    expect(memberLogins(w, 'Field engineers')).toEqual([]);
  });

  it('When GROUP_PROVISIONING is off (the default), then no group is read or written and no group table is made', async () => {
    const w = await harness.world({ tenant: groupTenant(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }]) });
    const app = await harness.app(w);

    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.counts.created).toBe(4);
    expect(report.groupActions).toBeUndefined();
    expect(report.counts.groups).toEqual({ created: 0, linked: 0, updated: 0, deleted: 0, unlinked: 0, membersAdded: 0, membersRemoved: 0, staged: 0, failed: 0 });
    expect(groupCalls(w)).toEqual([]);
    expect(app.groups).toBeNull();
    expect((await app.status()).groups).toBeNull();
    // No group name is asked of Graph either.
    expect([...w.graph.requests, ...w.graph.batchRequests].some((r) => r.path.includes('/groups?'))).toBe(false);
  });
});
