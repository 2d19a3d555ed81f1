/**
 * The fault-injection suite (issue 5, item 8): real cycles — in-process through createApp, or the
 * real `tvsync` bin as a child process — against Azurite and the Graph, managed-identity,
 * TeamViewer and ACS Email emulators, with faults injected. Every scenario records, before it
 * asserts, whether TeamViewer converged to what Entra says, duplicates, wrong deactivations,
 * TeamViewer writes, retries, Graph requests and emails per reason; afterAll prints the table and
 * writes test-results/faults.json.
 *
 * Shared per file: one Azurite, one identity emulator (MSAL caches the managed-identity endpoint
 * once per process, so every world in a process must use the same one) and one ACS Email emulator.
 *
 * Duplicates: TeamViewer (and its emulator) refuse a second user with the same email, so a create
 * sent again for a user that had landed shows as a 409 ("409s" in the table), which tvsync must
 * turn into a relink; duplicates stay 0 by construction, converged and 409s are the real signal.
 *
 * Timeouts: dropped connections ('reset' faults, before and after the write lands) stand in for
 * lost answers here; targets that never answer ('hang' faults) have their own suite,
 * timeouts.test.ts (through cycles) and timeouts-clients.test.ts (each client).
 *
 * Needs what `npm test` sets up: the build (the CLI scenarios run bin/tvsync.js → dist) and
 * NODE_EXTRA_CA_CERTS=test/emulators/certs/localhost.crt (Graph is https).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { memoryLogger } from '../../shared/log';
import type { CycleReport } from '../../shared/sync/cycle';
import { startAcsEmailEmulator, type AcsEmailEmulator } from '../emulators/acs-email';
import type { EmulatedTenant } from '../emulators/graph';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import type { TeamViewerEmulatorOptions } from '../emulators/teamviewer';
import { startAzurite } from '../support/azurite';
import { createFaultsReport } from '../support/faults-report';
import { DEFAULT_ROLE, expectedInScope, groupId, sampleTenant, SP_ID, userId } from '../support/tenant';
import { runCli, startWorld, type CliRun, type World } from '../support/world';
import { expireLease } from '../support/lease';

let storage: Awaited<ReturnType<typeof startAzurite>>;
let identity: IdentityEmulator;
let mail: AcsEmailEmulator;
const worlds: World[] = [];
const savedEnv = { ...process.env };
const report = createFaultsReport();

beforeAll(async () => {
  [storage, identity, mail] = await Promise.all([startAzurite(), startIdentityEmulator(), startAcsEmailEmulator()]);
});
afterEach(async () => {
  await Promise.all(worlds.splice(0).map((w) => w.close()));
  process.env = { ...savedEnv };
});
afterAll(async () => {
  await Promise.all([storage?.stop(), identity?.close(), mail?.close()]);
  if (report.rows().length > 0) {
    const file = report.write();
    console.log(`\nFault-injection suite (${file}):\n\n${report.table()}\n`);
  }
});

/** TeamViewer users tvsync must never touch: another company's partner account, a former one. */
const OUTSIDERS = [
  { userName: 'partner.one@fabrikam.example', displayName: 'Partner One', active: true },
  { userName: 'former.partner@fabrikam.example', displayName: 'Former Partner', active: false },
];

async function world(tenant: EmulatedTenant, teamViewer: TeamViewerEmulatorOptions = {}, graphPageSize = 10): Promise<World> {
  const w = await startWorld({ tenant, graphPageSize, teamViewer, identity, storageConnectionString: storage.connectionString });
  worlds.push(w);
  for (const o of OUTSIDERS) w.teamViewer.seed(o);
  Object.assign(w.env, {
    NOTIFY_EMAIL_TO: 'it-ops@contoso.example',
    ACS_EMAIL_SENDER: 'DoNotReply@tvsync.example',
    ACS_EMAIL_CONNECTION_STRING: mail.connectionString,
  });
  return w;
}

