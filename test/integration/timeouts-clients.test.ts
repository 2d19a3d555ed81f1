/**
 * Every outbound client cuts off a call that gets no answer — none at all, or headers and half a
 * body — within its timeout, retries it a bounded number of times, then fails with a typed error
 * naming the target, the call (method and path, no query) and the timeout; and it really closes
 * the connection (the far side sees it go), it does not just stop waiting.
 *
 * Real clients against the real emulators, Azurite, and a loopback proxy that stalls chosen
 * requests (test/support/stall-proxy.ts). Timeouts are a few hundred milliseconds; the bounds
 * asserted are generous: these are hang tests, not speed tests.
 *
 * MSAL keeps the managed-identity endpoint per process: this file starts one identity emulator,
 * and a test that needs a fresh token request uses a Graph emulator of its own (a new port is a
 * new resource).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TokenCredential } from '@azure/identity';
import { memoryLogger } from '../../shared/log';
import { createGraphClient, GraphRequester } from '../../shared/entra/graph-client';
import { EntraReader } from '../../shared/entra/reader';
import { EntraReadError } from '../../shared/entra/errors';
import { TeamViewerClient } from '../../shared/teamviewer/client';
import { TeamViewerError } from '../../shared/teamviewer/errors';
import { StateStore } from '../../shared/state/store';
import { StateError } from '../../shared/state/errors';
import { devConnectionString, DEV_ACCOUNT_NAME } from '../../shared/state/target';
import { EmailNotifier } from '../../shared/notify/email';
import { azureCredential, withTokenTimeout } from '../../shared/http/timeout';
import { startGraphEmulator, type GraphEmulator } from '../emulators/graph';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { startTeamViewerEmulator, type TeamViewerEmulator } from '../emulators/teamviewer';
import { startAcsEmailEmulator, type AcsEmailEmulator } from '../emulators/acs-email';
import { startAzurite, type Azurite } from '../support/azurite';
import { startStallProxy, type StallProxy } from '../support/stall-proxy';
import { sampleTenant, SP_ID } from '../support/tenant';

const TIMEOUT_MS = 300;
/** Three attempts of 300 ms and two short back-offs take about a second; anything near this is a hang. */
const HANG_BOUND_MS = 8_000;

/** Variables that would make DefaultAzureCredential use something other than the managed identity. */
const CREDENTIAL_ENV = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_USERNAME', 'AZURE_FEDERATED_TOKEN_FILE'];

let identity: IdentityEmulator;
let credential: TokenCredential;
const savedEnv: Record<string, string | undefined> = {};
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  for (const name of [...CREDENTIAL_ENV, 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_TOKEN_CREDENTIALS']) {
    savedEnv[name] = process.env[name];
    delete process.env[name];
  }
  identity = await startIdentityEmulator();
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.header;
  process.env.AZURE_TOKEN_CREDENTIALS = 'prod';
  // What the app builds: DefaultAzureCredential whose HTTP requests time out.
  credential = azureCredential(TIMEOUT_MS);
});

afterEach(async () => {
  identity.hang(0);
  await Promise.all(closers.splice(0).map((close) => close()));
});

