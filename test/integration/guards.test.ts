/**
 * The accidental-deletion guard cannot be bypassed: the four paths of issue 9 that used to
 * deactivate users no admin reviewed, each through real cycles (Azurite, the Graph, identity,
 * TeamViewer and ACS Email emulators), plus the run lease's holder identity.
 *
 * Every scenario ends with the same question: which TeamViewer users are inactive, and was each
 * of them shown to an admin who allowed it?
 */
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { memoryLogger } from '../../shared/log';
import { StateStore } from '../../shared/state/store';
import { LEASE_KEY, LeaseHeldError, type LeaseRecord } from '../../shared/sync/lease';
import { startAcsEmailEmulator, type AcsEmailEmulator } from '../emulators/acs-email';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { startAzurite } from '../support/azurite';
import { directTenant, personUpn, userId } from '../support/tenant';
import { runCli, startWorld, type World } from '../support/world';

let storage: Awaited<ReturnType<typeof startAzurite>>;
let identity: IdentityEmulator;
let mail: AcsEmailEmulator;
const worlds: World[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  [storage, identity, mail] = await Promise.all([startAzurite(), startIdentityEmulator(), startAcsEmailEmulator()]);
});
afterEach(async () => {
  await Promise.all(worlds.splice(0).map((w) => w.close()));
  process.env = { ...savedEnv };
  mail.messages.splice(0);
});
afterAll(async () => {
  await Promise.all([storage?.stop(), identity?.close(), mail?.close()]);
});

const upn = personUpn;


async function world(users: number, graphPageSize = 100): Promise<World> {
  const w = await startWorld({ tenant: directTenant(users), graphPageSize, identity, storageConnectionString: storage.connectionString });
  worlds.push(w);
  return w;
}

/** The app as the timer, the CLI and the operator endpoints build it: default guard settings, failure emails on. */
async function app(w: World, settings: Record<string, string> = {}): Promise<App> {
  process.env = {
    ...savedEnv,
    ...w.env,
    NOTIFY_EMAIL_TO: 'it-ops@contoso.example',
    ACS_EMAIL_SENDER: 'DoNotReply@tvsync.example',
    ACS_EMAIL_CONNECTION_STRING: mail.connectionString,
    ...settings,
  };
  return createApp(loadSettings({ env: process.env, localSettingsDir: null }), { logger: memoryLogger() });
}

/** Keeps only the assignments of users `from`..`to`: Entra now says the others left. */
function keepAssigned(w: World, from: number, to: number): void {
  w.graph.tenant.assignments = directTenant(to).assignments.slice(from - 1, to);
}

const managed = (w: World) => w.teamViewer.users().filter((u) => u.createdBy === 'scim');
const inactive = (w: World) => managed(w).filter((u) => !u.active).map((u) => u.userName).sort();
const people = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => upn(from + i)).sort();
const stagedEmails = () => mail.messages.filter((m) => /held back/.test(m.subject));