/** `count` users, every one assigned through one of `groups` groups (none directly), all enabled. */
function groupTenant(count: number, groups: number): EmulatedTenant {
  const tenant: EmulatedTenant = {
    servicePrincipals: [{ id: SP_ID, appId: 'b1e3a2c4-0000-4000-8000-7ea3c1e0ab1e', displayName: 'TeamViewer' }],
    users: [],
    groups: Array.from({ length: groups }, (_, i) => ({ id: groupId(i + 1), displayName: `TeamViewer ${i + 1}`, members: [] as string[] })),
    assignments: Array.from({ length: groups }, (_, i) => ({ id: `asg-g${i + 1}`, resourceId: SP_ID, principalId: groupId(i + 1), principalType: 'Group' as const, appRoleId: DEFAULT_ROLE })),
  };
  for (let n = 1; n <= count; n++) {
    tenant.users.push({ id: userId(n), userPrincipalName: `member.${n}@contoso.example`, displayName: `Member ${n}`, givenName: 'Member', surname: `${n}`, mail: `member.${n}@contoso.example`, accountEnabled: true });
    tenant.groups[(n - 1) % groups].members.push(userId(n));
  }
  return tenant;
}

const lower = (s: string) => s.toLowerCase();
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface Measure {
  converged: boolean;
  /** Why not, for the assertion message. */
  problems: string[];
  duplicates: number;
  /** POSTs answered 409: creates sent again for a user that exists (see FaultsRow.conflicts). */
  conflicts: number;
  wrongDeactivations: number;
}

/**
 * One scenario: its world, the cycles it ran and what they cost. The measures compare TeamViewer
 * with `truth` (what Entra really says — the tenant before a fault that made it look different).
 */
class Scenario {
  cycles = 0;
  retries: number | null = 0;
  private readonly started = Date.now();
  private readonly mailFrom = mail.messages.length;
  private readonly unmanaged: Map<string, string>;

  constructor(readonly name: string, readonly w: World) {
    this.unmanaged = new Map(w.teamViewer.users().filter((u) => u.createdBy === 'console').map((u) => [u.id, JSON.stringify(u)]));
  }

  async app(settings: Record<string, string> = {}): Promise<App> {
    process.env = { ...savedEnv, ...this.w.env, ...settings };
    return createApp(loadSettings({ env: process.env, localSettingsDir: null }), { logger: memoryLogger() });
  }

  /** One cycle, as `tvsync sync` runs it. */
  async cycle(settings: Record<string, string> = {}): Promise<CycleReport> {
    const app = await this.app(settings);
    try {
      return await app.runCycle({ trigger: 'cli' });
    } finally {
      this.count(app);
    }
  }

  count(app: App): void {
    this.cycles++;
    if (this.retries !== null) this.retries += app.teamViewer.stats.retries;
  }

  /** Cycles until TeamViewer matches Entra, at most `max`; the last report. */
  async settle(max: number, settings: Record<string, string> = {}): Promise<CycleReport | null> {
    let last: CycleReport | null = null;
    for (let i = 0; i < max && !this.measure().converged; i++) last = await this.cycle(settings);
    return last;
  }

  measure(truth: EmulatedTenant = this.w.tenant): Measure {
    const entitledIds = expectedInScope(truth);
    const entitled = new Map(truth.users.filter((u) => entitledIds.has(u.id)).map((u) => [lower(u.userPrincipalName), u]));
    const tv = this.w.teamViewer.users();
    const problems: string[] = [];
    const byName = new Map<string, typeof tv>();
    for (const u of tv) byName.set(lower(u.userName), [...(byName.get(lower(u.userName)) ?? []), u]);
    const duplicates = [...byName.values()].reduce((sum, same) => sum + same.length - 1, 0);
    for (const [upn, user] of entitled) {
      const found = byName.get(upn) ?? [];
      if (found.length === 0) problems.push(`${upn} missing`);
      else if (!found[0].active) problems.push(`${upn} inactive`);
      else if (found[0].displayName !== user.displayName) problems.push(`${upn} named "${found[0].displayName}", not "${user.displayName}"`);
    }
    for (const u of tv) if (u.createdBy === 'scim' && u.active && !entitled.has(lower(u.userName))) problems.push(`${u.userName} active but not entitled`);
    let untouchedChanged = 0;
    for (const [id, before] of this.unmanaged) {
      const now = tv.find((u) => u.id === id);
      if (!now || JSON.stringify(now) !== before) {
        untouchedChanged++;
        problems.push(`unmanaged ${id} changed`);
      }
    }
    if (duplicates > 0) problems.push(`${duplicates} duplicate(s)`);
    const wrongDeactivations = tv.filter((u) => !u.active && entitled.has(lower(u.userName))).length + untouchedChanged;
    const conflicts = this.w.teamViewer.requests.filter((r) => r.method === 'POST' && r.status === 409).length;
    return { converged: problems.length === 0, problems, duplicates, conflicts, wrongDeactivations };
  }

