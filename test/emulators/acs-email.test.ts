import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { EmailClient, type EmailMessage } from '@azure/communication-email';
import { startAcsEmailEmulator, type AcsEmailEmulator } from './acs-email';

const message = (subject = 'Quarantined'): EmailMessage => ({
  senderAddress: 'donotreply@contoso.test',
  content: { subject, plainText: 'plain body', html: '<p>html body</p>' },
  recipients: { to: [{ address: 'ops@contoso.test' }, { address: 'it@contoso.test' }] },
  headers: { 'x-tvsync-notification': 'quarantine-entered' },
});

/** Signs a request the way @azure/communication-common does, so a test can then tamper with one part. */
function sign(method: string, url: string, body: string, accessKey: string, date = new Date()): Record<string, string> {
  const parsed = new URL(url);
  const query = parsed.searchParams.toString();
  const hash = createHash('sha256').update(body).digest('base64');
  const utc = date.toUTCString();
  const stringToSign = `${method}\n${query ? `${parsed.pathname}?${query}` : parsed.pathname}\n${utc};${parsed.host};${hash}`;
  const signature = createHmac('sha256', Buffer.from(accessKey, 'base64')).update(stringToSign).digest('base64');
  return {
    'x-ms-date': utc,
    'x-ms-content-sha256': hash,
    Authorization: `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=${signature}`,
    'content-type': 'application/json',
  };
}

const BODY = JSON.stringify({
  senderAddress: 'donotreply@contoso.test',
  content: { subject: 'Hello', plainText: 'hi' },
  recipients: { to: [{ address: 'ops@contoso.test' }] },
});

