/**
 * The failure-email sender end to end: the real EmailNotifier and the real @azure/communication-email
 * SDK against the ACS Email emulator, which checks the SDK's HMAC signature (or the managed
 * identity's bearer token) on every request.
 *
 * The managed-identity tests talk https (the SDK never sends a bearer token over http), so this
 * file needs NODE_EXTRA_CA_CERTS=test/emulators/certs/localhost.crt, as `npm test` sets.
 * MSAL keeps the managed identity endpoint per process, so this file starts one identity emulator.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { ManagedIdentityCredential } from '@azure/identity';
import { memoryLogger } from '../../shared/log';
import { EmailNotifier, type EmailSettings } from '../../shared/notify/email';
import { renderNotification, type Notification } from '../../shared/notify/templates';
import { startAcsEmailEmulator, type AcsEmailEmulator } from '../emulators/acs-email';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { freePort } from '../support/ports';

const TO = ['ops@contoso.test', 'it-lead@contoso.test'];
const SENDER = 'DoNotReply@tvsync.contoso.test';
const STATUS_URL = 'https://tvsync-contoso.azurewebsites.net/api/status';
const FAST = { retry: { maxRetries: 2, retryDelayInMs: 5, maxRetryDelayInMs: 10 }, pollIntervalMs: 10 };

const quarantined: Notification = {
  kind: 'quarantine-entered',
  at: '2025-03-10T12:00:00.000Z',
  reason: 'Unauthorized',
  detail: 'TeamViewer answered 401 for the API token',
  since: '2025-03-10T12:00:00.000Z',
  nextAttemptAt: '2025-03-10T18:00:00.000Z',
};

describe('EmailNotifier with the connection string', () => {
  let acs: AcsEmailEmulator;
  beforeAll(async () => {
    acs = await startAcsEmailEmulator();
  });
  afterAll(async () => {
    await acs.close();
  });
  beforeEach(() => {
    acs.clearFaults();
    acs.setOutcome('Succeeded');
    acs.messages.length = 0;
    acs.requests.length = 0;
  });

  const notifier = (overrides: Partial<EmailSettings> = {}, options = {}) => {
    const logger = memoryLogger();
    const settings: EmailSettings = { to: TO, sender: SENDER, connectionString: acs.connectionString, statusUrl: STATUS_URL, ...overrides };
    return { logger, email: new EmailNotifier(settings, logger, { ...FAST, ...options }) };
  };

  it('When a quarantine is notified, then exactly one signed email reaches all recipients with the rendered subject, plain text and HTML', async () => {
    const { email, logger } = notifier();
    const result = await email.send(quarantined);

    const expected = renderNotification({ ...quarantined, statusUrl: STATUS_URL });
    expect(result).toEqual({ ok: true, id: acs.messages[0]?.id, status: 'Succeeded' });
    expect(acs.messages).toHaveLength(1);
    const [message] = acs.messages;
    expect(message?.sender).toBe(SENDER);
    expect(message?.to).toEqual(TO);
    expect(message?.subject).toBe(expected.subject);
    expect(message?.plainText).toBe(expected.plainText);
    expect(message?.html).toBe(expected.html);
    expect(message?.plainText).toContain(`Status page: ${STATUS_URL}`);
    expect(message?.headers).toEqual({ 'x-tvsync-notification': 'quarantine-entered' });
    expect(acs.requests.every((r) => r.auth === 'hmac' && r.status < 300)).toBe(true);
    expect(logger.lines.map((l) => [l.level, l.message])).toEqual([['info', 'notification email sent']]);
  });

  it('When the access key is wrong, then it returns EMAIL_UNAUTHORIZED and neither key shows in the result or the logs', async () => {
    const wrongKey = randomBytes(64).toString('base64');
    const { email, logger } = notifier({ connectionString: `endpoint=${acs.endpoint}/;accesskey=${wrongKey}` });
    const result = await email.send(quarantined);

    expect(result).toMatchObject({ ok: false, code: 'EMAIL_UNAUTHORIZED', status: 401 });
    expect(!result.ok && result.message).toMatch(/access key in ACS_EMAIL_CONNECTION_STRING/);
    expect(acs.messages).toEqual([]);
    const everything = JSON.stringify(result) + JSON.stringify(logger.lines) + JSON.stringify(email) + inspect(email, { depth: 5 });
    expect(everything).not.toContain(wrongKey);
    expect(everything).not.toContain(acs.accessKey);
    expect(logger.lines.map((l) => [l.level, l.fields?.code])).toEqual([['error', 'EMAIL_UNAUTHORIZED']]);
  });

  it('When the connection string is malformed, then it says so without quoting it, and sends nothing', async () => {
    const secret = randomBytes(32).toString('base64');
    const { email, logger } = notifier({ connectionString: `https://acs.example.test/;key=${secret}` });
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_NOT_CONFIGURED' });
    expect(JSON.stringify(result) + JSON.stringify(logger.lines)).not.toContain(secret);
    expect(acs.requests).toEqual([]);
  });

  it('When ACS answers one 500, then the SDK retries the same operation and one email is sent', async () => {
    acs.inject({ status: 500 });
    const { email } = notifier();
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: true, status: 'Succeeded' });
    const posts = acs.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.status)).toEqual([500, 202]);
    expect(new Set(posts.map((r) => r.operationId)).size).toBe(1);
    expect(acs.messages).toHaveLength(1);
  });

  it('When ACS keeps answering 500, then after the SDK retries it returns EMAIL_SERVICE_UNAVAILABLE and does not throw', async () => {
    acs.inject({ status: 500, times: 10 });
    const { email } = notifier();
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_SERVICE_UNAVAILABLE', status: 500 });
    expect(acs.requests.map((r) => r.status)).toEqual([500, 500, 500]);
    expect(acs.messages).toEqual([]);
  });

  it('When ACS throttles with Retry-After: 0 once, then the SDK retries at once and the email is sent', async () => {
    acs.inject({ status: 429, retryAfter: 0 });
    const { email } = notifier();
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: true, status: 'Succeeded' });
    expect(acs.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([429, 202]);
  });

  it('When ACS throttles without Retry-After, then the SDK does not retry and it returns EMAIL_THROTTLED', async () => {
    acs.inject({ status: 429, times: 5 });
    const { email } = notifier();
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_THROTTLED', status: 429 });
    expect(acs.requests).toHaveLength(1);
  });

  it('When ACS asks to wait longer than the time budget, then it returns EMAIL_THROTTLED with the wait, within the budget', async () => {
    acs.inject({ status: 429, retryAfter: 120, times: 5 });
    const { email } = notifier({}, { timeoutMs: 300 });
    const started = Date.now();
    const result = await email.send(quarantined);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_THROTTLED', status: 429, retryAfterSeconds: 120 });
    expect(acs.messages).toEqual([]);
  });

  it('When the send is accepted but the status poll keeps failing, then it counts as sent (Running) so the caller does not send it twice', async () => {
    acs.inject({ status: 503, on: 'status', times: 10 });
    const { email, logger } = notifier();
    const result = await email.send(quarantined);
    expect(result).toEqual({ ok: true, id: acs.messages[0]?.id, status: 'Running' });
    expect(acs.messages).toHaveLength(1);
    expect(logger.lines.map((l) => l.level)).toEqual(['warn']);
  });

  it('When ACS never finishes the operation, then send returns within its time budget with the accepted id', async () => {
    acs.setOutcome('Running');
    const { email } = notifier({}, { timeoutMs: 300 });
    const started = Date.now();
    const result = await email.send(quarantined);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result).toEqual({ ok: true, id: acs.messages[0]?.id, status: 'Running' });
    expect(acs.requests.filter((r) => r.method === 'GET').length).toBeGreaterThan(1);
  });

  it('When ACS reports the delivery Failed, then it returns EMAIL_DELIVERY_FAILED with ACS\'s code', async () => {
    acs.setOutcome('Failed');
    const { email } = notifier();
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_DELIVERY_FAILED' });
    expect(!result.ok && result.message).toContain('EmailDroppedAllRecipientsSuppressed');
  });

  it('When the endpoint is plain http to a host that is not loopback, then it refuses before any request', async () => {
    const key = randomBytes(64).toString('base64');
    const { email, logger } = notifier({ connectionString: `endpoint=http://acs.contoso.test/;accesskey=${key}` });
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_INSECURE_ENDPOINT' });
    expect(!result.ok && result.message).toContain('http://acs.contoso.test');
    expect(JSON.stringify(result) + JSON.stringify(logger.lines)).not.toContain(key);
    const viaIdentity = new EmailNotifier({ to: TO, sender: SENDER, endpoint: 'http://10.1.2.3', credential: new ManagedIdentityCredential() }, memoryLogger(), FAST);
    expect(await viaIdentity.send(quarantined)).toMatchObject({ ok: false, code: 'EMAIL_INSECURE_ENDPOINT' });
    expect(acs.requests).toEqual([]);
  });

  it('When nothing listens at the endpoint, then it returns EMAIL_UNREACHABLE', async () => {
    const port = await freePort();
    const { email } = notifier({ connectionString: `endpoint=http://127.0.0.1:${port}/;accesskey=${acs.accessKey}` });
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_UNREACHABLE' });
    expect(!result.ok && result.message).not.toContain(acs.accessKey);
  });

  it('When recipients or sender are missing or malformed, or the notification is unknown, then send returns a failure and never throws', async () => {
    expect(await notifier({ to: [] }).email.send(quarantined)).toMatchObject({ ok: false, code: 'EMAIL_NOT_CONFIGURED' });
    expect(await notifier({ to: ['ops@contoso.test', 'not an address'] }).email.send(quarantined)).toMatchObject({ ok: false, code: 'EMAIL_NOT_CONFIGURED' });
    expect(await notifier({ sender: 'tvsync' }).email.send(quarantined)).toMatchObject({ ok: false, code: 'EMAIL_NOT_CONFIGURED' });
    expect(await notifier({ connectionString: undefined }).email.send(quarantined)).toMatchObject({ ok: false, code: 'EMAIL_NOT_CONFIGURED' });
    const bogus = { kind: 'bogus', at: quarantined.at } as unknown as Notification;
    expect(await notifier().email.send(bogus)).toMatchObject({ ok: false, code: 'EMAIL_SEND_FAILED' });
    expect(acs.requests).toEqual([]);
  });
});

describe('EmailNotifier with the managed identity', () => {
  let identity: IdentityEmulator;
  let acs: AcsEmailEmulator;
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

  beforeAll(async () => {
    identity = await startIdentityEmulator();
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.header;
    acs = await startAcsEmailEmulator({ tls: true, isValidToken: (t) => identity.isValid(t) });
    await fetch(`${acs.endpoint}/emails/operations/x?api-version=2025-09-01`).catch(() => {
      throw new Error('the test certificate is not trusted: run with NODE_EXTRA_CA_CERTS=test/emulators/certs/localhost.crt (npm test sets it)');
    });
    acs.requests.length = 0;
  });
  afterAll(async () => {
    await Promise.all([acs?.close(), identity?.close()]);
    if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
    else process.env.IDENTITY_ENDPOINT = saved.endpoint;
    if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
    else process.env.IDENTITY_HEADER = saved.header;
  });

  it('When ACS_EMAIL_ENDPOINT and the managed identity are set, then the email goes out with the identity\'s token and the token is not logged', async () => {
    const logger = memoryLogger();
    const email = new EmailNotifier({ to: TO, sender: SENDER, endpoint: acs.endpoint, credential: new ManagedIdentityCredential() }, logger, FAST);
    const result = await email.send({ kind: 'recovered', at: '2025-03-10T12:00:00.000Z', ended: 'outage', since: '2025-03-10T10:00:00.000Z' });

    expect(result).toMatchObject({ ok: true, status: 'Succeeded' });
    expect(acs.messages.map((m) => m.subject)).toEqual(['[tvsync] Recovered: cycles succeed again']);
    expect(acs.requests.map((r) => r.auth)).toEqual(['bearer', 'bearer']);
    expect(identity.requests.map((r) => r.resource)).toEqual(['https://communication.azure.com/']);
    const logged = JSON.stringify(logger.lines);
    for (const token of identity.issued) expect(logged).not.toContain(token);
  });

  it('When the identity cannot get a token, then it returns EMAIL_CREDENTIAL_UNAVAILABLE and sends nothing', async () => {
    const before = acs.requests.length;
    const unavailable = {
      getToken: async () => {
        const error = new Error('ManagedIdentityCredential: no managed identity endpoint is available');
        error.name = 'CredentialUnavailableError';
        throw error;
      },
    };
    const email = new EmailNotifier({ to: TO, sender: SENDER, endpoint: acs.endpoint, credential: unavailable }, memoryLogger(), FAST);
    expect(await email.send(quarantined)).toMatchObject({ ok: false, code: 'EMAIL_CREDENTIAL_UNAVAILABLE' });
    expect(acs.requests.length).toBe(before);
  });

  it('When the token is not one ACS accepts, then it returns EMAIL_UNAUTHORIZED with a hint about the identity\'s role', async () => {
    const forged = { getToken: async () => ({ token: 'forged-token-0123456789', expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const logger = memoryLogger();
    const email = new EmailNotifier({ to: TO, sender: SENDER, endpoint: acs.endpoint, credential: forged }, logger, FAST);
    const result = await email.send(quarantined);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_UNAUTHORIZED', status: 401 });
    expect(!result.ok && result.message).toContain('managed identity');
    expect(JSON.stringify(logger.lines)).not.toContain('forged-token-0123456789');
  });
});
