/**
 * A whole cycle never outlives CYCLE_TIME_BUDGET_SECONDS plus one timeout, through real cycles
 * (createApp from settings, Azurite, the Graph, identity and TeamViewer emulators): a read still
 * running when the budget runs out ends the cycle `failed` with CYCLE_BUDGET_EXCEEDED naming what
 * was being read and what to do, long before the per-request timeouts would; calls still in flight
 * one timeout after the budget are cut off and continued by the next heartbeat; a create cut off
 * this way leaves its intent, and the next cycle links the user it may have made — never twice.
 *
 * The bounds asserted are generous (a loaded machine), yet well below what the same cycle takes
 * without a deadline: these are hang tests, not speed tests.
 */
import { describe, expect, it } from 'vitest';
import { LEASE_KEY } from '../../shared/sync/lease';
import { inProcess } from '../support/in-process';
import { directTenant, personUpn, userId } from '../support/tenant';
import type { World } from '../support/world';

const harness = inProcess();
const upn = personUpn;


async function timed<T>(run: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = Date.now();
  const value = await run();
  return { value, seconds: (Date.now() - started) / 1000 };
}

const logins = (w: World) => w.teamViewer.users().filter((u) => u.createdBy === 'scim').map((u) => u.userName.toLowerCase()).sort();

describe('the cycle deadline', () => {
  it('When Graph never answers, then the cycle fails at the budget with CYCLE_BUDGET_EXCEEDED naming the read and the setting, not after three 30-second timeouts; the next cycle succeeds', async () => {
    const w = await harness.world({ tenant: directTenant(8) });
    const app = await harness.app(w, { CYCLE_TIME_BUDGET_SECONDS: '2' }); // GRAPH_TIMEOUT_SECONDS stays 30
    w.graph.inject({ kind: 'hang', times: 1_000 });

    const { value: report, seconds } = await timed(() => app.runCycle({ trigger: 'timer' }));

    // Without the deadline: 3 × 30 s + back-off = 96 s.
    expect(seconds).toBeLessThan(20);
    expect(report.result).toBe('failed');
    expect(report.error?.code).toBe('CYCLE_BUDGET_EXCEEDED');
    expect(report.error?.message).toBe("the cycle's time budget (CYCLE_TIME_BUDGET_SECONDS = 2 s) ran out while reading Entra ID (Microsoft Graph); nothing was planned or written. Reading everything must take well under the budget: raise CYCLE_TIME_BUDGET_SECONDS (it must stay below the host's function timeout)");
    expect(w.teamViewer.writes()).toBe(0);
    expect(await app.store.getMeta(LEASE_KEY)).toBeNull();
    const status = await app.status();
    expect(status.lastCycle?.error?.code).toBe('CYCLE_BUDGET_EXCEEDED');
    expect(status.quarantine).toBeNull();

    w.graph.clearFaults();
    expect((await app.runCycle({ trigger: 'timer' })).result).toBe('succeeded');
  });

  it('When TeamViewer\'s user listing takes longer than the budget, then the cycle fails naming TeamViewer and nothing is written', async () => {
    const w = await harness.world({ tenant: directTenant(8), teamViewer: { latencyMs: 4_000 } });
    const app = await harness.app(w, { CYCLE_TIME_BUDGET_SECONDS: '2' });

    const { value: report, seconds } = await timed(() => app.runCycle({ trigger: 'timer' }));

    expect(seconds).toBeLessThan(15);
    expect(report).toMatchObject({ result: 'failed', error: { code: 'CYCLE_BUDGET_EXCEEDED' } });
    expect(report.error?.message).toMatch(/ran out while reading TeamViewer's users and tvsync's links \(Table Storage\); nothing was planned or written/);
    expect(w.teamViewer.writes()).toBe(0);
    expect(await app.store.listLinks()).toEqual([]);
  });

  it('When TeamViewer stops answering updates, then the calls in flight are cut one timeout after the budget, not after three timeouts, and the next heartbeat finishes the work', async () => {
    const w = await harness.world({ tenant: directTenant(10) });
    const setup = await harness.app(w);
    expect((await setup.runCycle({ trigger: 'cli' })).counts.created).toBe(10);
    for (const n of [2, 3, 4]) w.graph.tenant.users[n - 1]!.displayName = `Renamed ${n}`;
    w.teamViewer.inject({ kind: 'hang', times: 1_000, method: 'PATCH' });
    const app = await harness.app(w, { CYCLE_TIME_BUDGET_SECONDS: '1', TEAMVIEWER_TIMEOUT_SECONDS: '5' });

    const { value: report, seconds } = await timed(() => app.runCycle({ trigger: 'timer' }));

    // Cut at 1 s + 5 s; without the deadline each PATCH would hang 3 × 5 s plus back-off.
    expect(seconds).toBeLessThan(12);
    expect(report.counts).toMatchObject({ updated: 0, failed: 0, skipped: 3 });
    for (const a of report.actions.filter((x) => x.kind === 'update')) {
      expect(a).toMatchObject({ status: 'skipped', reason: "not finished: cut off at the cycle's deadline: the time budget (1 s) plus one request timeout (5 s); the next heartbeat continues" });
    }
    const status = await app.status();
    expect(status.currentCycle?.phase).toMatch(/continues at the next heartbeat/);
    expect(status.escrows.count).toBe(0);

    w.teamViewer.clearFaults();
    const next = await app.beat('timer');
    expect(next, 'a cut cycle is continued at once').not.toBeNull();
    expect(next!.counts).toMatchObject({ updated: 3 });
    expect(w.teamViewer.users().filter((u) => u.displayName.startsWith('Renamed')).length).toBe(3);
  });

  it('When a create is still waiting for TeamViewer at the deadline, then it is cut off, its intent stays, and the next cycle links the user it made instead of creating a second one', async () => {
    const w = await harness.world({ tenant: directTenant(2) });
    // Both creates land in TeamViewer but their answers never come; one request at a time, so the
    // second create is still queued behind the first when the deadline passes.
    w.teamViewer.inject({ kind: 'hang', times: 2, method: 'POST', applyFirst: true });
    const app = await harness.app(w, { CYCLE_TIME_BUDGET_SECONDS: '1', TEAMVIEWER_TIMEOUT_SECONDS: '3', TEAMVIEWER_CONCURRENCY: '1' });

    const { value: report, seconds } = await timed(() => app.runCycle({ trigger: 'timer' }));

    expect(seconds).toBeLessThan(12); // budget 1 s + timeout 3 s, with room
    expect(report.counts).toMatchObject({ created: 0, failed: 0 });
    const cut = report.actions.filter((a) => a.reason?.startsWith("not finished: cut off at the cycle's deadline"));
    expect(cut.length).toBeGreaterThanOrEqual(1);
    // Every create that did not finish left its intent: the link names the user and the login, no TeamViewer id.
    const links = await app.store.listLinks();
    for (const a of cut) expect(links.find((l) => l.entraId === a.entraId)).toMatchObject({ pending: 'create', teamViewerId: null });
    expect(logins(w)).toEqual([upn(1), upn(2)]);

    w.teamViewer.clearFaults();
    const next = await app.beat('timer');
    expect(next?.counts.created).toBe(0);
    expect(logins(w)).toEqual([upn(1), upn(2)]);
    const after = await app.store.listLinks();
    expect(after.map((l) => [l.entraId, l.pending ?? null, l.teamViewerId !== null])).toEqual([[userId(1), null, true], [userId(2), null, true]]);
  });
});
