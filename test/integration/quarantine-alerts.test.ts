/**
 * Quarantine and failure emails through real cycles and heartbeats: Azurite, the emulators, and
 * an Azure Communication Services Email emulator that checks the SDK's HMAC signature.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { memoryLogger } from '../../shared/log';
import { startAcsEmailEmulator, type AcsEmailEmulator } from '../emulators/acs-email';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { startAzurite } from '../support/azurite';
import { sampleTenant } from '../support/tenant';
import { startWorld, type World } from '../support/world';

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
  mail.clearFaults();
  mail.messages.splice(0);
});
afterAll(async () => {
  await Promise.all([storage?.stop(), identity?.close(), mail?.close()]);
});

async function world(): Promise<World> {
  const w = await startWorld({ tenant: sampleTenant({ users: 30, groups: 2 }), identity, storageConnectionString: storage.connectionString });
  worlds.push(w);
  return w;
}

async function app(w: World, settings: Record<string, string> = {}): Promise<App> {
  process.env = {
    ...savedEnv,
    ...w.env,
    NOTIFY_EMAIL_TO: 'it-ops@contoso.example, oncall@contoso.example',
    ACS_EMAIL_SENDER: 'DoNotReply@tvsync.example',
    ACS_EMAIL_CONNECTION_STRING: mail.connectionString,
    STATUS_PAGE_URL: 'https://func-tvsync.example.net/api/status',
    ...settings,
  };
  return createApp(loadSettings({ env: process.env, localSettingsDir: null }), { logger: memoryLogger() });
}

const subjects = () => mail.messages.map((m) => m.subject);

describe('quarantine and failure emails', () => {
  it('When the token is rejected, then one quarantine email, back-off 6 h then 12 h, and one recovery email when it works again', async () => {
    const w = await world();
    const good = w.teamViewer.token;
    w.teamViewer.setToken('rotated-by-someone-else');
    let tvsync = await app(w);
    const failed = await tvsync.beat('timer');
    expect(failed?.error?.code).toBe('TEAMVIEWER_UNAUTHORIZED');
    let status = await tvsync.status();
    expect(status.health).toBe('quarantined');
    expect(status.quarantine).toMatchObject({ reason: 'Unauthorized', attempts: 1 });
    expect(Date.parse(status.quarantine!.nextAttemptAt!) - Date.now()).toBeGreaterThan(5.9 * 3_600_000);
    expect(subjects()).toHaveLength(1);
    expect(mail.messages[0].to).toEqual(['it-ops@contoso.example', 'oncall@contoso.example']);
    expect(mail.messages[0].plainText).toContain('https://func-tvsync.example.net/api/status');
    expect(mail.messages[0].plainText + mail.messages[0].html).not.toContain(good);

    // Heartbeats inside the back-off run no cycle and send nothing more, however many.
    for (let i = 0; i < 3; i++) expect(await tvsync.beat('timer')).toBeNull();
    tvsync = await app(w); // a restart of the process changes nothing either
    expect(await tvsync.beat('timer')).toBeNull();
    expect(subjects()).toHaveLength(1);

    // An operator's "run now" tries again: still rejected, attempt 2, 12 h, still one email.
    await tvsync.requestRun('test');
    expect((await tvsync.beat('timer'))?.result).toBe('failed');
    status = await tvsync.status();
    expect(status.quarantine).toMatchObject({ attempts: 2 });
    expect(Date.parse(status.quarantine!.nextAttemptAt!) - Date.now()).toBeGreaterThan(11.9 * 3_600_000);
    expect(subjects()).toHaveLength(1);

    // Fixed: the next cycle succeeds, the quarantine ends, one recovery email.
    w.teamViewer.setToken(good);
    await tvsync.requestRun('test');
    expect((await tvsync.beat('timer'))?.result).toBe('succeeded');
    status = await tvsync.status();
    expect(status.health).toBe('healthy');
    expect(status.quarantine).toBeNull();
    expect(subjects()).toHaveLength(2);
    expect(mail.messages[1].subject).toMatch(/recover|back to normal|healthy/i);
    await tvsync.requestRun('test');
    await tvsync.beat('timer');
    expect(subjects()).toHaveLength(2);
  });

  it('When the email service fails, then the cycle still succeeds, and the email goes out once at a later beat', async () => {
    const w = await world();
    const tvsync = await app(w, { DEACTIVATION_THRESHOLD: '1' });
    expect((await tvsync.beat('timer'))?.result).toBe('succeeded');
    w.tenant.assignments = w.tenant.assignments.filter((a) => a.principalType !== 'User');
    mail.inject({ status: 500, times: 100 });
    await tvsync.requestRun('test');
    const held = await tvsync.beat('timer');
    expect(held?.result).toBe('succeeded');
    expect(held?.counts.staged).toBeGreaterThan(1);
    expect(subjects()).toHaveLength(0);
    mail.clearFaults();
    expect(await tvsync.beat('timer')).toBeNull(); // no cycle due, but the email is retried
    expect(subjects()).toHaveLength(1);
    expect(subjects()[0]).toMatch(/deactivation/i);
    await tvsync.beat('timer');
    expect(subjects()).toHaveLength(1);
  });

  it('When a restart clears the quarantine, then the next cycle runs at once', async () => {
    const w = await world();
    const good = w.teamViewer.token;
    w.teamViewer.setToken('revoked');
    const tvsync = await app(w);
    await tvsync.beat('timer');
    expect(await tvsync.beat('timer')).toBeNull();
    w.teamViewer.setToken(good);
    await tvsync.restart({ full: false, by: 'test' });
    expect((await tvsync.beat('timer'))?.result).toBe('succeeded');
  });
});