afterAll(async () => {
  await identity?.close();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

async function graphEmulator(): Promise<GraphEmulator> {
  const graph = await startGraphEmulator({ tenant: sampleTenant({ users: 30 }), pageSize: 10, isValidToken: (t) => identity.isValid(t) });
  closers.push(() => graph.close());
  return graph;
}

function graphClient(baseUrl: string, logger = memoryLogger()) {
  return createGraphClient({ graphBaseUrl: baseUrl, credential, logger, timeoutMs: TIMEOUT_MS, retry: { maxRetries: 5, delaySeconds: 0.05 } });
}

async function rejection<T extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  const error = await promise.then(
    (value) => { throw new Error(`expected a failure, got ${JSON.stringify(value)?.slice(0, 200)}`); },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as T;
}

/** Waits until `check` holds (a closed socket is noticed by the far side a moment later). */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !check(); ) {
    if (Date.now() - started > 3_000) throw new Error(`still not true after 3 s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function timed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await promise;
  return { value, ms: Date.now() - started };
}

describe('Microsoft Graph', () => {
  it('When a page never answers, then the read fails with GRAPH_TIMEOUT after three attempts, naming the call and the timeout, and closes the connections', async () => {
    const graph = await graphEmulator();
    const reader = new EntraReader({ client: graphClient(graph.url), servicePrincipalId: SP_ID });
    await reader.getServicePrincipal(); // a token first: this test is about the request
    graph.resetRequests();
    graph.inject({ kind: 'hang', times: 100, pathIncludes: 'appRoleAssignedTo' });

    const { value: error, ms } = await timed(rejection(reader.readAssignedUsers(), EntraReadError));

    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(error).toMatchObject({ code: 'GRAPH_TIMEOUT', timeoutMs: TIMEOUT_MS, call: 'GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo' });
    expect(error.message).toContain('Microsoft Graph did not answer GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo within 300 ms (3 attempts)');
    // The call carries no query ($top, $skiptoken) and no object id; `concerns` says what was read.
    expect(error.message).not.toContain('$');
    expect(graph.requests.filter((r) => r.path.includes('appRoleAssignedTo')).map((r) => r.status)).toEqual([0, 0, 0]);
    await eventually(() => graph.hanging() === 0, 'the client closed every hung connection');
  });

  it('When one attempt hangs, then the retry reads every user', async () => {
    const graph = await graphEmulator();
    const reader = new EntraReader({ client: graphClient(graph.url), servicePrincipalId: SP_ID });
    const expected = (await reader.readAssignedUsers()).users.length;
    graph.inject({ kind: 'hang', times: 1, pathIncludes: 'appRoleAssignedTo' });
    expect((await reader.readAssignedUsers()).users).toHaveLength(expected);
  });

  it('When $batch never answers, then GRAPH_TIMEOUT names POST /v1.0/$batch', async () => {
    const graph = await graphEmulator();
    const reader = new EntraReader({ client: graphClient(graph.url), servicePrincipalId: SP_ID });
    graph.inject({ kind: 'hang', times: 100, method: 'POST', pathIncludes: '$batch' });
    const error = await rejection(reader.readAssignedUsers(), EntraReadError);
    expect(error).toMatchObject({ code: 'GRAPH_TIMEOUT', call: 'POST /v1.0/$batch' });
    expect(graph.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([0, 0, 0]);
  });

  it('When Graph sends the headers and half the body, then the body is cut off by the same timeout', async () => {
    const graph = await graphEmulator();
    const proxy = await startStallProxy(graph.url, { tls: true });
    closers.push(() => proxy.close());
    graph.nextLinkOrigin = proxy.url;
    const reader = new EntraReader({ client: graphClient(proxy.url), servicePrincipalId: SP_ID });
    proxy.stall({ mode: 'half-body', times: 100, pathIncludes: 'appRoleAssignedTo' });

    const { value: error, ms } = await timed(rejection(reader.readAssignedUsers(), EntraReadError));

    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(error).toMatchObject({ code: 'GRAPH_TIMEOUT', call: 'GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo' });
    expect(proxy.requests.filter((r) => r.stalled)).toHaveLength(3);
    await eventually(() => proxy.stalled() === 0, 'the client closed every half-answered connection');
  });

  it('When the managed identity never issues a token, then GRAPH_TIMEOUT names the token endpoint (not a credential failure), and the next read works', async () => {
    const graph = await graphEmulator(); // a new resource: MSAL has no token for it yet
    const reader = new EntraReader({ client: graphClient(graph.url), servicePrincipalId: SP_ID });
    identity.hang(3);
    const before = identity.requests.length;

    const { value: error, ms } = await timed(rejection(reader.getServicePrincipal(), EntraReadError));

    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(error).toMatchObject({ code: 'GRAPH_TIMEOUT', call: 'token request', timeoutMs: TIMEOUT_MS });
    expect(error.message).toContain("The managed identity's token endpoint did not answer the token request for Microsoft Graph within 300 ms (3 attempts)");
    expect(identity.requests.slice(before).map((r) => r.status)).toEqual([0, 0, 0]);
    expect(graph.requests).toEqual([]);
    await eventually(() => identity.hanging() === 0, 'the credential closed every hung token request');
    expect((await reader.getServicePrincipal()).id).toBe(SP_ID);
  });

  it('When the caller\'s signal aborts a hung call, then it stops at once with the caller\'s reason, not as a timeout', async () => {
    const graph = await graphEmulator();
    const client = createGraphClient({ graphBaseUrl: graph.url, credential, timeoutMs: 5_000, retry: { delaySeconds: 0.05 } });
    await new EntraReader({ client, servicePrincipalId: SP_ID }).getServicePrincipal();
    graph.resetRequests();
    graph.inject({ kind: 'hang', times: 100 });
    const controller = new AbortController();
    const requester = new GraphRequester(client, undefined, { signal: controller.signal });
    const deadline = Object.assign(new Error('the cycle ran out of time'), { code: 'CYCLE_DEADLINE' });
    setTimeout(() => controller.abort(deadline), 200);

    const { value: error, ms } = await timed(requester.get(`/servicePrincipals/${SP_ID}`, { concerns: 'the service principal', permission: 'Application.Read.All' }).then(() => null, (e: unknown) => e));

    expect(error).toBe(deadline);
    expect(ms).toBeLessThan(2_000);
    expect(graph.requests).toHaveLength(1);
    await eventually(() => graph.hanging() === 0, 'the aborted connection is closed');
  });
});

describe('TeamViewer', () => {
  let tv: TeamViewerEmulator;
  beforeAll(async () => {
    tv = await startTeamViewerEmulator();
    for (let i = 1; i <= 3; i++) tv.seed({ userName: `user${i}@contoso.test`, displayName: `User ${i}` });
  });
  afterAll(async () => tv?.close());
  afterEach(() => {
    tv.clearFaults();
    tv.resetRequests();
  });

  const client = (baseUrl = tv.url, options: { maxRetries?: number } = {}) =>
    new TeamViewerClient({ baseUrl, token: tv.token, timeoutMs: TIMEOUT_MS, baseDelayMs: 20, maxDelayMs: 100, ...options });

  it('When a listing never answers, then TEAMVIEWER_TIMEOUT comes after three attempts (not the five retries of other failures), naming the call', async () => {
    tv.inject({ kind: 'hang', times: 100, method: 'GET', pathIncludes: '/Users' });
    const { value: error, ms } = await timed(rejection(client().listUsers(), TeamViewerError));

    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(error).toMatchObject({ code: 'TEAMVIEWER_TIMEOUT', method: 'GET', path: '/Users', timeoutMs: TIMEOUT_MS, mayHaveApplied: false });
    expect(error.message).toBe('TeamViewer did not answer SCIM GET /Users within 300 ms (3 attempts) while trying to list the users. This is usually temporary.');
    expect(tv.requests.map((r) => r.status)).toEqual([0, 0, 0]);
    await eventually(() => tv.hanging() === 0, 'the client closed every hung connection');
  });

  it('When TeamViewer sends the headers and half the body, then the body is cut off by the same timeout', async () => {
    const proxy = await startStallProxy(tv.url.replace(/\/scim\/v2$/, ''));
    closers.push(() => proxy.close());
    proxy.stall({ mode: 'half-body', times: 100, pathIncludes: '/api/v1/account' });
    const error = await rejection(client(`${proxy.url}/scim/v2`).getTokenOwner(), TeamViewerError);
    expect(error).toMatchObject({ code: 'TEAMVIEWER_TIMEOUT', path: '/account' });
    expect(error.message).toContain('did not answer Web API GET /account within 300 ms (3 attempts)');
    await eventually(() => proxy.stalled() === 0, 'the client closed every half-answered connection');
  });

  it('When the caller\'s signal aborts a hung call, then it stops at once with the caller\'s reason and is not retried', async () => {
    tv.inject({ kind: 'hang', times: 100 });
    const slow = new TeamViewerClient({ baseUrl: tv.url, token: tv.token, timeoutMs: 5_000, baseDelayMs: 20 });
    const controller = new AbortController();
    const deadline = Object.assign(new Error('the cycle ran out of time'), { code: 'CYCLE_DEADLINE' });
    setTimeout(() => controller.abort(deadline), 200);
    const { value: error, ms } = await timed(slow.listUsers({ signal: controller.signal }).then(() => null, (e: unknown) => e));
    expect(error).toBe(deadline);
    expect(ms).toBeLessThan(2_000);
    expect(tv.requests).toHaveLength(1);
    await eventually(() => tv.hanging() === 0, 'the aborted connection is closed');
  });
});

describe('Table Storage', () => {
  let azurite: Azurite;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => azurite?.stop());

  const tuning = { retry: { maxRetries: 2, retryDelayInMs: 10, maxRetryDelayInMs: 20 }, requestTimeoutMs: TIMEOUT_MS };

  it('When Azurite sends the headers and half the body, then the request is cut off as STATE_UNAVAILABLE naming the call and the timeout', async () => {
    const proxy = await startStallProxy(`http://127.0.0.1:${azurite.port}`);
    closers.push(() => proxy.close());
    const port = new URL(proxy.url).port;
    const store = await StateStore.open({ kind: 'connectionString', connectionString: devConnectionString(Number(port)) }, { tablePrefix: 'halfbody', tuning });
    await store.putMeta('gate', { open: true });
    proxy.stall({ mode: 'half-body', times: 1, method: 'GET', pathIncludes: 'halfbodyMeta' });

    const { value: error, ms } = await timed(rejection(store.getMeta('gate'), StateError));

    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(error).toMatchObject({ code: 'STATE_UNAVAILABLE', serviceCode: 'TIMEOUT', table: 'halfbodyMeta' });
    expect(error.message).toBe(`Table Storage at 127.0.0.1:${port} did not answer GET /${DEV_ACCOUNT_NAME}/halfbodyMeta(…) within 300 ms (get on halfbodyMeta row gate)`);
    // Not retried: a write may have landed.
    expect(proxy.requests.filter((r) => r.stalled)).toHaveLength(1);
    await eventually(() => proxy.stalled() === 0, 'the client closed the half-answered connection');
    expect((await store.getMeta<{ open: boolean }>('gate'))?.value).toEqual({ open: true });
  });

  it('When the identity never issues a token for storage, then STATE_UNAVAILABLE (a transient outage), not STATE_AUTH', async () => {
    const never: TokenCredential = { getToken: () => new Promise(() => undefined) };
    const { value: error, ms } = await timed(rejection(
      StateStore.open({ kind: 'identity', tableServiceUri: `https://127.0.0.1:${azurite.port}`, credential: withTokenTimeout(never, TIMEOUT_MS) }, { tuning: { ...tuning, requestTimeoutMs: 5_000 } }),
      StateError,
    ));
    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(error.code).toBe('STATE_UNAVAILABLE');
    expect(error.message).toContain("The managed identity's token endpoint did not answer the token request for https://storage.azure.com within 300 ms");
  });
});

