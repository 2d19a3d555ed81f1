/**
 * Changes made in TeamViewer by hand are put back within one interval, through real cycles
 * (createApp from settings, Azurite, the Graph, identity and TeamViewer emulators): a leaver
 * re-enabled in TeamViewer's console is deactivated again by the next cycle although nothing
 * changed in Entra, a display name edited by hand is put back, each repair is logged with its
 * reason, counted as drift and (for a leaver) named in status; DRIFT_CHECK=off leaves hand edits
 * alone; repairs that deactivate go through the accidental-deletion guard; a quiet cycle without
 * drift stays quiet.
 */
import { describe, expect, it } from 'vitest';
import type { App } from '../../shared/app';
import { inProcess } from '../support/in-process';
import { directTenant, personUpn, userId } from '../support/tenant';
import type { World } from '../support/world';

const harness = inProcess();
const upn = personUpn;


const world = (users = 20) => harness.world({ tenant: directTenant(users) });
const unassign = (w: World, ...numbers: number[]) => {
  w.graph.tenant.assignments = w.graph.tenant.assignments.filter((a) => !numbers.some((n) => a.principalId === userId(n)));
};
const tvUser = (w: World, n: number) => w.teamViewer.users().find((u) => u.userName.toLowerCase() === upn(n))!;
const writes = (w: World) => w.teamViewer.requests.filter((r) => r.method !== 'GET');

/** A world whose users 1..n are provisioned, and `leavers` of them deactivated by a cycle after leaving. */
async function provisioned(users: number, settings: Record<string, string> = {}, leavers: number[] = []): Promise<{ w: World; app: App }> {
  const w = await world(users);
  const app = await harness.app(w, settings);
  expect((await app.runCycle({ trigger: 'cli' })).counts.created).toBe(users);
  if (leavers.length > 0) {
    unassign(w, ...leavers);
    expect((await app.runCycle({ trigger: 'cli' })).counts.disabled).toBe(leavers.length);
  }
  // A quiet cycle: nothing left to do, and nothing found.
  expect((await app.runCycle({ trigger: 'cli' })).counts).toMatchObject({ created: 0, updated: 0, disabled: 0, drift: 0 });
  w.teamViewer.resetRequests();
  w.graph.resetRequests();
  return { w, app };
}

