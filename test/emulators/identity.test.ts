import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagedIdentityCredential } from '@azure/identity';
import { startIdentityEmulator, type IdentityEmulator } from './identity';

const CLIENT_ID = '5d4f1c2a-9b7e-4c1d-8e2f-0a1b2c3d4e5f';
const RESOURCE = 'https://graph.example.test';

describe('managed identity emulator', () => {
  let identity: IdentityEmulator;
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };

  beforeAll(async () => {
    identity = await startIdentityEmulator({ clientId: CLIENT_ID });
    // MSAL picks the App Service source from these once per process, on the first token request.
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.header;
  });

  afterAll(async () => {
    await identity.close();
    process.env.IDENTITY_ENDPOINT = saved.endpoint;
    process.env.IDENTITY_HEADER = saved.header;
    if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
    if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
  });

  const ask = (query: Record<string, string>, header?: string): Promise<Response> =>
    fetch(`${identity.endpoint}?${new URLSearchParams(query).toString()}`, {
      headers: header === undefined ? {} : { 'X-IDENTITY-HEADER': header },
    });

  it('When asked with the right header, then it issues an opaque token the emulator recognises', async () => {
    const response = await ask({ 'api-version': '2019-08-01', resource: RESOURCE }, identity.header);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, string>;
    expect(body.token_type).toBe('Bearer');
    expect(body.resource).toBe(RESOURCE);
    expect(Number(body.expires_on)).toBeGreaterThan(Date.now() / 1000 + 3000);
    expect(identity.isValid(body.access_token as string)).toBe(true);
    expect(identity.issued.has(body.access_token as string)).toBe(true);
    expect(identity.isValid('made-up-token')).toBe(false);
  });

  it('When the header is missing or wrong, then no token is issued', async () => {
    const missing = await ask({ 'api-version': '2019-08-01', resource: RESOURCE });
    const wrong = await ask({ 'api-version': '2019-08-01', resource: RESOURCE }, 'not-the-header');
    expect(missing.status).toBe(400);
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(await wrong.json())).not.toContain('access_token');
  });

  it('When the api-version or resource is missing, or the client id is unknown, then it answers 400', async () => {
    expect((await ask({ resource: RESOURCE }, identity.header)).status).toBe(400);
    expect((await ask({ 'api-version': '2019-08-01' }, identity.header)).status).toBe(400);
    const unknown = await ask({ 'api-version': '2019-08-01', resource: RESOURCE, client_id: 'someone-else' }, identity.header);
    expect(unknown.status).toBe(400);
    const known = await ask({ 'api-version': '2019-08-01', resource: RESOURCE, client_id: CLIENT_ID }, identity.header);
    expect(known.status).toBe(200);
  });

  it('When told to fail twice, then the next two requests fail and the third succeeds', async () => {
    identity.fail(2, 503);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await ask({ 'api-version': '2019-08-01', resource: RESOURCE }, identity.header)).status);
    }
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('When told to hang once, then the next request is never answered (until the client gives up) and the one after is', async () => {
    identity.hang(1);
    const query = { 'api-version': '2019-08-01', resource: RESOURCE };
    const held = fetch(`${identity.endpoint}?${new URLSearchParams(query).toString()}`, { headers: { 'X-IDENTITY-HEADER': identity.header }, signal: AbortSignal.timeout(200) });
    await expect(held).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(identity.requests.at(-1)).toMatchObject({ resource: RESOURCE, status: 0 });
    for (let waited = 0; identity.hanging() > 0 && waited < 3_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(identity.hanging()).toBe(0);
    expect((await ask(query, identity.header)).status).toBe(200);
  });

  it('When @azure/identity asks for a token as a user-assigned identity, then it gets one the emulator accepts', async () => {
    const credential = new ManagedIdentityCredential({ clientId: CLIENT_ID });
    const before = identity.requests.length;
    const token = await credential.getToken('https://graph.example.test/.default');
    expect(identity.isValid(token.token)).toBe(true);
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000_000);
    const seen = identity.requests.slice(before);
    expect(seen).toEqual([{ resource: RESOURCE, clientId: CLIENT_ID, apiVersion: '2019-08-01', status: 200 }]);
  });
});