describe('ACS Email emulator', () => {
  let acs: AcsEmailEmulator;
  let sendUrl: string;

  beforeAll(async () => {
    acs = await startAcsEmailEmulator({ isValidToken: (t) => t === 'good-bearer-token' });
    sendUrl = `${acs.endpoint}/emails:send?api-version=2025-09-01`;
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

  const post = (body: string, headers: Record<string, string>, url = sendUrl) => fetch(url, { method: 'POST', body, headers });

  it('When the real SDK sends with the connection string, then the signed send and status poll are accepted and the message is kept', async () => {
    const client = new EmailClient(acs.connectionString, { allowInsecureConnection: true });
    const poller = await client.beginSend(message());
    const result = await poller.pollUntilDone();

    expect(result.status).toBe('Succeeded');
    expect(acs.messages).toEqual([{
      id: result.id,
      sender: 'donotreply@contoso.test',
      to: ['ops@contoso.test', 'it@contoso.test'],
      cc: [],
      bcc: [],
      subject: 'Quarantined',
      plainText: 'plain body',
      html: '<p>html body</p>',
      headers: { 'x-tvsync-notification': 'quarantine-entered' },
    }]);
    expect(acs.requests.map((r) => [r.method, r.path, r.auth, r.status])).toEqual([
      ['POST', '/emails:send', 'hmac', 202],
      ['GET', `/emails/operations/${result.id}`, 'hmac', 200],
    ]);
    expect(acs.requests[0]?.apiVersion).toBe('2025-09-01');
  });

  it('When the SDK signs with another key, then the send is refused with 401 and nothing is kept', async () => {
    const otherKey = randomBytes(64).toString('base64');
    const client = new EmailClient(`endpoint=${acs.endpoint}/;accesskey=${otherKey}`, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });
    const failure = await client.beginSend(message()).then(() => null, (e: { statusCode?: number; code?: string }) => e);
    expect(failure?.statusCode).toBe(401);
    expect(failure?.code).toBe('Denied');
    expect(acs.messages).toEqual([]);
  });

  it('When a correctly signed request is replayed with another body, path or an old date, then it is refused with 401', async () => {
    const headers = sign('POST', sendUrl, BODY, acs.accessKey);
    expect((await post(BODY, headers)).status).toBe(202);

    const tampered = BODY.replace('ops@contoso.test', 'attacker@evil.test');
    expect((await post(tampered, headers)).status).toBe(401);
    // Even with the hash of the new body, the signature still covers the old one.
    const rehashed = { ...headers, 'x-ms-content-sha256': createHash('sha256').update(tampered).digest('base64') };
    expect((await post(tampered, rehashed)).status).toBe(401);
    expect((await post(BODY, headers, `${acs.endpoint}/emails:send?api-version=2021-10-01-preview`)).status).toBe(401);
    const stale = sign('POST', sendUrl, BODY, acs.accessKey, new Date(Date.now() - 20 * 60_000));
    expect((await post(BODY, stale)).status).toBe(401);
    expect(acs.messages.map((m) => m.to)).toEqual([['ops@contoso.test']]);
  });

  it('When the Authorization header is missing or not HMAC/bearer, then it answers 401 in ACS error shape', async () => {
    const missing = await post(BODY, { 'content-type': 'application/json' });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('x-ms-error-code')).toBe('Denied');
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('Denied');
    expect((await post(BODY, { Authorization: `SharedKey ${acs.accessKey}` })).status).toBe(401);
  });

  it('When a bearer token is sent, then only a token isValidToken accepts gets through', async () => {
    expect((await post(BODY, { Authorization: 'Bearer good-bearer-token', 'content-type': 'application/json' })).status).toBe(202);
    expect((await post(BODY, { Authorization: 'Bearer forged-token', 'content-type': 'application/json' })).status).toBe(401);
    expect(acs.requests.map((r) => r.auth)).toEqual(['bearer', 'bearer']);

    const strict = await startAcsEmailEmulator();
    try {
      const response = await fetch(`${strict.endpoint}/emails:send?api-version=2025-09-01`, {
        method: 'POST', body: BODY, headers: { Authorization: 'Bearer good-bearer-token' },
      });
      expect(response.status).toBe(401);
    } finally {
      await strict.close();
    }
  });

  it('When faults are injected, then exactly that many sends fail with the status and Retry-After, after authentication', async () => {
    acs.inject({ status: 500, times: 2 });
    acs.inject({ status: 429, retryAfter: 7 });
    const statuses: number[] = [];
    const retryAfters: Array<string | null> = [];
    for (let i = 0; i < 4; i++) {
      const response = await post(BODY, sign('POST', sendUrl, BODY, acs.accessKey));
      statuses.push(response.status);
      retryAfters.push(response.headers.get('retry-after'));
    }
    expect(statuses).toEqual([500, 500, 429, 202]);
    expect(retryAfters).toEqual([null, null, '7', null]);
    expect(acs.messages).toHaveLength(1);

    acs.inject({ status: 503 });
    expect((await post(BODY, { Authorization: 'Bearer forged-token' })).status).toBe(401);
    expect((await post(BODY, sign('POST', sendUrl, BODY, acs.accessKey))).status).toBe(503);
  });

  it('When the SDK meets one 500, then its own retry resends and one message is kept', async () => {
    acs.inject({ status: 500 });
    const client = new EmailClient(acs.connectionString, { allowInsecureConnection: true, retryOptions: { retryDelayInMs: 10, maxRetryDelayInMs: 20 } });
    const result = await (await client.beginSend(message())).pollUntilDone();
    expect(result.status).toBe('Succeeded');
    expect(acs.requests.map((r) => r.status)).toEqual([500, 202, 200]);
    expect(acs.messages).toHaveLength(1);
  });

  it('When the status poll is made to fail, then the send is accepted but the poll answers the fault', async () => {
    acs.inject({ status: 503, on: 'status' });
    const client = new EmailClient(acs.connectionString, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });
    const failure = await client.beginSend(message()).then(() => null, (e: { statusCode?: number }) => e);
    expect(failure?.statusCode).toBe(503);
    expect(acs.requests.map((r) => [r.method, r.status])).toEqual([['POST', 202], ['GET', 503]]);
    expect(acs.messages).toHaveLength(1);
  });

  it('When the outcome is set to Failed, then the poller fails with the ACS error and no message is kept', async () => {
    acs.setOutcome('Failed');
    const client = new EmailClient(acs.connectionString, { allowInsecureConnection: true });
    const failure = await client.beginSend(message()).then((p) => p.pollUntilDone()).then(() => null, (e: Error) => e);
    expect(failure?.message).toContain('EmailDroppedAllRecipientsSuppressed');
    expect(acs.messages).toEqual([]);
  });

  it('When the same Operation-Id is sent twice, then it is one operation and one message', async () => {
    const client = new EmailClient(acs.connectionString, { allowInsecureConnection: true });
    const operationId = '1b4f9a3e-8d5c-4b7a-9e2f-3c6d8a1b0e7f';
    const first = await (await client.beginSend(message(), { operationId })).pollUntilDone();
    const second = await (await client.beginSend(message(), { operationId })).pollUntilDone();
    expect(first.id).toBe(operationId);
    expect(second.id).toBe(operationId);
    expect(acs.messages).toHaveLength(1);
    expect(acs.requests.filter((r) => r.method === 'POST').map((r) => r.operationId)).toEqual([operationId, operationId]);
  });

  it('When a hang is injected on the status poll, then the send is accepted and the poll is never answered', async () => {
    acs.inject({ hang: true, on: 'status' });
    const client = new EmailClient(acs.connectionString, { allowInsecureConnection: true });
    // The SDK polls once inside beginSend, with beginSend's signal.
    const abortSignal = AbortSignal.timeout(500);
    const failure = await client.beginSend(message(), { abortSignal }).then((p) => p.pollUntilDone({ abortSignal })).then(() => null, (e: Error) => e);
    expect(failure?.name).toBe('AbortError');
    expect(acs.messages).toHaveLength(1);
    expect(acs.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['POST 202', 'GET 0']);
    for (let waited = 0; acs.hanging() > 0 && waited < 3_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(acs.hanging()).toBe(0);
  });

  it('When the message has no recipient or a subject with a line break, then it answers 400', async () => {
    const noRecipient = JSON.stringify({ senderAddress: 'a@contoso.test', content: { subject: 's', plainText: 'p' }, recipients: { to: [] } });
    const crlf = JSON.stringify({ senderAddress: 'a@contoso.test', content: { subject: 's\r\nBcc: x@evil.test', plainText: 'p' }, recipients: { to: [{ address: 'b@contoso.test' }] } });
    expect((await post(noRecipient, sign('POST', sendUrl, noRecipient, acs.accessKey))).status).toBe(400);
    expect((await post(crlf, sign('POST', sendUrl, crlf, acs.accessKey))).status).toBe(400);
    expect(acs.messages).toEqual([]);
  });
});