  /** Emails sent during the scenario, by what they were about. */
  emails(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of mail.messages.slice(this.mailFrom)) {
      const quarantined = /Quarantined: (\w+)/.exec(m.subject)?.[1];
      const about = quarantined ? `quarantine:${quarantined}`
        : /held back/.test(m.subject) ? 'staged'
        : /Recovered/.test(m.subject) ? 'recovered'
        : /successful cycle|has succeeded/.test(m.subject) ? 'no-success'
        : /reason is now/.test(m.subject) ? 'quarantine-reason-changed'
        : m.subject;
      out[about] = (out[about] ?? 0) + 1;
    }
    return out;
  }

  /** Adds the scenario's row to the report and returns the measures (TeamViewer compared with `truth`). */
  record(notes: string, truth?: EmulatedTenant): Measure {
    const m = this.measure(truth);
    const tv = this.w.teamViewer.requests;
    const graph = [...this.w.graph.requests, ...this.w.graph.batchRequests];
    const emails = this.emails();
    report.add({
      scenario: this.name,
      cycles: this.cycles,
      converged: m.converged,
      duplicates: m.duplicates,
      conflicts: m.conflicts,
      wrongDeactivations: m.wrongDeactivations,
      teamViewerWrites: this.w.teamViewer.writes(),
      retries: this.retries,
      faultAnswers: tv.filter((r) => r.status === 0 || r.status === 401 || r.status === 403 || r.status === 429 || r.status >= 500).length
        + graph.filter((r) => r.status === 0 || r.status === 429 || r.status >= 500).length,
      graphRequests: this.w.graph.requests.length,
      emails,
      durationMs: Date.now() - this.started,
      notes,
    });
    return m;
  }
}

/** The users Entra says should be active in TeamViewer, in tenant order. */
function entitledUsers(tenant: EmulatedTenant): EmulatedTenant['users'] {
  const ids = expectedInScope(tenant);
  return tenant.users.filter((u) => ids.has(u.id));
}

/** Renames `renames` entitled users and disables `disables` others: work for PATCH. */
function changeSome(tenant: EmulatedTenant, renames: number, disables: number): void {
  const users = entitledUsers(tenant);
  users.slice(0, renames).forEach((u, i) => (u.displayName = `Renamed Person ${i}`));
  users.slice(renames, renames + disables).forEach((u) => (u.accountEnabled = false));
}

const posts = (w: World) => w.teamViewer.requests.filter((r) => r.method === 'POST');
const expectQuiet = (s: Scenario) => expect(s.emails(), 'a fault that healed by itself sends no email').toEqual({});

