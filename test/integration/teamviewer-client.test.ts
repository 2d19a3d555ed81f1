import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../shared/log';
import { TeamViewerClient, type TeamViewerClientOptions } from '../../shared/teamviewer/client';
import { errorFromResponse, isTeamViewerError, TeamViewerError } from '../../shared/teamviewer/errors';
import { startTeamViewerEmulator, type TeamViewerEmulator } from '../emulators/teamviewer';

const TOKEN = 'tv-script-token-3141592653';

/** Fast retries for tests; anything else per test. */
function clientFor(em: TeamViewerEmulator, options: Partial<TeamViewerClientOptions> = {}): TeamViewerClient {
  return new TeamViewerClient({ baseUrl: em.url, token: em.token, baseDelayMs: 5, maxDelayMs: 40, timeoutMs: 2_000, ...options });
}

async function failure(promise: Promise<unknown>): Promise<TeamViewerError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!isTeamViewerError(error)) throw new Error(`expected a TeamViewerError, got ${String(error)}`);
  return error;
}

describe('TeamViewerClient against the emulator', () => {
  let em: TeamViewerEmulator;
  let tv: TeamViewerClient;
  const emulators: TeamViewerEmulator[] = [];
  const extra = async (...args: Parameters<typeof startTeamViewerEmulator>) => {
    const started = await startTeamViewerEmulator(...args);
    emulators.push(started);
    return started;
  };

  beforeAll(async () => {
    em = await startTeamViewerEmulator({
      token: TOKEN,
      tokenOwner: { userName: 'admin@contoso.com', name: 'Ada Admin' },
      externalEmails: ['elsewhere@fabrikam.com'],
    });
    tv = clientFor(em);
  });
  afterEach(() => em.resetRequests());
  afterAll(async () => {
    await em.close();
    await Promise.all(emulators.map((e) => e.close()));
  });

  describe('users', () => {
    it('creates a user and maps it, sending create-only attributes TeamViewer keeps to itself', async () => {
      const user = await tv.createUser({
        userName: 'grace.hopper@contoso.com',
        displayName: 'Grace Brewster Hopper',
        active: true,
        preferredLanguage: 'fr',
        ssoCustomerId: 'sso-customer-1',
      });
      expect(user).toEqual({
        id: expect.stringMatching(/^u\d+$/),
        userName: 'grace.hopper@contoso.com',
        displayName: 'Grace Brewster Hopper',
        givenName: 'Grace',
        familyName: 'Brewster Hopper',
        email: 'grace.hopper@contoso.com',
        active: true,
      });
      expect(em.users().find((u) => u.id === user.id)).toMatchObject({ preferredLanguage: 'fr', ssoCustomerId: 'sso-customer-1', hasPassword: false });
      expect(await tv.getUser(user.id)).toEqual(user);
    });

    it('lets TeamViewer compose the name from givenName and familyName when there is no displayName', async () => {
      const user = await tv.createUser({ userName: 'alan@contoso.com', givenName: 'Alan', familyName: 'Turing', active: false });
      expect(user).toMatchObject({ displayName: 'Alan Turing', givenName: 'Alan', familyName: 'Turing', active: false });
    });

    it('answers null for an unknown id', async () => {
      expect(await tv.getUser('u1')).toBeNull();
    });

    it('patches several attributes in one PatchOp, and logs that TeamViewer mails the new address', async () => {
      const logger = memoryLogger();
      const client = clientFor(em, { logger });
      const created = await client.createUser({ userName: 'katherine@contoso.com', displayName: 'Katherine Johnson', active: true });
      em.resetRequests();
      const patched = await client.patchUser(created.id, { givenName: 'Kathy', email: 'kathy@contoso.com', active: false });
      expect(em.writes()).toBe(1);
      expect(patched).toEqual({
        id: created.id, userName: 'kathy@contoso.com', email: 'kathy@contoso.com',
        displayName: 'Kathy Johnson', givenName: 'Kathy', familyName: 'Johnson', active: false,
      });
      expect(logger.lines.some((l) => l.level === 'info' && /verification email/.test(l.message))).toBe(true);
    });

    it('deactivates (TeamViewer cannot delete over SCIM)', async () => {
      const created = await tv.createUser({ userName: 'leaver@contoso.com', displayName: 'Lee Leaver', active: true });
      expect((await tv.deactivate(created.id)).active).toBe(false);
      expect(em.users().find((u) => u.id === created.id)?.active).toBe(false);
    });

    it('reads the user for an empty patch, without writing', async () => {
      const created = await tv.createUser({ userName: 'same@contoso.com', displayName: 'Sam Same', active: true });
      em.resetRequests();
      expect(await tv.patchUser(created.id, {})).toEqual(created);
      expect(em.writes()).toBe(0);
    });

    it('finds by exact userName, case-sensitively as TeamViewer does', async () => {
      const created = await tv.createUser({ userName: 'Mixed.Case@contoso.com', displayName: 'Mixed Case', active: true });
      expect(await tv.findByUserName('Mixed.Case@contoso.com')).toEqual([created]);
      expect(await tv.findByUserName('mixed.case@contoso.com')).toEqual([]);
    });
  });

  describe('paging', () => {
    let big: TeamViewerEmulator;
    beforeAll(async () => {
      big = await extra();
      for (let i = 1; i <= 23; i++) big.seed({ userName: `user${String(i).padStart(2, '0')}@contoso.com`, displayName: `User ${i}` });
    });

    it('reads every page when totalResults exceeds pageSize, asking by startIndex and count, the pages after the first at once', async () => {
      big.resetRequests();
      const users = await clientFor(big, { pageSize: 5 }).listUsers();
      expect(users.map((u) => u.userName)).toEqual(big.users().map((u) => u.userName));
      expect(new Set(users.map((u) => u.id)).size).toBe(23);
      const asked = big.requests.map((r) => new URL(r.path, 'http://x').searchParams);
      expect(asked[0]?.get('startIndex')).toBe('1');
      expect(asked.map((q) => `${q.get('startIndex')}+${q.get('count')}`).sort((a, b) => parseInt(a) - parseInt(b))).toEqual(['1+5', '6+5', '11+5', '16+5', '21+5']);
    });

    it('reads the pages after the first concurrently, up to the client\'s concurrency', async () => {
      const slow = await extra({ latencyMs: 40 });
      for (let i = 1; i <= 40; i++) slow.seed({ userName: `p${i}@contoso.com`, displayName: `Page ${i}` });
      const users = await clientFor(slow, { pageSize: 5, concurrency: 4 }).listUsers();
      expect(users).toHaveLength(slow.users().length);
      expect(slow.requests).toHaveLength(Math.ceil(slow.users().length / 5));
      expect(slow.peakInFlight()).toBe(4);
    });

    it('when the server gives fewer users per page than asked, pages by what it gives and misses no one', async () => {
      // The server caps `count` at 4 (pageSize asks for 10): the first page says so, the rest follow it.
      const capped = await extra({ quirks: { maxCount: 4 } });
      for (let i = 1; i <= 17; i++) capped.seed({ userName: `cap${i}@contoso.com`, displayName: `Cap ${i}` });
      const users = await clientFor(capped, { pageSize: 10 }).listUsers();
      expect(users.map((u) => u.userName).sort()).toEqual(capped.users().map((u) => u.userName).sort());
      expect(capped.requests.map((r) => new URL(r.path, 'http://x').searchParams.get('startIndex')).sort((a, b) => Number(a) - Number(b))).toEqual(['1', '5', '9', '13', '17']);
    });

    it('ignores the startIndex in answers (TeamViewer\'s example answers 0)', async () => {
      const zero = await extra({ quirks: { startIndexZero: true } });
      for (let i = 1; i <= 7; i++) zero.seed({ userName: `z${i}@contoso.com`, displayName: `Zed ${i}` });
      const users = await clientFor(zero, { pageSize: 3 }).listUsers();
      expect(users.map((u) => u.userName)).toEqual(zero.users().map((u) => u.userName));
      expect(zero.requests).toHaveLength(3);
    });

    it('throws TEAMVIEWER_PROTOCOL rather than return a partial list when a page comes back empty too early', async () => {
      const lying = await extra({ quirks: { extraTotalResults: 4 } });
      for (let i = 1; i <= 5; i++) lying.seed({ userName: `l${i}@contoso.com`, displayName: `Liar ${i}` });
      const error = await failure(clientFor(lying, { pageSize: 2 }).listUsers());
      expect(error.code).toBe('TEAMVIEWER_PROTOCOL');
      expect(error.message).toMatch(/empty although totalResults is 9/);
      // The first page, then the four others at once (startIndex 3, 5, 7, 9): 5 holds one user, so 6
      // is asked for too; 6, 7 and 9 come back empty.
      expect(lying.requests).toHaveLength(6);
    });

    it('lists an empty company as []', async () => {
      const empty = await extra();
      expect(await clientFor(empty).listUsers()).toEqual([]);
    });
  });

  describe('filter escaping', () => {
    it('finds a userName containing " and \\ exactly, and nothing that merely resembles it', async () => {
      const tricky = 'o"brien\\x@contoso.com';
      em.seed({ userName: tricky, displayName: 'Tricky Name' });
      em.seed({ userName: 'o"brien@contoso.com', displayName: 'Near Miss' });
      em.seed({ userName: 'obrien\\x@contoso.com', displayName: 'Near Miss Two' });
      const found = await tv.findByUserName(tricky);
      expect(found.map((u) => u.userName)).toEqual([tricky]);
    });

    it('cannot be widened by a crafted userName', async () => {
      for (const crafted of ['x" or userName ne "', 'x" or userName co "@', '\\', '"', 'a\\" or "1" eq "1']) {
        em.resetRequests();
        expect(await tv.findByUserName(crafted), crafted).toEqual([]);
        expect(em.requests.map((r) => r.status), crafted).toEqual([200]);
      }
    });
  });

  describe('errors from real responses', () => {
    it('TEAMVIEWER_UNAUTHORIZED for a wrong or revoked token', async () => {
      const wrong = new TeamViewerClient({ baseUrl: em.url, token: 'not-the-right-token', baseDelayMs: 5 });
      const error = await failure(wrong.listUsers());
      expect(error).toMatchObject({ code: 'TEAMVIEWER_UNAUTHORIZED', status: 401, scimType: 'invalid_token', method: 'GET', path: '/Users' });
      expect(error.message).toMatch(/TeamViewer rejected the API token \(401 .*check TEAMVIEWER_API_TOKEN/);
      expect(wrong.stats).toMatchObject({ requests: 1, retries: 0 });
    });

    it('after a 401, calls already queued are not sent with the rejected token; later calls are', async () => {
      const revoked = new TeamViewerClient({ baseUrl: em.url, token: 'revoked-token-0001', baseDelayMs: 5, concurrency: 1 });
      em.resetRequests();
      const queued = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => revoked.createUser({ userName: `queued${i}@contoso.com`, displayName: `Queued ${i}`, active: true })));
      expect(queued.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'TEAMVIEWER_UNAUTHORIZED')).toBe(true);
      expect(em.requests).toHaveLength(1);
      await failure(revoked.listUsers());
      expect(em.requests).toHaveLength(2);
    });

    it('TEAMVIEWER_FORBIDDEN for a 403 that is not a rate limit (a missing permission)', async () => {
      em.inject({ kind: 'status', status: 403, times: 1 });
      const error = await failure(tv.createUser({ userName: 'noperm@contoso.com', displayName: 'No Perm', active: true }));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_FORBIDDEN', status: 403, userName: 'noperm@contoso.com' });
      expect(error.message).toMatch(/lacks a permission.*User management/);
      expect(em.requests).toHaveLength(1);
    });

    it('TEAMVIEWER_CONFLICT for an email taken in the company or outside it', async () => {
      await tv.createUser({ userName: 'taken@contoso.com', displayName: 'First Taker', active: true });
      for (const userName of ['taken@contoso.com', 'elsewhere@fabrikam.com']) {
        const error = await failure(tv.createUser({ userName, displayName: 'Second Taker', active: true }));
        expect(error).toMatchObject({ code: 'TEAMVIEWER_CONFLICT', status: 409, scimType: 'uniqueness', userName, method: 'POST' });
        expect(error.detail).toMatch(/already in use/);
      }
    });

    it('TEAMVIEWER_BAD_REQUEST for a name TeamViewer refuses', async () => {
      const error = await failure(tv.createUser({ userName: 'short@contoso.com', displayName: 'X', active: true }));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_BAD_REQUEST', status: 400, scimType: 'invalidValue' });
      expect(error.message).toMatch(/2 and 50 characters/);
    });

    it('TEAMVIEWER_NOT_FOUND when patching an unknown user', async () => {
      const error = await failure(tv.patchUser('u123', { active: false }));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_NOT_FOUND', status: 404, path: '/Users/u123' });
      expect(error.message).toMatch(/deleted in the TeamViewer Management Console/);
    });

    it('TEAMVIEWER_TRANSIENT for 5xx that outlast the retries', async () => {
      em.inject({ kind: 'status', status: 502, times: 3 });
      const client = clientFor(em, { maxRetries: 2 });
      const error = await failure(client.listUsers());
      expect(error).toMatchObject({ code: 'TEAMVIEWER_TRANSIENT', status: 502 });
      expect(em.requests.map((r) => r.status)).toEqual([502, 502, 502]);
      expect(client.stats).toMatchObject({ requests: 3, retries: 2, throttled: 0 });
    });

    it('TEAMVIEWER_PROTOCOL for a 2xx that is not what SCIM promises', async () => {
      em.inject({ kind: 'status', status: 200, times: 1 });
      const error = await failure(tv.listUsers());
      expect(error).toMatchObject({ code: 'TEAMVIEWER_PROTOCOL', status: 200 });
      expect(error.message).toMatch(/totalResults/);
    });

    it('never puts the token in a message, a detail, or a log line', async () => {
      const logger = memoryLogger();
      const client = clientFor(em, { logger, maxRetries: 1, timeoutMs: 100 });
      const errors: TeamViewerError[] = [];
      em.inject({ kind: 'rateLimit', times: 2 });
      errors.push(await failure(client.listUsers()));
      em.inject({ kind: 'timeout', times: 2 });
      errors.push(await failure(client.getUser('u1')));
      em.inject({ kind: 'reset', times: 1, method: 'POST' });
      errors.push(await failure(client.createUser({ userName: 'reset@contoso.com', displayName: 'Reset Person', active: true })));
      errors.push(await failure(new TeamViewerClient({ baseUrl: em.url, token: `${TOKEN}-old`, baseDelayMs: 5 }).testConnection()));
      // A server that echoes the token back in its error text.
      errors.push(errorFromResponse(
        { method: 'GET', path: '/Users', action: 'list the users', secret: TOKEN },
        { status: 400, bodyText: JSON.stringify({ scimType: 'invalidValue', detail: `bad token ${TOKEN} in Bearer ${TOKEN}` }) },
      ));
      expect(errors.map((e) => e.code)).toEqual(['TEAMVIEWER_THROTTLED', 'TEAMVIEWER_TIMEOUT', 'TEAMVIEWER_TRANSIENT', 'TEAMVIEWER_UNAUTHORIZED', 'TEAMVIEWER_BAD_REQUEST']);
      for (const error of errors) {
        expect(`${error.message} ${error.detail ?? ''} ${error.scimType ?? ''} ${error.stack ?? ''}`).not.toContain(TOKEN);
      }
      expect(errors[4]!.detail).toContain('[redacted]');
      expect(logger.lines.length).toBeGreaterThan(0);
      expect(JSON.stringify(logger.lines)).not.toContain(TOKEN);
    });
  });

  describe('retries', () => {
    it('backs off on 403 rate_limit_reached and succeeds', async () => {
      em.inject({ kind: 'rateLimit', times: 2 });
      const client = clientFor(em);
      expect((await client.findByUserName('admin@contoso.com')).map((u) => u.userName)).toEqual(['admin@contoso.com']);
      expect(em.requests.map((r) => r.status)).toEqual([403, 403, 200]);
      // Each retry went out after the last halving, so each throttled answer halved (4 → 2 → 1);
      // the clean answer at 1 in flight (full) raised it again.
      expect(client.stats).toEqual({ requests: 3, retries: 2, throttled: 2, concurrency: 2, peakConcurrency: 4, concurrencyLowered: 2 });
    });

    it('waits as long as Retry-After asks on 429', async () => {
      em.inject({ kind: 'status429', retryAfterSeconds: 1, times: 1 });
      const client = clientFor(em, { maxDelayMs: 5_000 });
      const started = Date.now();
      await client.listUsers();
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(client.stats).toMatchObject({ retries: 1, throttled: 1 });
    });

    it('never waits longer than maxDelayMs, whatever Retry-After says', async () => {
      em.inject({ kind: 'status429', retryAfterSeconds: 3600, times: 2 });
      const started = Date.now();
      await clientFor(em, { maxDelayMs: 30 }).listUsers();
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(em.requests.map((r) => r.status)).toEqual([429, 429, 200]);
    });

    it('honours Retry-After on a 503 too', async () => {
      // Backoff alone would wait at most 1 ms here; Retry-After (capped at maxDelayMs) waits 300.
      em.inject({ kind: 'status', status: 503, retryAfterSeconds: 1, times: 1 });
      const client = clientFor(em, { baseDelayMs: 1, maxDelayMs: 300 });
      const started = Date.now();
      await client.getUser('u1');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(client.stats).toMatchObject({ retries: 1, throttled: 0 });
    });

    it('rides out a burst of 503s', async () => {
      em.inject({ kind: 'status', status: 503, times: 4 });
      const users = await clientFor(em).listUsers();
      expect(users.length).toBe(em.users().length);
      expect(em.requests.map((r) => r.status)).toEqual([503, 503, 503, 503, 200]);
    });

    it('gives up after maxRetries with TEAMVIEWER_THROTTLED', async () => {
      em.inject({ kind: 'rateLimit', retryAfterSeconds: 0, times: 4 });
      const client = clientFor(em, { maxRetries: 3 });
      const error = await failure(client.listUsers());
      expect(error).toMatchObject({ code: 'TEAMVIEWER_THROTTLED', status: 403, scimType: 'rate_limit_reached', retryAfterSeconds: 0 });
      expect(em.requests).toHaveLength(4);
      expect(client.stats).toEqual({ requests: 4, retries: 3, throttled: 4, concurrency: 1, peakConcurrency: 4, concurrencyLowered: 2 });
    });

    it('keeps under a real per-second rate limit by backing off, and finishes every call', async () => {
      const limited = await extra({ rateLimitPerSecond: 8 });
      for (let i = 0; i < 12; i++) limited.seed({ userName: `r${i}@contoso.com`, displayName: `Rate ${i}` });
      const client = clientFor(limited, { concurrency: 4, maxRetries: 20, baseDelayMs: 50, maxDelayMs: 400 });
      const ids = limited.users().map((u) => u.id);
      const users = await Promise.all(ids.map((id) => client.getUser(id)));
      expect(users.map((u) => u?.id)).toEqual(ids);
      expect(client.stats.throttled).toBeGreaterThan(0);
      expect(limited.requests.filter((r) => r.status === 200)).toHaveLength(12);
    });

    it('times out a hung GET as TEAMVIEWER_TIMEOUT, and retries it', async () => {
      em.inject({ kind: 'timeout', times: 1 });
      const once = clientFor(em, { timeoutMs: 100, maxRetries: 0 });
      const error = await failure(once.listUsers());
      expect(error).toMatchObject({ code: 'TEAMVIEWER_TIMEOUT', detail: 'timeout', mayHaveApplied: false, timeoutMs: 100 });
      expect(error.message).toMatch(/did not answer SCIM GET \/Users within 100 ms while trying to list the users/);

      em.inject({ kind: 'timeout', times: 1 });
      const retrying = clientFor(em, { timeoutMs: 100 });
      expect((await retrying.listUsers()).length).toBe(em.users().length);
      expect(retrying.stats.retries).toBe(1);
    });

    it('does not retry a create whose answer was lost: mayHaveApplied tells the caller to look first', async () => {
      em.inject({ kind: 'timeout', times: 1, method: 'POST', applyFirst: true });
      const client = clientFor(em, { timeoutMs: 100 });
      const error = await failure(client.createUser({ userName: 'maybe@contoso.com', displayName: 'Maybe Made', active: true }));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_TIMEOUT', mayHaveApplied: true, userName: 'maybe@contoso.com', method: 'POST' });
      expect(em.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect((await client.findByUserName('maybe@contoso.com')).map((u) => u.userName)).toEqual(['maybe@contoso.com']);

      em.inject({ kind: 'reset', times: 1, method: 'POST' });
      const reset = await failure(client.createUser({ userName: 'dropped@contoso.com', displayName: 'Dropped Call', active: true }));
      expect(reset).toMatchObject({ code: 'TEAMVIEWER_TRANSIENT', mayHaveApplied: true });
      expect(client.stats.retries).toBe(0);
    });

    it('retries a create that got a 503 (it was not applied)', async () => {
      em.inject({ kind: 'status', status: 503, times: 1, method: 'POST' });
      const user = await tv.createUser({ userName: 'retried@contoso.com', displayName: 'Retried Create', active: true });
      expect(user.userName).toBe('retried@contoso.com');
      expect(em.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['POST 503', 'POST 201']);
    });

    it('retries a PATCH whose connection dropped (a replace can be repeated)', async () => {
      const created = await tv.createUser({ userName: 'patchme@contoso.com', displayName: 'Patch Me', active: true });
      em.inject({ kind: 'reset', times: 1, method: 'PATCH' });
      expect((await tv.deactivate(created.id)).active).toBe(false);
    });
  });

  describe('concurrency', () => {
    it('never has more requests in flight than configured, however many calls start at once', async () => {
      const slow = await extra({ latencyMs: 25 });
      for (let i = 0; i < 10; i++) slow.seed({ userName: `c${i}@contoso.com`, displayName: `Conc ${i}` });
      const client = clientFor(slow, { concurrency: 3, pageSize: 2 });
      const calls: Array<Promise<unknown>> = [];
      for (const user of slow.users()) {
        calls.push(client.getUser(user.id), client.findByUserName(user.userName));
      }
      calls.push(client.listUsers(), client.testConnection());
      await Promise.all(calls);
      expect(slow.requests.length).toBeGreaterThan(20);
      expect(slow.peakInFlight()).toBe(3);
    });

    it('starts at four at a time by default (it rises only after four clean answers)', async () => {
      const slow = await extra({ latencyMs: 25 });
      const client = clientFor(slow);
      await Promise.all(Array.from({ length: 5 }, () => client.getUser('u1')));
      expect(slow.peakInFlight()).toBe(4);
      expect(client.stats).toMatchObject({ concurrency: 4, peakConcurrency: 4 });
    });
  });

  describe('connection test and token owner', () => {
    it('passes against TeamViewer and fails with a typed error on a wrong token or a missing permission', async () => {
      await tv.testConnection();
      const filter = new URL(em.requests[0]!.path, 'http://x').searchParams.get('filter');
      expect(filter).toMatch(/^userName eq "[0-9a-f-]{36}"$/);

      const wrong = new TeamViewerClient({ baseUrl: em.url, token: 'nope-nope-nope' });
      expect((await failure(wrong.testConnection())).code).toBe('TEAMVIEWER_UNAUTHORIZED');
      em.inject({ kind: 'status', status: 403, times: 1 });
      expect((await failure(tv.testConnection())).code).toBe('TEAMVIEWER_FORBIDDEN');
    });

    it('reads the token owner from the Web API next to the SCIM base', async () => {
      const owner = await tv.getTokenOwner();
      expect(owner).toEqual({ id: expect.stringMatching(/^u\d+$/), userName: 'admin@contoso.com', name: 'Ada Admin' });
      expect(em.users().find((u) => u.id === owner!.id)?.userName).toBe('admin@contoso.com');
      expect(em.requests.map((r) => r.path)).toEqual(['/api/v1/account']);
    });

    it('answers null when the token has no owning account', async () => {
      const bare = await extra();
      expect(await clientFor(bare).getTokenOwner()).toBeNull();
    });
  });

  describe('configuration', () => {
    it('refuses plain http to a non-loopback host', () => {
      for (const baseUrl of ['http://webapi.teamviewer.com/scim/v2', 'http://10.0.0.5/scim/v2', 'ftp://127.0.0.1/scim/v2']) {
        expect(() => new TeamViewerClient({ baseUrl, token: TOKEN }), baseUrl).toThrow(expect.objectContaining({ code: 'INSECURE_URL' }));
      }
      for (const baseUrl of ['https://webapi.teamviewer.com/scim/v2', 'http://127.0.0.1:9/scim/v2', 'http://localhost:9/scim/v2', 'http://[::1]:9/scim/v2']) {
        expect(() => new TeamViewerClient({ baseUrl, token: TOKEN }), baseUrl).not.toThrow();
      }
    });

    it('refuses a missing or mangled token without repeating it', () => {
      const mangled = `${TOKEN}\n`;
      const error = (() => {
        try {
          new TeamViewerClient({ baseUrl: em.url, token: mangled });
        } catch (e) {
          return e as TeamViewerError;
        }
        throw new Error('expected the constructor to throw');
      })();
      expect(error.code).toBe('TEAMVIEWER_UNAUTHORIZED');
      expect(error.message).toMatch(/copy TEAMVIEWER_API_TOKEN again/);
      expect(error.message).not.toContain(TOKEN);
      expect(() => new TeamViewerClient({ baseUrl: em.url, token: '' })).toThrow(/set TEAMVIEWER_API_TOKEN/);
    });
  });
});