describe('issue 9: no deactivation an admin did not review', () => {
  it('When Graph silently loses half of the app role assignments (200, no error) with default settings, then all 30 deactivations are held and nobody is deactivated', async () => {
    const w = await world(60, 30);
    const tvsync = await app(w);
    expect((await tvsync.runCycle({ trigger: 'cli' })).counts.created).toBe(60);

    // A lost page on Graph's side: the first page of assignments comes back without its nextLink.
    w.graph.inject({ kind: 'dropLinks', times: 10, pathIncludes: 'appRoleAssignedTo' });
    const short = await tvsync.runCycle({ trigger: 'cli' });
    const status = await tvsync.status();
    w.graph.clearFaults();
    const restored = await tvsync.runCycle({ trigger: 'cli' });

    expect(short.imported).toBe(30);
    expect(short.counts).toMatchObject({ staged: 30, disabled: 0 });
    expect(status.health).toBe('quarantined');
    expect(status.stagedDeactivations).toMatchObject({ reason: 'SuspiciousRead', count: 30, newlyHeld: 30, allowed: false });
    expect(status.stagedDeactivations?.message).toMatch(/returned 30 users in scope, 50% fewer than the 60/);
    expect(stagedEmails()).toHaveLength(1);
    expect(restored.counts).toMatchObject({ staged: 0, disabled: 0, created: 0 });
    expect((await tvsync.status()).health).toBe('healthy');
    expect(inactive(w)).toEqual([]);
  });

  it('When a short read was held and an admin restarts provisioning, then the same short read is still held: restart keeps the baseline and the staged set', async () => {
    const w = await world(100);
    const tvsync = await app(w);
    await tvsync.runCycle({ trigger: 'cli' });
    keepAssigned(w, 1, 40);
    const held = await tvsync.runCycle({ trigger: 'cli' });
    const restarted = await runCli(['restart'], w.env);
    const afterRestart = await tvsync.status();
    const again = await tvsync.runCycle({ trigger: 'cli' });
    const status = await tvsync.status();

    expect(held.counts).toMatchObject({ staged: 60, disabled: 0 });
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stdout).toMatch(/60 held-back deactivation\(s\) stay held/);
    expect(afterRestart.stagedDeactivations).toMatchObject({ count: 60, allowed: false });
    expect(again.kind).toBe('initial');
    expect(again.counts).toMatchObject({ staged: 60, disabled: 0 });
    expect(status.health).toBe('quarantined');
    expect(status.stagedDeactivations).toMatchObject({ reason: 'SuspiciousRead', count: 60, newlyHeld: 0 });
    expect(inactive(w)).toEqual([]);
    expect(stagedEmails(), 'one email for the batch, not one per cycle or restart').toHaveLength(1);
  });

  it('When restart --full follows 60 leavers, then no link is dropped: the 40 still assigned are matched again, the 60 stay held until allowed, then deactivated', async () => {
    const w = await world(100);
    const tvsync = await app(w);
    await tvsync.runCycle({ trigger: 'cli' });
    keepAssigned(w, 1, 40);
    const held = await tvsync.runCycle({ trigger: 'cli' });
    const restarted = await runCli(['restart', '--full'], w.env);
    const rematched = await tvsync.runCycle({ trigger: 'cli' });
    const second = await tvsync.runCycle({ trigger: 'cli' });
    const inactiveBeforeAllow = inactive(w);
    const links = await tvsync.store.listLinks();
    await tvsync.allowDeactivations('test');
    const applied = await tvsync.runCycle({ trigger: 'cli' });

    expect(held.counts.staged).toBe(60);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stdout).toMatch(/100 link\(s\) will be matched again by userName .* none was dropped/);
    expect(restarted.stdout).toMatch(/60 held-back deactivation\(s\) stay held/);
    expect(rematched.counts).toMatchObject({ linked: 40, created: 0, staged: 60, disabled: 0, failed: 0 });
    expect(second.counts).toMatchObject({ linked: 0, created: 0, staged: 60, disabled: 0, unchanged: 40 });
    expect(inactiveBeforeAllow).toEqual([]);
    expect(links).toHaveLength(100);
    expect(links.filter((l) => l.rematch).map((l) => l.userPrincipalName).sort(), 'users not read keep their mark until read').toEqual(people(41, 100));
    expect(applied.counts).toMatchObject({ disabled: 60, staged: 0, created: 0 });
    expect(inactive(w)).toEqual(people(41, 100));
    expect(managed(w)).toHaveLength(100);
  });

  it('When restart --full follows 3 leavers, then the next cycle reaches what a normal cycle does: the 3 deactivated, the 97 matched again, nobody created', async () => {
    const w = await world(100);
    const tvsync = await app(w);
    await tvsync.runCycle({ trigger: 'cli' });
    keepAssigned(w, 1, 97);
    expect(await tvsync.restart({ full: true, by: 'test' })).toEqual({ full: true, rematching: 100, stagedKept: 0 });
    const cycle = await tvsync.runCycle({ trigger: 'cli' });

    expect(cycle.counts).toMatchObject({ disabled: 3, linked: 97, created: 0, staged: 0, failed: 0 });
    expect(inactive(w)).toEqual(people(98, 100));
    expect(managed(w)).toHaveLength(100);
    expect((await tvsync.store.listLinks()).filter((l) => l.rematch)).toEqual([]);
  });

  it('When an admin allows 60 staged deactivations and the next read returns nobody, then exactly those 60 are applied and the other 40 are held as newly held, in status and email', async () => {
    const w = await world(100);
    const tvsync = await app(w);
    await tvsync.runCycle({ trigger: 'cli' });
    keepAssigned(w, 1, 40);
    await tvsync.runCycle({ trigger: 'cli' });
    const allowed = await tvsync.allowDeactivations('alice (tvsync CLI)');
    w.graph.tenant.assignments = [];
    const next = await tvsync.runCycle({ trigger: 'cli' });
    const status = await tvsync.status();
    const emails = stagedEmails();

    expect(allowed?.count).toBe(60);
    expect(next.imported).toBe(0);
    expect(next.counts).toMatchObject({ disabled: 60, staged: 40 });
    expect(inactive(w), 'only the 60 the admin allowed').toEqual(people(41, 100));
    expect(status.health).toBe('quarantined');
    expect(status.stagedDeactivations).toMatchObject({ reason: 'SuspiciousRead', count: 40, newlyHeld: 40, allowed: false });
    expect(status.allowance).toMatchObject({ by: 'alice (tvsync CLI)', count: 60, pending: false, applied: 60, cycleId: next.cycleId });
    expect(status.healthReason).toMatch(/40 deactivation\(s\) held back .*not among the 60 allowed by alice \(tvsync CLI\) \(60 applied/);
    expect(emails).toHaveLength(2);
    expect(emails[1].plainText).toMatch(/They are newly held: none of them was among the 60 deactivations alice \(tvsync CLI\) allowed on .*, of which 60 were applied/);
    expect(emails[1].plainText).toMatch(/Newly held:? *40/);
  });

  it('When more users leave after the read an admin allowed, then they are judged against that read, not the old baseline', async () => {
    const w = await world(100);
    const tvsync = await app(w, { DEACTIVATION_THRESHOLD: '2' });
    await tvsync.runCycle({ trigger: 'cli' });
    keepAssigned(w, 1, 40);
    await tvsync.runCycle({ trigger: 'cli' });
    await tvsync.allowDeactivations('test');
    keepAssigned(w, 1, 38);
    const next = await tvsync.runCycle({ trigger: 'cli' });

    expect(next.counts).toMatchObject({ disabled: 62, staged: 0 });
    expect(inactive(w)).toEqual(people(39, 100));
    expect((await tvsync.status()).health).toBe('healthy');
  });
});