describe('changes made in TeamViewer by hand', () => {
  it('When a leaver is re-enabled by hand and nothing changes in Entra, then the next cycle deactivates them again, logs why, counts drift 1 and status names them', async () => {
    const { w, app } = await provisioned(20, {}, [5]);
    const leaver = tvUser(w, 5);
    expect(leaver.active).toBe(false);
    w.teamViewer.editByHand(leaver.id, { active: true });

    const report = await app.runCycle({ trigger: 'timer' });

    expect(report).toMatchObject({ kind: 'incremental', result: 'succeeded' });
    expect(report.counts).toMatchObject({ disabled: 1, drift: 1, created: 0, updated: 0 });
    expect(tvUser(w, 5).active).toBe(false);
    expect(writes(w)).toEqual([expect.objectContaining({ method: 'PATCH', path: `/scim/v2/Users/${leaver.id}` })]);
    const repair = report.actions.find((a) => a.entraId === userId(5))!;
    expect(repair).toMatchObject({ kind: 'disable', status: 'success', drift: true, teamViewerId: leaver.id });

    const { records } = await app.logs.query({ cycleId: report.cycleId });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ action: 'disable', status: 'success', userPrincipalName: upn(5), teamViewerId: leaver.id, modifiedProperties: [{ name: 'active', old: true, new: false }] });
    expect(records[0]!.reason).toMatch(/^changed in TeamViewer by hand \(active\): put back — no longer assigned/);

    const status = await app.status();
    expect(status.lastCycle?.counts.drift).toBe(1);
    expect(status.reenabledLeavers).toEqual([{ entraId: userId(5), userPrincipalName: upn(5), teamViewerId: leaver.id, foundAt: report.startedAt, cycleId: report.cycleId, outcome: 'deactivated again' }]);

    // Put back means put back: the cycle after is quiet again.
    w.teamViewer.resetRequests();
    const after = await app.runCycle({ trigger: 'timer' });
    expect(after.counts).toMatchObject({ disabled: 0, drift: 0 });
    expect(writes(w)).toEqual([]);
  });

  it('When a display name is edited by hand, then the next cycle puts it back and counts drift 1', async () => {
    const { w, app } = await provisioned(12);
    const user = tvUser(w, 3);
    w.teamViewer.editByHand(user.id, { displayName: 'Edited By Hand' });

    const report = await app.runCycle({ trigger: 'timer' });

    expect(report).toMatchObject({ kind: 'incremental', result: 'succeeded' });
    expect(report.counts).toMatchObject({ updated: 1, drift: 1 });
    expect(tvUser(w, 3).displayName).toBe('Person 3');
    const { records } = await app.logs.query({ cycleId: report.cycleId });
    expect(records).toEqual([expect.objectContaining({ action: 'update', modifiedProperties: [{ name: 'displayName', old: 'Edited By Hand', new: 'Person 3' }], reason: 'changed in TeamViewer by hand (displayName): put back' })]);
    // A display name is drift, not a leaver: status does not list it as one.
    expect((await app.status()).reenabledLeavers).toEqual([]);
  });

  it('When a change comes from Entra while TeamViewer was also edited by hand, then only the hand edit counts as drift', async () => {
    const { w, app } = await provisioned(12);
    w.teamViewer.editByHand(tvUser(w, 2).id, { displayName: 'Hand Made' });
    w.graph.tenant.users[3]!.displayName = 'Renamed In Entra';

    const report = await app.runCycle({ trigger: 'timer' });

    expect(report.counts).toMatchObject({ updated: 2, drift: 1 });
    expect(report.actions.find((a) => a.entraId === userId(4))).not.toHaveProperty('drift');
    expect(tvUser(w, 2).displayName).toBe('Person 2');
    expect(tvUser(w, 4).displayName).toBe('Renamed In Entra');
  });

  it('When nothing changed anywhere, then a quiet cycle lists TeamViewer once, reads the links and writes nothing', async () => {
    const { w, app } = await provisioned(30);
    const report = await app.runCycle({ trigger: 'timer' });
    expect(report).toMatchObject({ kind: 'incremental', result: 'succeeded' });
    expect(report.counts.unchanged).toBe(30);
    expect(w.teamViewer.requests.map((r) => `${r.method} ${new URL(r.path, 'http://x').pathname}`)).toEqual(['GET /scim/v2/Users']);
    expect(w.graph.requests.length).toBeLessThanOrEqual(4);
  });

  it('When a managed user was deleted in TeamViewer, then the next cycle creates them again, as a full read always did', async () => {
    const { w, app } = await provisioned(10);
    const gone = tvUser(w, 7);
    w.teamViewer.remove(gone.id);

    const report = await app.runCycle({ trigger: 'timer' });

    expect(report.counts).toMatchObject({ created: 1, drift: 1 });
    const again = tvUser(w, 7);
    expect(again.id).not.toBe(gone.id);
    expect(report.actions.find((a) => a.entraId === userId(7))?.reason).toBe(`changed in TeamViewer by hand: TeamViewer user ${gone.id} was deleted; created again`);
  });

  it('When DRIFT_CHECK=off, then a re-enabled leaver and an edited name are left as they are, in quiet cycles and in full reads alike', async () => {
    const { w, app } = await provisioned(20, { DRIFT_CHECK: 'off' }, [5]);
    w.teamViewer.editByHand(tvUser(w, 5).id, { active: true });
    w.teamViewer.editByHand(tvUser(w, 6).id, { displayName: 'Kept As Edited' });

    const quiet = await app.runCycle({ trigger: 'timer' });
    expect(quiet.counts).toMatchObject({ disabled: 0, updated: 0, drift: 0 });
    expect(w.teamViewer.requests.map((r) => r.method)).toEqual(['GET']); // the token check only

    // A change in Entra makes the next cycle a full read: the hand edits still stay.
    w.graph.tenant.users[9]!.displayName = 'Renamed In Entra';
    const full = await app.runCycle({ trigger: 'timer' });
    expect(full.counts).toMatchObject({ updated: 1, disabled: 0, drift: 0 });
    expect(tvUser(w, 5).active).toBe(true);
    expect(tvUser(w, 6).displayName).toBe('Kept As Edited');
    expect(full.actions.find((a) => a.entraId === userId(5))).toMatchObject({ kind: 'skip', status: 'skipped', reason: 'changed in TeamViewer by hand (active); left as it is (DRIFT_CHECK=off)' });
  });

  it('When DRIFT_CHECK=daily, then a quiet cycle only checks the token, and the daily full read puts the hand edit back', async () => {
    const { w, app } = await provisioned(12, { DRIFT_CHECK: 'daily' });
    w.teamViewer.editByHand(tvUser(w, 4).id, { displayName: 'Edited By Hand' });
    const quiet = await app.runCycle({ trigger: 'timer' });
    expect(quiet.counts.drift).toBe(0);
    expect(w.teamViewer.requests).toHaveLength(1);
    expect(tvUser(w, 4).displayName).toBe('Edited By Hand');

    // A day later the watermark says a full read is due.
    const row = await app.store.getMeta<{ lastFullReadAt: string }>('watermark');
    await app.store.putMeta('watermark', { ...row!.value, lastFullReadAt: new Date(Date.now() - 25 * 3_600_000).toISOString() }, row!.etag);
    const daily = await app.runCycle({ trigger: 'timer' });
    expect(daily.counts).toMatchObject({ updated: 1, drift: 1 });
    expect(tvUser(w, 4).displayName).toBe('Person 4');
  });

  it('When more re-enabled leavers are found than DEACTIVATION_THRESHOLD allows, then their deactivations are staged, status names them as held back, and allow-deactivations releases them', async () => {
    const { w, app } = await provisioned(30, { DEACTIVATION_THRESHOLD: '3' }, [2, 3, 4]);
    for (const n of [2, 3, 4]) w.teamViewer.editByHand(tvUser(w, n).id, { active: true });
    // One more leaver in Entra the same cycle: 4 deactivations, over the threshold of 3.
    unassign(w, 5);

    const held = await app.runCycle({ trigger: 'timer' });

    expect(held.counts).toMatchObject({ staged: 4, disabled: 0, drift: 0 });
    expect([2, 3, 4, 5].every((n) => tvUser(w, n).active)).toBe(true);
    const status = await app.status();
    expect(status.health).toBe('quarantined');
    expect(status.stagedDeactivations?.count).toBe(4);
    expect(status.reenabledLeavers.map((l) => [l.userPrincipalName, l.outcome])).toEqual([2, 3, 4].map((n) => [upn(n), 'held back by the accidental-deletion guard']));

    await app.allowDeactivations('it-admin');
    const released = await app.runCycle({ trigger: 'timer' });
    expect(released.counts).toMatchObject({ disabled: 4, drift: 3, staged: 0 });
    expect([2, 3, 4, 5].every((n) => !tvUser(w, n).active)).toBe(true);
  });

  it('When a hand edit is one the planner leaves alone, then it costs one full read, not one every cycle', async () => {
    // With SKIP_OUT_OF_SCOPE_DELETIONS a user who left scope stays active; someone deactivates them by hand.
    const { w, app } = await provisioned(12, { SKIP_OUT_OF_SCOPE_DELETIONS: 'true' });
    unassign(w, 8);
    expect((await app.runCycle({ trigger: 'timer' })).counts.disabled).toBe(0);
    await app.runCycle({ trigger: 'timer' });
    w.teamViewer.editByHand(tvUser(w, 8).id, { active: false });

    w.graph.resetRequests();
    const first = await app.runCycle({ trigger: 'timer' });
    const fullReadRequests = w.graph.requests.length;
    w.graph.resetRequests();
    const second = await app.runCycle({ trigger: 'timer' });

    expect(first.counts).toMatchObject({ enabled: 0, disabled: 0, drift: 0 });
    expect(second.counts).toMatchObject({ enabled: 0, disabled: 0, drift: 0 });
    expect(tvUser(w, 8).active).toBe(false);
    expect(w.graph.requests.length, 'the second cycle is quiet again').toBeLessThan(fullReadRequests);
  });
});