describe('fault injection through real cycles', () => {
  it('1. a throttling storm on TeamViewer (20 requests/s, 200 users): one cycle converges, no duplicates', async () => {
    const w = await world(sampleTenant({ users: 200, groups: 4 }), { rateLimitPerSecond: 20 });
    const s = new Scenario('1 TV throttling storm (20/s, 200 users)', w);
    const app = await s.app();
    const first = await app.runCycle({ trigger: 'cli' });
    s.count(app);
    const throttled = app.teamViewer.stats.throttled;
    const m = s.record(`${throttled} answers were 403 rate_limit_reached; first cycle ${first.result}, ${first.counts.created} created`);

    expect(throttled, 'the storm really throttled').toBeGreaterThan(10);
    expect(first.result).toBe('succeeded');
    expect(first.counts.failed).toBe(0);
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
    expectQuiet(s);
  });

  it('2. 403 rate_limit_reached and 429 Retry-After bursts on POST and PATCH: converged, no duplicates', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }));
    const s = new Scenario('2 TV 403 rate limit + 429 bursts', w);
    w.teamViewer.inject({ kind: 'rateLimit', times: 3, method: 'POST' });
    w.teamViewer.inject({ kind: 'status429', times: 2, method: 'POST', retryAfterSeconds: 1 });
    w.teamViewer.inject({ kind: 'rateLimit', times: 2, method: 'POST', retryAfterSeconds: 1 });
    const created = await s.cycle();
    changeSome(w.tenant, 8, 3);
    w.teamViewer.inject({ kind: 'rateLimit', times: 3, method: 'PATCH' });
    w.teamViewer.inject({ kind: 'status429', times: 2, method: 'PATCH', retryAfterSeconds: 1 });
    const updated = await s.cycle();
    await s.settle(2);
    const throttledAnswers = w.teamViewer.requests.filter((r) => r.status === 403 || r.status === 429).length;
    const m = s.record(`${throttledAnswers} throttled answers (7 on POST, 5 on PATCH); cycles: ${created.result}, ${updated.result}`);

    expect(throttledAnswers).toBe(12);
    expect(s.retries).toBeGreaterThanOrEqual(12);
    expect(created.counts.failed + updated.counts.failed, 'a few throttled answers never fail a user').toBe(0);
    expect(updated.counts).toMatchObject({ updated: 8, disabled: 3 });
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
    expectQuiet(s);
  });

  it('3. a Graph 429 storm (Retry-After on pages and inside $batch, plus a 503 and a reset): the cycle waits, succeeds, deactivates nobody', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }));
    const s = new Scenario('3 Graph 429 storm', w);
    await s.cycle();
    // A change, so the next cycle reads everything; then throttling on every kind of read.
    changeSome(w.tenant, 1, 0);
    w.graph.resetRequests();
    const storm = [
      { pathIncludes: 'appRoleAssignedTo', afterMatches: 1 }, // a later page of the assignments
      { pathIncludes: '/users/delta' }, // the delta round
      { pathIncludes: '/groups/delta' }, // inside $batch
      { pathIncludes: '/members/microsoft.graph.user' }, // group members, inside $batch
      { pathIncludes: `/v1.0/groups/${groupId(2)}/members` }, // a later page of a group, top level
      { pathIncludes: "$filter=id in (" }, // direct users by id, inside $batch
    ];
    for (const f of storm) w.graph.inject({ kind: 'throttle', times: 1, retryAfterSeconds: 1, ...f });
    // And, in the same read, a 503 and a dropped connection on later pages of the assignments.
    w.graph.inject({ kind: 'status', status: 503, retryAfterSeconds: 1, times: 1, pathIncludes: 'appRoleAssignedTo', afterMatches: 3 });
    w.graph.inject({ kind: 'reset', times: 1, pathIncludes: 'appRoleAssignedTo', afterMatches: 5 });
    const started = Date.now();
    const run = await s.cycle();
    const waited = Date.now() - started;
    const throttled = [...w.graph.requests, ...w.graph.batchRequests].filter((r) => r.status === 429).length;
    const otherFaults = w.graph.requests.filter((r) => r.status === 503 || r.status === 0).length;
    const m = s.record(`${throttled} Graph 429s (${w.graph.batchRequests.filter((r) => r.status === 429).length} inside $batch), ${otherFaults} other faults (503, reset); the throttled cycle took ${(waited / 1000).toFixed(1)} s, result ${run.result}`);

    expect(throttled, 'every injected throttle fired').toBe(storm.length);
    expect(otherFaults).toBe(2);
    expect(run.result).toBe('succeeded');
    expect(run.counts).toMatchObject({ updated: 1, disabled: 0, staged: 0, failed: 0 });
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts).toBe(0);
    expect(m.wrongDeactivations).toBe(0);
    expectQuiet(s);
  });

  it('4. TeamViewer 5xx bursts on POST and PATCH, and creates that land but lose their answer: no duplicates', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }));
    const s = new Scenario('4 TV 5xx bursts + lost answers', w);
    for (const status of [500, 502, 503]) w.teamViewer.inject({ kind: 'status', status, times: 2, method: 'POST' });
    // The user is created, then the answer is lost: a 500, or the connection dropped.
    w.teamViewer.inject({ kind: 'status', status: 500, times: 2, method: 'POST', applyFirst: true });
    w.teamViewer.inject({ kind: 'reset', times: 2, method: 'POST', applyFirst: true });
    const created = await s.cycle();
    changeSome(w.tenant, 8, 2);
    for (const status of [500, 502, 503]) w.teamViewer.inject({ kind: 'status', status, times: 2, method: 'PATCH' });
    w.teamViewer.inject({ kind: 'status', status: 500, times: 1, method: 'PATCH', applyFirst: true });
    const updated = await s.cycle();
    const extra = await s.settle(2);
    const lookups = w.teamViewer.requests.filter((r) => r.method === 'GET' && r.path.includes('filter=userName')).length;
    const m = s.record(`${posts(w).length} POSTs, ${lookups} userName look-ups, ${created.counts.linked} creates relinked after a lost answer; cycles: ${created.result}, ${updated.result}${extra ? `, ${extra.result}` : ''}`);

    expect(w.teamViewer.requests.filter((r) => r.status >= 500 || r.status === 0).length, 'every injected fault fired').toBe(17);
    // A create whose answer was lost is looked up, and the user it made is linked, never made twice.
    expect(created.counts.linked).toBeGreaterThanOrEqual(2);
    expect(lookups).toBeGreaterThanOrEqual(2);
    // Only a 500 after the write landed may be retried blindly (TeamViewer then answers 409); a
    // dropped connection on a create is looked up first.
    expect(m.conflicts).toBeLessThanOrEqual(2);
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.wrongDeactivations).toBe(0);
    expectQuiet(s);
  });

  it('5. dropped connections (in place of hung requests) on POST and PATCH: retried or escrowed, then converged', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }));
    const s = new Scenario('5 TV connection resets (POST, PATCH)', w);
    w.teamViewer.inject({ kind: 'reset', times: 3, method: 'POST' });
    const created = await s.cycle();
    changeSome(w.tenant, 6, 2);
    w.teamViewer.inject({ kind: 'reset', times: 3, method: 'PATCH' });
    w.teamViewer.inject({ kind: 'reset', times: 1, method: 'PATCH', applyFirst: true });
    const updated = await s.cycle();
    const extra = await s.settle(2);
    const resets = w.teamViewer.requests.filter((r) => r.status === 0).length;
    const m = s.record(`${resets} dropped connections; ${created.counts.failed} create(s) failed and were escrowed, then made by a later cycle; cycles: ${created.result}, ${updated.result}${extra ? `, ${extra.result}` : ''}`);

    expect(resets).toBe(7);
    // A create that got no answer and is not found is failed (escrowed), not sent again blindly.
    expect(created.counts.failed).toBe(3);
    expect(updated.counts.failed, 'a PATCH is retried at once: it is idempotent').toBe(0);
    expect(s.cycles).toBeLessThanOrEqual(4);
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
    expectQuiet(s);
  });

  it('6. the process killed (kill -9) mid-cycle, then resumed: nothing duplicated, nothing missing', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }), { latencyMs: 40 });
    const s = new Scenario('6 kill -9 mid-cycle, resumed (CLI)', w);
    s.retries = null;
    const scim = () => w.teamViewer.users().filter((u) => u.createdBy === 'scim').length;
    const killed = await runCli(['sync'], w.env, {
      onStart: (child) => {
        const poll = setInterval(() => {
          if (scim() >= 15) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 5);
        child.on('close', () => clearInterval(poll));
      },
    });
    s.cycles++;
    const atKill = scim();
    await new Promise((resolve) => setTimeout(resolve, 100)); // writes in flight land after the kill
    const landed = scim();
    await expireLease(w.env); // the minute after which a dead holder's lease is free
    const resumed = await runCli(['sync', '--json'], w.env);
    s.cycles++;
    const out = JSON.parse(resumed.stdout) as CycleReport;
    const m = s.record(`killed after ${atKill} creates (${landed} landed incl. in-flight); the resumed cycle created ${out.counts.created}, relinked ${out.counts.linked}`);

    expect(killed.signal).toBe('SIGKILL');
    expect(landed).toBeLessThan(entitledUsers(w.tenant).length);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(out.result).toBe('succeeded');
    expect(out.counts.created, 'only the users that did not land are created').toBe(entitledUsers(w.tenant).length - landed);
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
  });

  // The resumed cycle holds the lease, so it closes the killed cycle's `running` record at once
  // (it used to wait for the heartbeat to go stale, showing a ghost cycle for 2 minutes).
  it('6b. after a kill -9 and a resumed cycle that finished, status shows no cycle in progress', async () => {
    const w = await world(sampleTenant({ users: 30, groups: 2 }), { latencyMs: 40 });
    const killed = await runCli(['sync'], w.env, {
      onStart: (child) => {
        const poll = setInterval(() => {
          if (w.teamViewer.users().filter((u) => u.createdBy === 'scim').length >= 5) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 5);
        child.on('close', () => clearInterval(poll));
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    await expireLease(w.env); // the minute after which a dead holder's lease is free
    expect((await runCli(['sync'], w.env)).code).toBe(0);
    const status = await (await new Scenario('6b', w).app()).status();
    expect(status.lastCycle?.result).toBe('succeeded');
    expect(status.currentCycle).toBeNull();
  });

  it('7. two runs started at once (--wait 0): exactly one runs, the other exits 1 saying so; no duplicates', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }), { latencyMs: 50 });
    const s = new Scenario('7 two CLI runs at once', w);
    s.retries = null;
    const runs: CliRun[] = await Promise.all([runCli(['sync', '--wait', '0', '--json'], w.env), runCli(['sync', '--wait', '0', '--json'], w.env)]);
    const ran = runs.filter((r) => r.code === 0);
    const refused = runs.filter((r) => r.code !== 0);
    s.cycles += ran.length;
    const status = await (await s.app()).status();
    const m = s.record(`exit codes ${runs.map((r) => r.code).join(' and ')}; ${status.recentCycles.length} cycle recorded; ${posts(w).length} POSTs for ${entitledUsers(w.tenant).length} users`);

    expect(ran, runs.map((r) => r.stderr).join('\n')).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0].code).toBe(1);
    expect(refused[0].stderr).toMatch(/another cycle is running/);
    expect(refused[0].stdout).toBe('');
    expect(status.recentCycles).toHaveLength(1);
    expect(posts(w)).toHaveLength(entitledUsers(w.tenant).length);
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
  });

  it('8. the TeamViewer token revoked mid-cycle: the cycle stops writing, fails with TEAMVIEWER_UNAUTHORIZED, status says why; restored, the next cycle converges', async () => {
    const w = await world(sampleTenant({ users: 60, groups: 3 }), { latencyMs: 25 });
    const s = new Scenario('8 token revoked mid-cycle', w);
    const token = w.teamViewer.token;
    const app = await s.app();
    const concurrency = app.settings.teamViewerConcurrency * 2; // actions in flight at once (shared/app.ts)
    let mark = -1;
    let firstRejection = -1;
    const poll = setInterval(() => {
      if (mark < 0 && w.teamViewer.users().filter((u) => u.createdBy === 'scim').length >= 10) {
        w.teamViewer.setToken('revoked-by-an-admin-0000');
        mark = w.teamViewer.requests.length;
      }
      if (mark >= 0 && firstRejection < 0 && w.teamViewer.requests.some((r) => r.status === 401)) firstRejection = w.teamViewer.requests.length;
    }, 2);
    const failed = await app.runCycle({ trigger: 'cli' }).finally(() => clearInterval(poll));
    s.count(app);
    const after = w.teamViewer.requests.slice(mark);
    const startedAfter = after.filter((r) => WRITE_METHODS.has(r.method)).length;
    const rejected = w.teamViewer.requests.filter((r) => WRITE_METHODS.has(r.method) && r.status === 401).length;
    // Writes that reached TeamViewer after it had answered the first 401 (to within the 2 ms poll):
    // the ones already queued in the client's pool when the cycle stopped starting actions.
    const sentAfterFirst401 = firstRejection < 0 ? 0 : w.teamViewer.requests.slice(firstRejection).filter((r) => WRITE_METHODS.has(r.method)).length;
    const status = await app.status();
    const quarantinedEmails = s.emails();

    w.teamViewer.setToken(token);
    const recovered = await s.cycle();
    await s.settle(1);
    const after2 = await (await s.app()).status();
    const m = s.record(`revoked after ${w.teamViewer.requests.slice(0, mark).filter((r) => r.method === 'POST').length} POSTs; writes rejected with 401: ${rejected}, started after the revocation: ${startedAfter}, after the first 401 answer: ${sentAfterFirst401} (bound: ${concurrency} actions in flight); skipped: ${failed.actions.filter((a) => a.status === 'skipped').length}`);

    expect(mark).toBeGreaterThan(0);
    expect(failed.result).toBe('failed');
    expect(failed.error?.code).toBe('TEAMVIEWER_UNAUTHORIZED');
    expect(rejected).toBeGreaterThan(0);
    expect(rejected, 'only the writes in flight are sent after the first 401').toBeLessThanOrEqual(concurrency);
    expect(startedAfter).toBeLessThanOrEqual(concurrency);
    expect(failed.actions.filter((a) => a.status === 'skipped' && /not attempted/.test(a.reason ?? '')).length).toBeGreaterThan(0);
    expect(status.lastCycle?.error?.code).toBe('TEAMVIEWER_UNAUTHORIZED');
    expect(status.health).toBe('quarantined');
    expect(status.quarantine?.reason).toBe('Unauthorized');
    expect(JSON.stringify(status)).not.toContain(token);
    expect(quarantinedEmails).toEqual({ 'quarantine:Unauthorized': 1 });

    expect(recovered.result).toBe('succeeded');
    expect(after2.health).toBe('healthy');
    expect(after2.quarantine).toBeNull();
    expect(s.emails()).toEqual({ 'quarantine:Unauthorized': 1, recovered: 1 });
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
  });

  it('9. a Graph read that returns under half the users: deactivations staged (SuspiciousRead), none applied; restored, the next cycle un-stages and writes nothing', async () => {
    const w = await world(groupTenant(60, 3));
    const s = new Scenario('9 partial Graph read (33 of 60 missing)', w);
    const truth = structuredClone(w.tenant);
    expect((await s.cycle()).result).toBe('succeeded');
    // The read loses 11 of every 20 group members: 55% fewer users than the last good read.
    for (const g of w.tenant.groups) g.members = g.members.filter((_, i) => i % 2 === 1 && i !== 19);
    const missing = 60 - expectedInScope(w.tenant).size;
    const writesBefore = w.teamViewer.writes();
    const suspicious = await s.cycle();
    const writesDuring = w.teamViewer.writes() - writesBefore;
    const held = await (await s.app()).status();
    const during = s.measure(truth);

    w.tenant.groups = structuredClone(truth.groups);
    const writesBeforeRestore = w.teamViewer.writes();
    const restored = await s.cycle();
    const writesAfterRestore = w.teamViewer.writes() - writesBeforeRestore;
    const cleared = await (await s.app()).status();
    const m = s.record(`${missing} users missing from the read: ${suspicious.counts.staged} staged, ${suspicious.counts.disabled} disabled, ${writesDuring} TV writes; restored: ${writesAfterRestore} TV writes`, truth);

    expect(missing).toBe(33);
    expect(suspicious.counts).toMatchObject({ staged: missing, disabled: 0 });
    expect(writesDuring).toBe(0);
    expect(during.wrongDeactivations).toBe(0);
    expect(held.health).toBe('quarantined');
    expect(held.stagedDeactivations).toMatchObject({ reason: 'SuspiciousRead', count: missing });

    expect(restored.result).toBe('succeeded');
    expect(restored.counts).toMatchObject({ staged: 0, disabled: 0, created: 0, updated: 0 });
    expect(writesAfterRestore).toBe(0);
    expect(cleared.health).toBe('healthy');
    expect(cleared.stagedDeactivations).toBeNull();
    expect(s.emails()).toEqual({ staged: 1, recovered: 1 });
    expect(m.problems).toEqual([]);
    expect(m.duplicates).toBe(0);
    expect(m.conflicts, 'no create was sent again for a user that had landed').toBe(0);
    expect(m.wrongDeactivations).toBe(0);
  });
});