describe('tvsync unlink: the narrow fix for a reused login', () => {
  it('When a new person gets the login of one who left, then USERNAME_CONFLICT names "tvsync unlink", which shows first, drops only that link with --yes, and the next cycle links the TeamViewer user to the new person', async () => {
    const w = await world(3);
    const tvsync = await app(w);
    await tvsync.runCycle({ trigger: 'cli' });
    const original = managed(w).find((u) => u.userName === upn(1))!;
    // Person 1 leaves; their account is deleted and the login goes to a new hire.
    w.graph.hardDeleteUser(userId(1));
    await tvsync.runCycle({ trigger: 'cli' });
    w.graph.addUser({ id: userId(4), userPrincipalName: upn(1), displayName: 'New Hire', givenName: 'New', surname: 'Hire', mail: upn(1), accountEnabled: true });
    w.graph.assign(userId(4), 'User');
    const conflict = await tvsync.runCycle({ trigger: 'cli' });
    const failure = conflict.actions.find((a) => a.entraId === userId(4));

    const preview = await runCli(['unlink', upn(1)], w.env);
    const linksAfterPreview = (await tvsync.store.listLinks()).length;
    const dropped = await runCli(['unlink', upn(1), '--yes'], w.env);
    const relinked = await tvsync.runCycle({ trigger: 'cli' });
    const now = managed(w).find((u) => u.id === original.id)!;

    expect(failure).toMatchObject({ status: 'failure', error: { code: 'USERNAME_CONFLICT' }, reason: expect.stringContaining(`run "tvsync unlink ${userId(1)}"`) });
    expect(preview.code, preview.stderr).toBe(0);
    expect(preview.stdout).toMatch(new RegExp(`linked to TeamViewer user ${original.id} \\(inactive, userName ${upn(1).replace(/\./g, '\\.')}\\)`));
    expect(preview.stdout).toMatch(/Nothing changed: run again with --yes/);
    expect(linksAfterPreview).toBe(3);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toMatch(/^Dropped\./);
    expect((await tvsync.store.listLinks()).map((l) => l.entraId).sort()).toEqual([userId(2), userId(3), userId(4)].sort());
    expect(relinked.counts).toMatchObject({ linked: 1, created: 0, failed: 0 });
    expect(now).toMatchObject({ active: true, displayName: 'New Hire' });
    expect(managed(w)).toHaveLength(3);
  });

  it('When unlink names no link, or several, then it changes nothing and exits 1', async () => {
    const w = await world(2);
    const tvsync = await app(w);
    await tvsync.runCycle({ trigger: 'cli' });
    const none = await runCli(['unlink', 'nobody@contoso.example', '--yes'], w.env);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/no link matches "nobody@contoso\.example".*nothing changed/);
    expect(await tvsync.store.listLinks()).toHaveLength(2);
  });
});

describe('run lease holder identity', () => {
  it('When a lease is held by another process with this host name and a pid that does not run here, then no cycle takes it over before it expires', async () => {
    const w = await world(10);
    const tvsync = await app(w);
    const store = await StateStore.open({ kind: 'connectionString', connectionString: storage.connectionString }, { tablePrefix: w.env.STATE_TABLE_PREFIX });
    // Another container: same hostname, and a pid that is free in this one.
    const elsewhere: LeaseRecord = { holder: '0123456789abcdef.1', host: os.hostname(), pid: 999_999, purpose: 'timer cycle', acquiredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() };
    const etag = await store.putMeta(LEASE_KEY, elsewhere, null);

    const refused = await tvsync.runCycle({ trigger: 'cli' }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(LeaseHeldError);
    expect((refused as Error).message).toMatch(new RegExp(`held by ${os.hostname()}/999999 \\(instance 0123456789abcdef\\.1\\)`));
    expect(w.teamViewer.writes()).toBe(0);

    // A minute later the holder has not renewed it: now it is free.
    await store.putMeta(LEASE_KEY, { ...elsewhere, expiresAt: new Date(Date.now() - 1_000).toISOString() }, etag);
    const ran = await tvsync.runCycle({ trigger: 'cli' });
    expect(ran.counts.created).toBe(10);
  });
});
