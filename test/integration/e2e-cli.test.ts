/**
 * End to end, driven only through the real `tvsync` bin against Azurite and the emulators:
 * what an admin would see on the first days of running tvsync.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite } from '../support/azurite';
import { expectedInScope, sampleTenant, userId } from '../support/tenant';
import { runCli, startWorld, type World } from '../support/world';
import { expireLease } from '../support/lease';

let storage: Awaited<ReturnType<typeof startAzurite>>;
const worlds: World[] = [];

beforeAll(async () => {
  storage = await startAzurite();
});
afterEach(async () => {
  await Promise.all(worlds.splice(0).map((w) => w.close()));
});
afterAll(async () => {
  await storage?.stop();
});

async function world(options: Parameters<typeof startWorld>[0] = {}): Promise<World> {
  const w = await startWorld({ tenant: sampleTenant({ users: 60, groups: 3 }), graphPageSize: 20, ...options, storageConnectionString: storage.connectionString });
  worlds.push(w);
  return w;
}

const byUserName = (w: World) => {
  const map = new Map<string, number>();
  for (const u of w.teamViewer.users()) map.set(u.userName.toLowerCase(), (map.get(u.userName.toLowerCase()) ?? 0) + 1);
  return map;
};

function upnsInScope(w: World): string[] {
  const ids = expectedInScope(w.tenant);
  return w.tenant.users.filter((u) => ids.has(u.id)).map((u) => u.userPrincipalName.toLowerCase()).sort();
}

function scimUserNames(w: World, filter: (u: ReturnType<World['teamViewer']['users']>[number]) => boolean = () => true): string[] {
  return w.teamViewer.users().filter(filter).map((u) => u.userName.toLowerCase()).sort();
}

describe('tvsync sync, end to end', () => {
  it('When the first sync runs, then exactly the in-scope users are created, and a second sync writes nothing', async () => {
    const w = await world();
    const first = await runCli(['sync', '--json'], w.env);
    expect(first.stderr).not.toContain(w.teamViewer.token);
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    const inScope = upnsInScope(w);
    expect(report).toMatchObject({ kind: 'initial', dryRun: false, result: 'succeeded' });
    expect(report.counts.created).toBe(inScope.length);
    expect(report.counts.failed).toBe(0);
    expect(scimUserNames(w, (u) => u.createdBy === 'scim')).toEqual(inScope);
    expect(w.teamViewer.users().every((u) => u.active || u.createdBy === 'console')).toBe(true);

    w.teamViewer.resetRequests();
    const second = await runCli(['sync', '--json'], w.env);
    expect(second.code, second.stderr).toBe(0);
    const again = JSON.parse(second.stdout);
    expect(again).toMatchObject({ kind: 'incremental', result: 'succeeded' });
    expect(again.counts).toMatchObject({ created: 0, updated: 0, disabled: 0, enabled: 0, failed: 0, unchanged: inScope.length });
    expect(w.teamViewer.writes()).toBe(0);
  });

  it('When a user is unassigned, disabled, renamed or hired, then the next sync deactivates, renames and creates exactly those', async () => {
    const w = await world();
    expect((await runCli(['sync'], w.env)).code).toBe(0);
    const direct = w.tenant.users.find((u) => w.tenant.assignments.some((a) => a.principalId === u.id && a.principalType === 'User') && u.accountEnabled)!;
    const toDisable = w.tenant.users.find((u) => u.id !== direct.id && expectedInScope(w.tenant).has(u.id))!;
    const toRename = w.tenant.users.find((u) => u.id !== direct.id && u.id !== toDisable.id && expectedInScope(w.tenant).has(u.id))!;
    const before = w.teamViewer.users().length;

    w.tenant.assignments = w.tenant.assignments.filter((a) => a.principalId !== direct.id);
    toDisable.accountEnabled = false;
    const oldUpn = toRename.userPrincipalName;
    toRename.userPrincipalName = `renamed.${oldUpn}`;
    w.tenant.users.push({ id: userId(9001), userPrincipalName: 'new.hire@contoso.example', displayName: 'New Hire', givenName: 'New', surname: 'Hire', mail: 'new.hire@contoso.example', accountEnabled: true });
    w.tenant.assignments.push({ id: 'asg-new', resourceId: w.env.ENTRA_SERVICE_PRINCIPAL_ID, principalId: userId(9001), principalType: 'User', appRoleId: '00000000-0000-0000-0000-000000000000' });

    const run = await runCli(['sync', '--json'], w.env);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.counts).toMatchObject({ created: 1, disabled: 2, updated: 1, failed: 0 });
    const tv = w.teamViewer.users();
    expect(tv).toHaveLength(before + 1);
    expect(tv.find((u) => u.userName.toLowerCase() === direct.userPrincipalName.toLowerCase())).toMatchObject({ active: false });
    expect(tv.find((u) => u.userName.toLowerCase() === toDisable.userPrincipalName.toLowerCase())).toMatchObject({ active: false });
    expect(tv.find((u) => u.userName === toRename.userPrincipalName)).toMatchObject({ active: true });
    expect(tv.some((u) => u.userName === oldUpn)).toBe(false);
    expect(tv.find((u) => u.userName === 'new.hire@contoso.example')).toMatchObject({ active: true, displayName: 'New Hire' });

    // Re-enabled in Entra → re-enabled in TeamViewer.
    toDisable.accountEnabled = true;
    const back = JSON.parse((await runCli(['sync', '--json'], w.env)).stdout);
    expect(back.counts).toMatchObject({ enabled: 1, created: 0 });
    expect(w.teamViewer.users().find((u) => u.userName.toLowerCase() === toDisable.userPrincipalName.toLowerCase())).toMatchObject({ active: true });
  });

  it('When an Entra user is disabled before the first sync, then it is never created active', async () => {
    const w = await world();
    const disabled = w.tenant.users.filter((u) => !u.accountEnabled);
    expect(disabled.length).toBeGreaterThan(0);
    expect((await runCli(['sync'], w.env)).code).toBe(0);
    for (const u of disabled) {
      expect(w.teamViewer.users().filter((t) => t.userName.toLowerCase() === u.userPrincipalName.toLowerCase() && t.active)).toEqual([]);
    }
  });

  it('When TeamViewer already has a user with the same userName (other letter case), then it is linked, not duplicated', async () => {
    const w = await world();
    const target = w.tenant.users.find((u) => expectedInScope(w.tenant).has(u.id))!;
    const existing = w.teamViewer.seed({ userName: target.userPrincipalName.toUpperCase(), displayName: 'Old Name' });
    const run = await runCli(['sync', '--json'], w.env);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.counts.linked).toBe(1);
    expect(byUserName(w).get(target.userPrincipalName.toLowerCase())).toBe(1);
    expect(w.teamViewer.users().find((u) => u.id === existing.id)).toMatchObject({ displayName: target.displayName });
  });

  it('When Graph fails in the middle of the read, then nobody is disabled and the cycle fails saying why', async () => {
    const w = await world();
    expect((await runCli(['sync'], w.env)).code).toBe(0);
    const activeBefore = w.teamViewer.users().filter((u) => u.active).length;
    // Something changed (so the cycle reads everything), and Graph breaks half-way through.
    w.tenant.users[0].displayName = 'Changed Meanwhile';
    w.graph.inject({ kind: 'status', status: 500, times: 100, pathIncludes: '/members', afterMatches: 1 });
    w.teamViewer.resetRequests();
    const run = await runCli(['sync', '--json'], w.env);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report.result).toBe('failed');
    expect(report.error.code).toMatch(/^GRAPH_/);
    expect(w.teamViewer.writes()).toBe(0);
    expect(w.teamViewer.users().filter((u) => u.active).length).toBe(activeBefore);
    const status = await runCli(['status'], w.env);
    expect(status.stdout).toMatch(/DEGRADED/);
    expect(status.stdout).toMatch(/GRAPH_/);
  });

  it('When the TeamViewer token is wrong, then sync exits non-zero and status says why, without the token', async () => {
    const w = await world();
    const run = await runCli(['sync'], { ...w.env, TEAMVIEWER_API_TOKEN: 'wrong-token-123456' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/TEAMVIEWER_API_TOKEN|401/);
    const status = await runCli(['status', '--json'], w.env);
    const doc = JSON.parse(status.stdout);
    expect(doc.health).toBe('quarantined');
    expect(doc.quarantine).toMatchObject({ reason: 'Unauthorized', attempts: 1 });
    expect(doc.healthReason).toMatch(/rejected the API token|TEAMVIEWER_API_TOKEN|401/);
    expect(doc.lastCycle.error.code).toBe('TEAMVIEWER_UNAUTHORIZED');
    expect(status.stdout + run.stdout + run.stderr).not.toContain('wrong-token-123456');
    expect(w.teamViewer.users().filter((u) => u.createdBy === 'scim')).toEqual([]);
  });

  it('When the process is killed (kill -9) mid-cycle, then its lease holds until it expires, and the next sync ends with no duplicates and nobody missing', async () => {
    const w = await world({ teamViewer: { latencyMs: 40 } });
    const inScope = upnsInScope(w);
    const killed = await runCli(['sync'], w.env, {
      onStart: (child) => {
        const poll = setInterval(() => {
          if (w.teamViewer.users().filter((u) => u.createdBy === 'scim').length >= 10) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 5);
        child.on('close', () => clearInterval(poll));
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    const partial = w.teamViewer.users().filter((u) => u.createdBy === 'scim').length;
    expect(partial).toBeGreaterThanOrEqual(10);
    expect(partial).toBeLessThan(inScope.length);

    // Nothing on this host can prove the holder dead (containers share hostnames and pids): the
    // lease is not taken over before it expires.
    const early = await runCli(['sync', '--wait', '0'], w.env);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/another cycle is running \(cli cycle, held by .*\(instance [0-9a-f]{16}\.1\).*lease valid until/);
    expect(await expireLease(w.env)).toMatchObject({ purpose: 'cli cycle' });

    const resumed = await runCli(['sync', '--json'], w.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(scimUserNames(w, (u) => u.createdBy === 'scim')).toEqual(inScope);
    expect([...byUserName(w).values()].every((n) => n === 1)).toBe(true);
    const status = JSON.parse((await runCli(['status', '--json'], w.env)).stdout);
    expect(status.recentCycles.length).toBe(2);
  });

  it('When a second sync starts while one runs, then it waits, then exits 1 saying so, and did nothing', async () => {
    const w = await world({ teamViewer: { latencyMs: 20 } });
    let second: Promise<Awaited<ReturnType<typeof runCli>>> | null = null;
    const first = await runCli(['sync'], w.env, {
      onStart: (child) => {
        const poll = setInterval(() => {
          if (!second && w.teamViewer.users().filter((u) => u.createdBy === 'scim').length >= 3) {
            clearInterval(poll);
            // The first cycle is mid-way and stays there (TeamViewer holds its answers) until the
            // second has given up: however slowly the second process starts, the lease is taken.
            const release = w.teamViewer.hold();
            second = runCli(['sync', '--wait', '1'], w.env);
            void second.finally(release);
          }
        }, 5);
        child.on('close', () => clearInterval(poll));
      },
    });
    expect(first.code, first.stderr).toBe(0);
    const refused = await second!;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/another cycle is running \(cli cycle/);
    expect(refused.stdout).toBe('');
    expect([...byUserName(w).values()].every((n) => n === 1)).toBe(true);
    const status = JSON.parse((await runCli(['status', '--json'], w.env)).stdout);
    expect(status.recentCycles).toHaveLength(1);
  });

  it('When more users would be deactivated than DEACTIVATION_THRESHOLD, then all are held back until allow-deactivations, once', async () => {
    const w = await world();
    const env = { ...w.env, DEACTIVATION_THRESHOLD: '2' };
    expect((await runCli(['sync'], env)).code).toBe(0);
    const direct = w.tenant.assignments.filter((a) => a.principalType === 'User').map((a) => a.principalId);
    const leaving = w.tenant.users.filter((u) => direct.includes(u.id) && u.accountEnabled).slice(0, 3);
    w.tenant.assignments = w.tenant.assignments.filter((a) => !leaving.some((u) => u.id === a.principalId));

    w.teamViewer.resetRequests();
    const held = await runCli(['sync'], env);
    expect(held.code).toBe(1);
    expect(held.stdout).toMatch(/3 deactivation\(s\) held back/);
    expect(w.teamViewer.writes()).toBe(0);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout);
    expect(status.health).toBe('quarantined');
    expect(status.quarantine.reason).toBe('TooManyDeactivations');
    expect(status.stagedDeactivations).toMatchObject({ count: 3, limit: 2, allowed: false });
    expect(status.stagedDeactivations.sample.map((u: { userPrincipalName: string }) => u.userPrincipalName).sort()).toEqual(leaving.map((u) => u.userPrincipalName).sort());

    const allowed = await runCli(['allow-deactivations'], env);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/Allowed: 3 deactivation/);
    const applied = JSON.parse((await runCli(['sync', '--json'], env)).stdout);
    expect(applied.counts).toMatchObject({ disabled: 3, staged: 0 });
    for (const u of leaving) expect(w.teamViewer.users().find((t) => t.userName.toLowerCase() === u.userPrincipalName.toLowerCase())?.active).toBe(false);
    expect(JSON.parse((await runCli(['status', '--json'], env)).stdout).health).toBe('healthy');

    // The allowance was for that cycle only: the next mass deactivation is held again.
    const more = w.tenant.users.filter((u) => direct.includes(u.id) && u.accountEnabled && !leaving.includes(u)).slice(0, 3);
    w.tenant.assignments = w.tenant.assignments.filter((a) => !more.some((u) => u.id === a.principalId));
    expect(JSON.parse((await runCli(['sync', '--json'], env)).stdout).counts).toMatchObject({ staged: 3, disabled: 0 });
  });

  it('When Graph suddenly returns far fewer users, then deactivations are held as a suspicious read, cycle after cycle', async () => {
    const w = await world();
    expect((await runCli(['sync'], w.env)).code).toBe(0);
    // An assignment change (or a broken read) drops most users at once.
    w.tenant.assignments = w.tenant.assignments.filter((a) => a.principalType === 'User');
    for (let i = 0; i < 2; i++) {
      const run = JSON.parse((await runCli(['sync', '--json'], w.env)).stdout);
      expect(run.counts.disabled).toBe(0);
      expect(run.counts.staged).toBeGreaterThan(10);
    }
    const status = JSON.parse((await runCli(['status', '--json'], w.env)).stdout);
    expect(status.quarantine.reason).toBe('SuspiciousRead');
    expect(w.teamViewer.users().filter((u) => u.createdBy === 'scim').every((u) => u.active)).toBe(true);
  });

  it('When a dry run is asked for, then it lists the changes and writes nothing to TeamViewer or state', async () => {
    const w = await world();
    const dry = await runCli(['sync', '--dry-run'], w.env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/Dry run/);
    expect(dry.stdout).toMatch(/would be made/);
    expect(w.teamViewer.writes()).toBe(0);
    const status = JSON.parse((await runCli(['status', '--json'], w.env)).stdout);
    expect(status.health).toBe('never-run');
    expect(status.lastCycle).toBeNull();
  });

  it('When settings are wrong, then every command exits 2 naming every bad setting', async () => {
    const run = await runCli(['sync'], { ENTRA_SERVICE_PRINCIPAL_ID: 'nope', TEAMVIEWER_SCIM_URL: 'http://tv.example.com/scim/v2' });
    expect(run.code).toBe(2);
    for (const name of ['AzureWebJobsStorage', 'ENTRA_SERVICE_PRINCIPAL_ID', 'TEAMVIEWER_API_TOKEN', 'TEAMVIEWER_SCIM_URL']) expect(run.stderr).toContain(name);
    expect((await runCli(['frobnicate'], {})).code).toBe(2);
  });

  it('When test-connection runs, then each target is checked and a bad token is named as the cause', async () => {
    const w = await world();
    const ok = await runCli(['test-connection'], w.env);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/ok\s+Microsoft Graph/);
    expect(ok.stdout).toMatch(/ok\s+TeamViewer/);
    const bad = await runCli(['test-connection'], { ...w.env, TEAMVIEWER_API_TOKEN: 'revoked-token-99999' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAILED\s+TeamViewer/);
    expect(bad.stdout).not.toContain('revoked-token-99999');
  });
});