describe('ACS Email', () => {
  let acs: AcsEmailEmulator;
  beforeAll(async () => {
    acs = await startAcsEmailEmulator();
  });
  afterAll(async () => acs?.close());
  afterEach(() => acs.clearFaults());

  const notifier = () => new EmailNotifier(
    { to: ['ops@contoso.test'], sender: 'DoNotReply@tvsync.contoso.test', connectionString: acs.connectionString },
    memoryLogger(),
    { timeoutMs: TIMEOUT_MS, pollIntervalMs: 10, retry: { maxRetries: 2, retryDelayInMs: 5, maxRetryDelayInMs: 10 } },
  );
  const notification = { kind: 'recovered', ended: 'outage', at: '2025-03-10T12:00:00.000Z', since: '2025-03-10T08:00:00.000Z' } as const;

  it('When the send never answers, then EMAIL_TIMEOUT within the send\'s budget, naming the call, and the connection is closed', async () => {
    acs.inject({ hang: true, times: 5 });
    const { value: result, ms } = await timed(notifier().send(notification));
    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(result).toMatchObject({ ok: false, code: 'EMAIL_TIMEOUT' });
    expect(!result.ok && result.message).toBe('ACS Email did not accept the email within 300 ms (no answer to POST /emails:send).');
    await eventually(() => acs.hanging() === 0, 'the client closed the hung connection');
  });

  it('When the status poll never answers, then the accepted email counts as sent, within the budget, and the poll is closed', async () => {
    acs.inject({ hang: true, times: 5, on: 'status' });
    const sent = acs.messages.length;
    const { value: result, ms } = await timed(notifier().send(notification));
    expect(ms).toBeLessThan(HANG_BOUND_MS);
    expect(result).toMatchObject({ ok: true, status: 'Running' });
    expect(acs.messages).toHaveLength(sent + 1);
    await eventually(() => acs.hanging() === 0, 'the client closed the hung poll');
  });
});
