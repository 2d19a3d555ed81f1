/**
 * User groups through real cycles, continued (groups.test.ts has their lifecycle): a group that is
 * no longer assigned is deleted when tvsync created it, emptied and unlinked when it was adopted —
 * under the accidental-deletion guard, staged and released like deactivations; GROUP_ROLES gives
 * and changes roles, and an unknown role is reported by test-connection (CLI and POST
 * /api/test-connection) and the cycle without failing users; a missing right or licence is one
 * failure while users are provisioned; provision on demand joins the user's groups; the CLI shows
 * groups in sync --json, the dry run, logs and status.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { logsHandler } from '../../shared/handlers/logs';
import { testConnectionHandler } from '../../shared/handlers/operator';
import { resetRuntime } from '../../shared/runtime';
import { inProcess } from '../support/in-process';
import { assignGroup, FIELD, groupCalls, GROUPS_ON, groupTenant, HELPDESK, logins, memberLogins, OPS, tvGroup, unassignGroup } from '../support/groups';
import { personUpn, userId } from '../support/tenant';
import { runCli } from '../support/world';

const harness = inProcess();
const roleId = (w: { teamViewer: { userGroups: { roles(): Array<{ id: string; name: string }> } } }, name: string) => w.teamViewer.userGroups.roles().find((r) => r.name === name)!.id;

describe('user groups that go', () => {
  it('When a group tvsync created is unassigned, then it is deleted in TeamViewer and unlinked; its users stay (they are assigned directly)', async () => {
    const w = await harness.world({ tenant: groupTenant(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }, { id: FIELD, name: 'Field engineers', members: [3] }]) });
    const app = await harness.app(w, GROUPS_ON);
    await app.runCycle({ trigger: 'cli' });
    const helpdesk = tvGroup(w, 'Helpdesk')!;
    w.teamViewer.resetRequests();

    unassignGroup(w.tenant, HELPDESK);
    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.result).toBe('succeeded');
    expect(report.counts).toMatchObject({ disabled: 0 });
    expect(report.counts.groups).toMatchObject({ deleted: 1, unlinked: 0, staged: 0 });
    expect(groupCalls(w)).toContain(`DELETE /api/v1/usergroups/${helpdesk.id}`);
    expect(w.teamViewer.userGroups.groups().map((g) => g.name)).toEqual(['Field engineers']);
    expect((await app.groups!.state.listGroupLinks()).map((l) => l.entraGroupId)).toEqual([FIELD]);
    expect(await app.groups!.state.listMembers(HELPDESK)).toEqual([]);
    const { records } = await app.logs.query({ cycleId: report.cycleId });
    expect(records).toEqual([expect.objectContaining({ action: 'group-delete', status: 'success', entraId: HELPDESK, userPrincipalName: 'Helpdesk', teamViewerId: helpdesk.id })]);
    expect(records[0]!.reason).toMatch(/no longer assigned/);
  });

  it('When an adopted group is unassigned, then tvsync takes out only the members it manages and unlinks it; the group and an account added by hand stay', async () => {
    const w = await harness.world({ tenant: groupTenant(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2, 3] }]) });
    const outsider = w.teamViewer.seed({ userName: 'contractor@partner.example', displayName: 'Contractor' });
    const existing = w.teamViewer.userGroups.seedGroup('Helpdesk', [outsider.id]);
    const app = await harness.app(w, GROUPS_ON);
    await app.runCycle({ trigger: 'cli' });
    expect(memberLogins(w, 'Helpdesk')).toEqual(['contractor@partner.example', ...logins(1, 2, 3)]);

    unassignGroup(w.tenant, HELPDESK);
    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.counts.groups).toMatchObject({ deleted: 0, unlinked: 1, membersRemoved: 3 });
    expect(w.teamViewer.userGroups.groups()).toEqual([{ id: existing.id, name: 'Helpdesk' }]);
    expect(memberLogins(w, 'Helpdesk')).toEqual(['contractor@partner.example']);
    expect(await app.groups!.state.listGroupLinks()).toEqual([]);
    const { records } = await app.logs.query({ cycleId: report.cycleId });
    expect(records.map((r) => r.action).sort()).toEqual(['group-unlink', 'members-remove']);
  });

  it('When more groups go than DEACTIVATION_THRESHOLD allows, then they are held (staged) and shown, and allow-deactivations releases exactly them to the next cycle', async () => {
    const w = await harness.world({ tenant: groupTenant(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }, { id: FIELD, name: 'Field engineers', members: [2] }, { id: OPS, name: 'Operations', members: [3] }]) });
    const settings = { ...GROUPS_ON, DEACTIVATION_THRESHOLD: '1' };
    const app = await harness.app(w, settings);
    await app.runCycle({ trigger: 'cli' });

    unassignGroup(w.tenant, HELPDESK);
    unassignGroup(w.tenant, FIELD);
    const held = await app.runCycle({ trigger: 'cli' });

    expect(held.counts.groups).toMatchObject({ staged: 2, deleted: 0 });
    expect(w.teamViewer.userGroups.groups()).toHaveLength(3);
    expect(held.groupActions!.filter((r) => r.status === 'staged').map((r) => r.name).sort()).toEqual(['Field engineers', 'Helpdesk']);
    const status = await app.status();
    expect(status.health).toBe('quarantined');
    expect(status.stagedDeactivations).toMatchObject({ reason: 'TooManyDeactivations', count: 2, groups: 2, allowed: false });
    expect(status.stagedDeactivations!.sample.map((s) => [s.userPrincipalName, s.kind])).toEqual(expect.arrayContaining([['Helpdesk', 'group'], ['Field engineers', 'group']]));
    expect(status.groups!.heldDeletions).toMatchObject({ count: 2 });
    const { records } = await app.logs.query({ cycleId: held.cycleId, status: 'staged' });
    expect(records.map((r) => [r.action, r.userPrincipalName]).sort()).toEqual([['group-delete', 'Field engineers'], ['group-delete', 'Helpdesk']]);

    // Still held next cycle; then an admin allows exactly these two.
    expect((await app.runCycle({ trigger: 'cli' })).counts.groups.staged).toBe(2);
    const allowed = await app.allowDeactivations('test');
    expect(allowed).toMatchObject({ count: 2, groups: 2 });
    const released = await app.runCycle({ trigger: 'cli' });

    expect(released.counts.groups).toMatchObject({ deleted: 2, staged: 0 });
    expect(w.teamViewer.userGroups.groups().map((g) => g.name)).toEqual(['Operations']);
    const after = await app.status();
    expect(after.stagedDeactivations).toBeNull();
    expect(after.allowance).toMatchObject({ pending: false, count: 2, applied: 2 });
  });
});

describe('roles of user groups', () => {
  it('When GROUP_ROLES maps a group, then its TeamViewer group gets the role; when the setting changes, the next (initial) cycle changes it, logged old → new', async () => {
    const w = await harness.world({ tenant: groupTenant(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }, { id: FIELD, name: 'Field engineers', members: [2] }]) });
    const first = await harness.cycle(w, { ...GROUPS_ON, GROUP_ROLES: '[{"group":"Helpdesk","role":"Support agent"}]' });

    const helpdesk = tvGroup(w, 'Helpdesk')!;
    expect(first.counts.groups).toMatchObject({ created: 2, updated: 1 });
    expect(w.teamViewer.userGroups.roleOf(helpdesk.id)).toBe(roleId(w, 'Support agent'));
    expect(w.teamViewer.userGroups.roleOf(tvGroup(w, 'Field engineers')!.id)).toBeNull();

    const app = await harness.app(w, { ...GROUPS_ON, GROUP_ROLES: `[{"group":"${HELPDESK}","role":"Administrator"}]` });
    const second = await app.runCycle({ trigger: 'cli' });

    expect(second.kind).toBe('initial');
    expect(second.counts.groups).toMatchObject({ updated: 1, created: 0 });
    expect(w.teamViewer.userGroups.roleOf(helpdesk.id)).toBe(roleId(w, 'Administrator'));
    const { records } = await app.logs.query({ cycleId: second.cycleId });
    expect(records).toEqual([expect.objectContaining({ action: 'role-assign', entraId: HELPDESK, modifiedProperties: [{ name: 'role', old: 'Support agent', new: 'Administrator' }] })]);
    expect((await app.status()).groups!.list.find((g) => g.entraGroupId === HELPDESK)?.role).toBe('Administrator');
    // Done is done: the next cycle has no role left to give.
    w.teamViewer.resetRequests();
    expect((await app.runCycle({ trigger: 'cli' })).counts.groups.updated).toBe(0);
    expect(groupCalls(w).filter((c) => c.includes('/userroles/assign'))).toEqual([]);
  });

  it('When GROUP_ROLES names an unknown role and a group that is not assigned, then the cycle warns (report and status) without failing, and test-connection (CLI and POST /api/test-connection) names both', async () => {
    const w = await harness.world({ tenant: groupTenant(4, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }]) });
    const settings = { ...GROUPS_ON, GROUP_ROLES: '[{"group":"Helpdesk","role":"Wizard"},{"group":"Nobody","role":"Support agent"}]' };
    const app = await harness.app(w, settings);

    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.result).toBe('succeeded');
    expect(report.counts.created).toBe(4);
    expect(report.counts.groups).toMatchObject({ created: 1, failed: 0 });
    expect(report.groupWarnings).toEqual([
      expect.stringMatching(/^GROUP_ROLES entry 1: the TeamViewer company has no role named "Wizard"/),
      expect.stringMatching(/^GROUP_ROLES entry 2: no group assigned to the TeamViewer application has the object id or exact display name "Nobody"/),
    ]);
    expect(w.teamViewer.userGroups.roleOf(tvGroup(w, 'Helpdesk')!.id)).toBeNull();
    const status = await app.status();
    expect(status.health).toBe('healthy');
    expect(status.groups!.warnings).toEqual(report.groupWarnings);
    // A quiet cycle keeps the warning on show: nothing was read that could change it.
    await app.runCycle({ trigger: 'timer' });
    expect((await app.status()).groups!.warnings).toEqual(report.groupWarnings);

    const checks = await app.testConnection();
    expect(checks.find((c) => c.target === 'TeamViewer user groups')).toMatchObject({ ok: false, code: 'GROUP_ROLE_UNKNOWN_ROLE' });
    expect(checks.find((c) => c.target === 'TeamViewer user groups')!.detail).toMatch(/"Wizard".*"Nobody"/);

    const cli = await runCli(['test-connection'], { ...w.env, ...settings });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(/FAILED TeamViewer user groups +GROUP_ROLES cannot be applied as written: .*no role named "Wizard"/);

    process.env = { ...harness.savedEnv, ...w.env, ...settings };
    resetRuntime();
    const response = await testConnectionHandler(new HttpRequest({ url: 'http://localhost:7071/api/test-connection', method: 'POST' }), new InvocationContext({ functionName: 'test-connection' }));
    resetRuntime();
    expect(response.status).toBe(502);
    expect((response.jsonBody as { checks: Array<{ target: string; code?: string }> }).checks).toEqual(expect.arrayContaining([expect.objectContaining({ target: 'TeamViewer user groups', ok: false, code: 'GROUP_ROLE_UNKNOWN_ROLE' })]));
  });
});

describe('a token or company without user groups', () => {
  it('When the company has no Tensor licence (403 on every user-group call), then the cycle reports one failure naming the missing right, provisions every user, and recovers once it is fixed', async () => {
    const w = await harness.world({ tenant: groupTenant(8, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }, { id: FIELD, name: 'Field engineers', members: [3] }]) });
    w.teamViewer.userGroups.setAccess('no-licence');
    const app = await harness.app(w, GROUPS_ON);

    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.result).toBe('partial');
    expect(report.counts).toMatchObject({ created: 8, failed: 0 });
    expect(report.counts.groups).toMatchObject({ failed: 1, created: 0 });
    expect(report.groupActions).toHaveLength(1);
    expect(report.groupActions![0]).toMatchObject({ kind: 'group-read', status: 'failure', error: { code: 'TEAMVIEWER_GROUPS_FORBIDDEN' } });
    expect(report.groupActions![0]!.error!.message).toMatch(/User groups: create, delete, edit, read.*Tensor licence/);
    // One listing, refused; nothing else was tried.
    expect(groupCalls(w)).toEqual(['GET /api/v1/usergroups']);
    const status = await app.status();
    expect(status.health).toBe('degraded');
    expect(status.healthReason).toMatch(/1 failed user group change/);
    expect(status.groups!.failures).toEqual([expect.objectContaining({ action: 'group-read', code: 'TEAMVIEWER_GROUPS_FORBIDDEN' })]);
    expect(await app.store.listEscrows()).toEqual([]);

    w.teamViewer.userGroups.setAccess('licensed');
    const fixed = await app.runCycle({ trigger: 'cli' });
    expect(fixed.result).toBe('succeeded');
    expect(fixed.counts.groups).toMatchObject({ created: 2, failed: 0 });
  });

  it('When the token may list groups but every create is refused (403), then exactly one group reports the failure and the others are skipped saying why', async () => {
    const w = await harness.world({ tenant: groupTenant(6, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }, { id: FIELD, name: 'Field engineers', members: [2] }, { id: OPS, name: 'Operations', members: [3] }]) });
    w.teamViewer.inject({ kind: 'status', status: 403, method: 'POST', pathIncludes: '/api/v1/usergroups', times: 3 });
    const app = await harness.app(w, GROUPS_ON);

    const report = await app.runCycle({ trigger: 'cli' });

    expect(report.counts.created).toBe(6);
    expect(report.counts.groups).toMatchObject({ failed: 1, created: 0 });
    const failed = report.groupActions!.filter((r) => r.status === 'failure');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toMatchObject({ code: 'TEAMVIEWER_GROUPS_FORBIDDEN' });
    const skipped = report.groupActions!.filter((r) => r.status === 'skipped');
    expect(skipped).toHaveLength(2);
    for (const s of skipped) expect(s.reason).toMatch(/^not attempted: TeamViewer refused user-group calls earlier in this cycle \(TEAMVIEWER_GROUPS_FORBIDDEN/);
    expect(await app.groups!.state.listGroupLinks()).toEqual([]);
  });
});

describe('user groups on the operator surface', () => {
  it('When a new member of an assigned group is provisioned on demand, then the groups step joins them to its TeamViewer group (a dry run says it would)', async () => {
    const w = await harness.world({ tenant: groupTenant(3, [{ id: HELPDESK, name: 'Helpdesk', members: [1] }, { id: FIELD, name: 'Field engineers', members: [2] }]) });
    const app = await harness.app(w, GROUPS_ON);
    await app.runCycle({ trigger: 'cli' });
    w.tenant.users.push({ id: userId(9), userPrincipalName: personUpn(9), displayName: 'Person 9', givenName: 'Person', surname: '9', mail: personUpn(9), accountEnabled: true });
    w.tenant.groups[0]!.members.push(userId(9));
    const helpdesk = tvGroup(w, 'Helpdesk')!;

    const dry = await app.provision(personUpn(9), { dryRun: true });
    expect(dry.steps.find((s) => s.step === 'groups')).toMatchObject({ status: 'skipped', detail: `would join "Helpdesk" (TeamViewer user group ${helpdesk.id}) (dry run: nothing written)` });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1));

    const result = await app.provision(personUpn(9));
    expect(result.ok).toBe(true);
    expect(result.steps.map((s) => s.step)).toEqual(['connection test', 'import', 'scope evaluation', 'matching', 'action', 'groups']);
    expect(result.steps.find((s) => s.step === 'groups')).toMatchObject({ status: 'success', detail: `joins "Helpdesk" (TeamViewer user group ${helpdesk.id})` });
    expect(memberLogins(w, 'Helpdesk')).toEqual(logins(1, 9));
    // The next cycle finds nothing left to do for the group.
    expect((await app.runCycle({ trigger: 'cli' })).counts.groups).toMatchObject({ membersAdded: 0, membersRemoved: 0 });
  });

  it('When the CLI runs with groups on, then sync --json counts them, the dry run lists them, logs show one record per group change in every format, and status lists the groups', async () => {
    const w = await harness.world({ tenant: groupTenant(3, [{ id: HELPDESK, name: 'Helpdesk', members: [1, 2] }]) });
    const env = { ...w.env, ...GROUPS_ON, GROUP_NAME_PREFIX: 'Entra - ' };

    const dry = await runCli(['sync', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('User groups');
    expect(dry.stdout).toMatch(/group-create +"Entra - Helpdesk"/);
    expect(dry.stdout).toMatch(/member-add +"Entra - Helpdesk" +\+2 members: person\.1@contoso\.example, person\.2@contoso\.example/);
    expect(w.teamViewer.userGroups.groups()).toEqual([]);

    const sync = await runCli(['sync', '--json'], env);
    expect(sync.code).toBe(0);
    const report = JSON.parse(sync.stdout) as { counts: Record<string, unknown> & { groups: Record<string, number> } };
    expect(report.counts).toMatchObject({ created: 3, failed: 0 });
    expect(report.counts.groups).toEqual({ created: 1, linked: 0, updated: 0, deleted: 0, unlinked: 0, membersAdded: 2, membersRemoved: 0, staged: 0, failed: 0 });

    const table = await runCli(['logs', '--user', 'Entra - Helpdesk'], env);
    expect(table.stdout).toMatch(/group-create +success +Entra - Helpdesk/);
    expect(table.stdout).toMatch(/members-add +success +Entra - Helpdesk/);
    const csv = await runCli(['logs', '--user', HELPDESK, '--format', 'csv'], env);
    expect(csv.stdout.split('\r\n').filter((l) => l.includes('members-add'))).toHaveLength(1);
    const json = JSON.parse((await runCli(['logs', '--user', HELPDESK, '--format', 'json'], env)).stdout) as Array<{ action: string }>;
    expect(json.map((r) => r.action).sort()).toEqual(['group-create', 'members-add']);

    // GET /api/logs answers the same records (the handler the Functions host registers).
    process.env = { ...harness.savedEnv, ...env };
    resetRuntime();
    const api = await logsHandler(new HttpRequest({ url: `http://localhost:7071/api/logs?user=${HELPDESK}`, method: 'GET' }), new InvocationContext({ functionName: 'logs' }));
    const csvApi = await logsHandler(new HttpRequest({ url: `http://localhost:7071/api/logs?user=${encodeURIComponent('Entra - Helpdesk')}&format=csv`, method: 'GET' }), new InvocationContext({ functionName: 'logs' }));
    resetRuntime();
    expect((api.jsonBody as { records: Array<{ action: string; userPrincipalName: string }> }).records.map((r) => [r.action, r.userPrincipalName]).sort()).toEqual([['group-create', 'Entra - Helpdesk'], ['members-add', 'Entra - Helpdesk']]);
    expect(String(csvApi.body).split('\r\n').filter((l) => /group-create|members-add/.test(l))).toHaveLength(2);

    const status = await runCli(['status'], env);
    expect(status.stdout).toMatch(/user groups: created 1, linked 0, updated 0, deleted 0, unlinked 0, members \+2 -0, staged 0, failed 0/);
    expect(status.stdout).toMatch(/User groups: 1 linked \(names start with "Entra - "\)\n {2}"Entra - Helpdesk" — TeamViewer user group \d+, created, 2 member\(s\)/);

    // Assigning another group later shows up the same way.
    assignGroup(w.tenant, FIELD);
    w.tenant.groups.push({ id: FIELD, displayName: 'Field engineers', members: [userId(3)] });
    const again = JSON.parse((await runCli(['sync', '--json'], env)).stdout) as { counts: { groups: Record<string, number> } };
    expect(again.counts.groups).toMatchObject({ created: 1, membersAdded: 1 });
  });
});
