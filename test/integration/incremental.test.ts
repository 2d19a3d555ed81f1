/**
 * Incremental cycles through Graph delta queries, through real cycles against the emulators:
 * a quiet cycle costs a handful of Graph requests and no TeamViewer write whatever the tenant
 * size; any change leads to a full read; an expired delta token or a new configuration is a new
 * initial cycle; a delta cycle ends where a fresh initial cycle on the same tenant ends.
 */
import { describe, expect, it } from 'vitest';
import { sampleTenant, userId } from '../support/tenant';
import { inProcess } from '../support/in-process';
import type { World } from '../support/world';

const harness = inProcess();
const { cycle } = harness;

/** Graph's real page size for assignments ($top up to 999) unless a test wants small pages. */
const world = (users: number, graphPageSize = 999): Promise<World> => harness.world({ tenant: sampleTenant({ users, groups: 4 }), graphPageSize });

/** What TeamViewer holds, comparable across two worlds. */
const tvState = (w: World) => w.teamViewer.users().filter((u) => u.createdBy === 'scim').map((u) => `${u.userName}|${u.displayName}|${u.active}`).sort();

describe('incremental cycles', () => {
  it('When nothing changed, then a cycle costs the same handful of Graph requests at 60 and at 600 users, and writes nothing', async () => {
    const costs: number[] = [];
    for (const size of [60, 600]) {
      const w = await world(size);
      // (The assignment list has no delta query: one request per 999 assignments.)
      expect((await cycle(w)).kind).toBe('initial');
      w.graph.resetRequests();
      w.teamViewer.resetRequests();
      const quiet = await cycle(w);
      expect(quiet).toMatchObject({ kind: 'incremental', result: 'succeeded' });
      expect(w.teamViewer.writes()).toBe(0);
      expect(w.teamViewer.requests.length).toBeLessThanOrEqual(2); // the token check, nothing else
      costs.push(w.graph.requests.length);
    }
    expect(costs[0]).toBeLessThanOrEqual(4);
    expect(costs[1]).toBe(costs[0]);
  });

  it('When a user changes, then the next cycle sees it and applies exactly that change', async () => {
    const w = await world(60);
    await cycle(w);
    await cycle(w);
    const target = w.teamViewer.users().find((u) => u.createdBy === 'scim')!;
    const entra = w.tenant.users.find((u) => u.userPrincipalName.toLowerCase() === target.userName.toLowerCase())!;
    entra.displayName = 'Changed In Entra';
    w.teamViewer.resetRequests();
    const report = await cycle(w);
    expect(report.kind).toBe('incremental');
    expect(report.counts).toMatchObject({ updated: 1, created: 0, disabled: 0 });
    expect(w.teamViewer.writes()).toBe(1);
    expect(w.teamViewer.users().find((u) => u.id === target.id)?.displayName).toBe('Changed In Entra');
  });

  it('When group membership or assignments change, then the next cycle sees it', async () => {
    const w = await world(60);
    await cycle(w);
    const group = w.tenant.groups[0];
    const leaving = group.members.find((m) => w.tenant.users.some((u) => u.id === m && u.accountEnabled))!;
    group.members = group.members.filter((m) => m !== leaving);
    expect((await cycle(w)).counts.disabled).toBe(1);
    w.tenant.users.push({ id: userId(7000), userPrincipalName: 'late.joiner@contoso.example', displayName: 'Late Joiner', givenName: 'Late', surname: 'Joiner', mail: 'late.joiner@contoso.example', accountEnabled: true });
    w.tenant.assignments.push({ id: 'late', resourceId: w.env.ENTRA_SERVICE_PRINCIPAL_ID, principalId: userId(7000), principalType: 'User', appRoleId: '00000000-0000-0000-0000-000000000000' });
    expect((await cycle(w)).counts.created).toBe(1);
  });

  it('When the delta token has expired, then the cycle is recorded as a new initial cycle and still converges', async () => {
    const w = await world(60);
    await cycle(w);
    w.graph.expireDeltaTokens();
    w.tenant.users[0].displayName = 'After Expiry';
    const report = await cycle(w);
    expect(report.kind).toBe('initial');
    expect(report.result).toBe('succeeded');
    expect((await cycle(w)).kind).toBe('incremental');
  });

  it('When the last cycle left failures, then the next cycle reads everything again (no shortcut past a failure)', async () => {
    const w = await world(60);
    w.teamViewer.inject({ kind: 'status', status: 400, times: 1, method: 'POST' });
    expect((await cycle(w)).result).toBe('partial');
    const retry = await cycle(w);
    expect(retry.counts.created).toBe(1);
    expect(retry.result).toBe('succeeded');
  });

  it('When changes reach one tenant through delta cycles and its twin through one initial cycle, then TeamViewer ends the same', async () => {
    const a = await world(120, 20);
    const b = await world(120, 20);
    await cycle(a);
    await cycle(a);
    const mutate = (w: World) => {
      w.tenant.users[3].displayName = 'Renamed Person';
      w.tenant.users[4].accountEnabled = false;
      w.tenant.users[5].userPrincipalName = 'new.upn@contoso.example';
      w.tenant.groups[1].members = w.tenant.groups[1].members.slice(2);
      w.tenant.assignments = w.tenant.assignments.filter((x) => x.principalId !== w.tenant.users[8].id);
      w.tenant.users.push({ id: userId(8000), userPrincipalName: 'hire@contoso.example', displayName: 'New Hire', givenName: 'New', surname: 'Hire', mail: 'hire@contoso.example', accountEnabled: true });
      w.tenant.groups[2].members.push(userId(8000));
    };
    mutate(a);
    expect((await cycle(a)).kind).toBe('incremental');
    mutate(b);
    expect((await cycle(b)).kind).toBe('initial');
    const activeOnly = (state: string[]) => state.filter((line) => line.endsWith('|true'));
    expect(activeOnly(tvState(a))).toEqual(activeOnly(tvState(b)));
  });

  it('When a cycle reaches its time budget, then it stops, status shows it in progress, and the next beats continue it to the end', async () => {
    const w = await harness.world({ tenant: sampleTenant({ users: 60, groups: 2 }), teamViewer: { latencyMs: 60 } });
    const app = await harness.app(w, { CYCLE_TIME_BUDGET_SECONDS: '1', TEAMVIEWER_CONCURRENCY: '1' });
    const first = await app.beat('timer');
    expect(first?.counts.created).toBeGreaterThan(0);
    expect(first?.actions.some((a) => a.reason?.includes('time budget'))).toBe(true);
    const status = await app.status();
    expect(status.currentCycle).toMatchObject({ id: first!.cycleId, phase: expect.stringMatching(/continues at the next heartbeat/) });
    let beats = 1;
    for (; beats < 20; beats++) {
      const next = await app.beat('timer');
      expect(next, 'a continuation runs at once, not after the interval').not.toBeNull();
      expect(next!.kind).toBe('initial');
      if (!next!.actions.some((a) => a.reason?.includes('time budget'))) break;
    }
    expect(beats).toBeGreaterThan(1);
    const made = w.teamViewer.users().filter((u) => u.createdBy === 'scim').map((u) => u.userName.toLowerCase());
    expect(new Set(made).size).toBe(made.length);
    expect(made.length).toBe(w.tenant.users.filter((u) => u.accountEnabled && w.tenant.assignments.some((a) => a.principalId === u.id || w.tenant.groups.some((g) => g.id === a.principalId && g.members.includes(u.id)))).length);
    expect((await app.status()).currentCycle).toBeNull();
    expect(await app.beat('timer')).toBeNull();
  });
});
