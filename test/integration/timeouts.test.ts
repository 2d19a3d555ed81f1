/**
 * Nothing hangs a cycle: through real cycles (createApp from settings, Azurite, the Graph,
 * TeamViewer and managed-identity emulators, and the real `tvsync` bin), a target that accepts the
 * connection and never answers ends the cycle cleanly within the documented bound — result
 * `failed`, the error naming the target, the call and the timeout, the run lease released, status
 * saying so, no quarantine (a timeout is a transient outage) — and the next cycle, with the target
 * answering again, succeeds. A create whose answer never came is looked up, never sent twice.
 *
 * Timeouts come from the settings (GRAPH_TIMEOUT_SECONDS=1, TEAMVIEWER_TIMEOUT_SECONDS=1); Table
 * Storage, which has no setting, gets a one-second timeout through createApp's options. The bounds
 * asserted are generous: these are hang tests, not speed tests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { memoryLogger } from '../../shared/log';
import { devConnectionString } from '../../shared/state/target';
import { LEASE_KEY } from '../../shared/sync/lease';
import { inProcess } from '../support/in-process';
import { startStallProxy, type StallProxy } from '../support/stall-proxy';
import { sampleTenant } from '../support/tenant';
import { runCli, type World } from '../support/world';

const harness = inProcess();
const FAST = { GRAPH_TIMEOUT_SECONDS: '1', TEAMVIEWER_TIMEOUT_SECONDS: '1' };
/**
 * The documented bound at one second: 3 attempts × 1 s + Graph's back-off (2 s + 4 s) = 9 s
 * (TeamViewer's back-off is shorter). Asserted with room for a loaded machine; a hang lasts forever.
 */
const CYCLE_BOUND_MS = 30_000;

const proxies: StallProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

const world = (users = 12) => harness.world({ tenant: sampleTenant({ users, groups: 2 }) });

async function timedCycle(app: App) {
  const started = Date.now();
  const report = await app.runCycle({ trigger: 'cli' });
  return { report, ms: Date.now() - started };
}

/** The end state every failed cycle here must leave: lease free, status naming the error, no quarantine. */
async function expectCleanFailure(app: App, code: string): Promise<void> {
  expect(await app.store.getMeta(LEASE_KEY)).toBeNull();
  const status = await app.status();
  expect(status.health).toBe('degraded');
  expect(status.lastCycle).toMatchObject({ result: 'failed', error: { code } });
  expect(status.currentCycle).toBeNull();
  expect(status.quarantine).toBeNull();
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !check(); ) {
    if (Date.now() - started > 5_000) throw new Error(`still not true after 5 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** TeamViewer users per login: every tenant user that was created must be there exactly once. */
const loginsOf = (w: World) => w.teamViewer.users().filter((u) => u.createdBy === 'scim').map((u) => u.userName.toLowerCase());

describe('Microsoft Graph never answers', () => {
  it('When every Graph request hangs, then the cycle fails within the bound with GRAPH_TIMEOUT naming the call and the timeout, releases the lease, status shows it, and the next cycle succeeds', async () => {
    const w = await world();
    const app = await harness.app(w, FAST);
    expect((await app.runCycle({ trigger: 'cli' })).result).toBe('succeeded');
    w.graph.resetRequests();
    w.teamViewer.resetRequests();
    w.graph.inject({ kind: 'hang', times: 1_000 });

    const { report, ms } = await timedCycle(app);

    expect(ms).toBeLessThan(CYCLE_BOUND_MS);
    expect(report.result).toBe('failed');
    expect(report.error?.code).toBe('GRAPH_TIMEOUT');
    expect(report.error?.message).toMatch(/^Microsoft Graph did not answer GET \/v1\.0\/\S+ within 1 s \(3 attempts\) while reading /);
    expect(w.graph.requests.map((r) => r.status)).toEqual([0, 0, 0]);
    expect(w.teamViewer.writes()).toBe(0);
    await expectCleanFailure(app, 'GRAPH_TIMEOUT');
    await eventually(() => w.graph.hanging() === 0, 'every hung Graph connection was closed by the client');

    w.graph.clearFaults();
    expect((await app.runCycle({ trigger: 'cli' })).result).toBe('succeeded');
    expect((await app.status()).health).toBe('healthy');
  });

  it('When the managed identity never issues a token, then the cycle fails with GRAPH_TIMEOUT naming the token endpoint, not quarantined, and the next cycle succeeds', async () => {
    const w = await world(); // a new Graph port: MSAL has no token for it yet
    const app = await harness.app(w, FAST);
    w.identity.hang(3);
    const before = w.identity.requests.length;

    const { report, ms } = await timedCycle(app);

    expect(ms).toBeLessThan(CYCLE_BOUND_MS);
    expect(report.error?.code).toBe('GRAPH_TIMEOUT');
    expect(report.error?.message).toMatch(/^The managed identity's token endpoint did not answer the token request for Microsoft Graph within 1 s \(3 attempts\)/);
    expect(w.identity.requests.slice(before).map((r) => r.status)).toEqual([0, 0, 0]);
    expect(w.graph.requests).toEqual([]);
    await expectCleanFailure(app, 'GRAPH_TIMEOUT');

    expect((await app.runCycle({ trigger: 'cli' })).result).toBe('succeeded');
  });

  it('When `tvsync sync` meets a Graph that never answers, then it exits 1 within the bound saying so, and `tvsync status` shows the timeout', async () => {
    const w = await world();
    w.graph.inject({ kind: 'hang', times: 1_000 });
    const env = { ...w.env, ...FAST };
    const started = Date.now();
    const run = await runCli(['sync'], env, { timeoutMs: 90_000 });
    const ms = Date.now() - started;

    expect(run.signal).toBeNull();
    expect(run.code).toBe(1);
    expect(ms).toBeLessThan(CYCLE_BOUND_MS + 10_000); // plus the CLI's start-up
    expect(run.stdout).toMatch(/Result: failed — Microsoft Graph did not answer GET \/v1\.0\/\S+ within 1 s \(3 attempts\)/);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { health: string; lastCycle: { error: { code: string } }; quarantine: unknown };
    expect(status).toMatchObject({ health: 'degraded', lastCycle: { error: { code: 'GRAPH_TIMEOUT' } }, quarantine: null });
  });
});

describe('TeamViewer never answers', () => {
  it('When the user listing hangs, then the cycle fails with TEAMVIEWER_TIMEOUT naming the call, writes nothing, releases the lease, and the next cycle succeeds', async () => {
    const w = await world();
    const app = await harness.app(w, FAST);
    // Three hangs are all the client asks for: a fourth attempt would be answered (and the cycle succeed).
    w.teamViewer.inject({ kind: 'hang', times: 3, method: 'GET', pathIncludes: 'startIndex=' });

    const { report, ms } = await timedCycle(app);

    expect(ms).toBeLessThan(CYCLE_BOUND_MS);
    expect(report.result).toBe('failed');
    expect(report.error).toEqual({
      code: 'TEAMVIEWER_TIMEOUT',
      message: 'TeamViewer did not answer SCIM GET /Users within 1 s (3 attempts) while trying to list the users. This is usually temporary.',
    });
    expect(w.teamViewer.requests.filter((r) => r.path.includes('startIndex=')).map((r) => r.status)).toEqual([0, 0, 0]);
    expect(w.teamViewer.writes()).toBe(0);
    await expectCleanFailure(app, 'TEAMVIEWER_TIMEOUT');
    await eventually(() => w.teamViewer.hanging() === 0, 'every hung TeamViewer connection was closed by the client');

    const next = await app.runCycle({ trigger: 'cli' });
    expect(next.result).toBe('succeeded');
    expect(loginsOf(w)).toHaveLength(next.counts.created);
    expect(next.counts.created).toBeGreaterThan(0);
  });

  it('When a create lands but its answer never comes, then it is not sent again: the cycle looks the user up and links it, and nobody is created twice', async () => {
    const w = await world();
    const app = await harness.app(w, FAST);
    w.teamViewer.inject({ kind: 'hang', times: 1, method: 'POST', applyFirst: true });

    const { report, ms } = await timedCycle(app);

    expect(ms).toBeLessThan(CYCLE_BOUND_MS);
    expect(report.result).toBe('succeeded');
    expect(report.counts.linked).toBe(1);
    const posts = w.teamViewer.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(report.counts.created + 1);
    const logins = loginsOf(w);
    expect(new Set(logins).size).toBe(logins.length);
    expect(logins).toHaveLength(report.counts.created + 1);
  });

  it('When a create never gets an answer and did not land, then that user alone fails with TEAMVIEWER_TIMEOUT, and the next cycle creates them once', async () => {
    const w = await world();
    const app = await harness.app(w, FAST);
    w.teamViewer.inject({ kind: 'hang', times: 1, method: 'POST' });

    const { report, ms } = await timedCycle(app);

    expect(ms).toBeLessThan(CYCLE_BOUND_MS);
    expect(report.result).toBe('partial');
    const failed = report.actions.filter((a) => a.status === 'failure');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error?.code).toBe('TEAMVIEWER_TIMEOUT');
    expect(failed[0]!.error?.message).toMatch(/^TeamViewer did not answer SCIM POST \/Users within 1 s while trying to create user /);
    const status = await app.status();
    expect(status.recentFailures).toEqual([expect.objectContaining({ entraId: failed[0]!.entraId, code: 'TEAMVIEWER_TIMEOUT' })]);
    expect(status.quarantine).toBeNull();
    expect(loginsOf(w)).not.toContain(failed[0]!.userPrincipalName.toLowerCase());

    const next = await app.runCycle({ trigger: 'cli' });
    expect(next.result).toBe('succeeded');
    const logins = loginsOf(w);
    expect(logins.filter((l) => l === failed[0]!.userPrincipalName.toLowerCase())).toHaveLength(1);
    expect(new Set(logins).size).toBe(logins.length);
  });
});

describe('Table Storage never answers', () => {
  it('When the links table stalls, then the cycle fails with STATE_UNAVAILABLE naming the call and the timeout, releases the lease, and the next cycle succeeds', async () => {
    const w = await world();
    const azurite = new URL(/TableEndpoint=([^;]+)/.exec(w.env.AzureWebJobsStorage!)![1]!);
    const proxy = await startStallProxy(azurite.origin);
    proxies.push(proxy);
    const port = Number(new URL(proxy.url).port);
    process.env = { ...harness.savedEnv, ...w.env, ...FAST, AzureWebJobsStorage: devConnectionString(port) };
    const app = await createApp(loadSettings({ env: process.env, localSettingsDir: null }), {
      logger: memoryLogger(),
      stateTuning: { requestTimeoutMs: 1_000, retry: { maxRetries: 1, retryDelayInMs: 10, maxRetryDelayInMs: 20 } },
    });
    const links = `${w.env.STATE_TABLE_PREFIX}Links()`;
    proxy.stall({ mode: 'no-answer', times: 1, method: 'GET', pathIncludes: links });

    const { report, ms } = await timedCycle(app);

    expect(ms).toBeLessThan(CYCLE_BOUND_MS);
    expect(report.result).toBe('failed');
    expect(report.error?.code).toBe('STATE_UNAVAILABLE');
    expect(report.error?.message).toContain(`Table Storage at 127.0.0.1:${port} did not answer GET /devstoreaccount1/${links} within 1 s`);
    expect(w.teamViewer.writes()).toBe(0);
    await expectCleanFailure(app, 'STATE_UNAVAILABLE');
    await eventually(() => proxy.stalled() === 0, 'the stalled storage connection was closed by the client');

    expect((await app.runCycle({ trigger: 'cli' })).result).toBe('succeeded');
  });
});
