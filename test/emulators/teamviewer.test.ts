import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTeamViewerEmulator, type TeamViewerEmulator } from './teamviewer';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const SSO = 'urn:ietf:params:scim:schemas:extension:teamviewer:1.0:SsoUser';

type Json = Record<string, any>;

function client(em: TeamViewerEmulator) {
  const send = async (method: string, path: string, body?: unknown, token: string | null = em.token) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/scim+json' };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${em.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json };
  };
  const create = (user: Json) => send('POST', '/Users', { schemas: [USER], ...user });
  const list = (query: string) => send('GET', `/Users?${query}`);
  const filter = (f: string) => list(`filter=${encodeURIComponent(f)}`);
  const patch = (id: string, operations: Json[], schema = PATCH_OP) => send('PATCH', `/Users/${id}`, { schemas: [schema], Operations: operations });
  return { send, create, list, filter, patch };
}

describe('TeamViewer emulator', () => {
  let em: TeamViewerEmulator;
  let tv: ReturnType<typeof client>;

  beforeAll(async () => {
    em = await startTeamViewerEmulator({
      token: 'emulator-token-123456',
      tokenOwner: { userName: 'owner@contoso.com', name: 'Olivia Owner' },
      externalEmails: ['taken@elsewhere.com'],
    });
    tv = client(em);
  });
  afterAll(() => em.close());

  describe('auth and Web API', () => {
    it('answers 401 in the Web API error shape without a token or with a wrong one', async () => {
      for (const token of [null, 'wrong-token']) {
        const res = await tv.send('GET', '/Users', undefined, token);
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ error: 'invalid_token' });
        expect(typeof res.body.error_description).toBe('string');
      }
    });

    it('revokes the old token when a new one is set', async () => {
      const old = em.token;
      em.setToken('rotated-token-654321');
      try {
        expect((await tv.send('GET', '/Users', undefined, old)).status).toBe(401);
        expect((await tv.send('GET', '/Users', undefined, 'rotated-token-654321')).status).toBe(200);
      } finally {
        em.setToken(old);
      }
    });

    it('pings with token_valid true or false', async () => {
      const ping = async (token: string) => (await fetch(`${em.apiUrl}/ping`, { headers: { Authorization: `Bearer ${token}` } })).json();
      expect(await ping(em.token)).toEqual({ token_valid: true });
      expect(await ping('nope-nope')).toEqual({ token_valid: false });
    });

    it('returns the token owner from /account, seeded as a user', async () => {
      const res = await fetch(`${em.apiUrl}/account`, { headers: { Authorization: `Bearer ${em.token}` } });
      const body = (await res.json()) as Json;
      expect(res.status).toBe(200);
      expect(body).toEqual({ userid: expect.stringMatching(/^u\d+$/), name: 'Olivia Owner', email: 'owner@contoso.com' });
      expect(em.users().find((u) => u.id === body.userid)?.userName).toBe('owner@contoso.com');
    });

    it('answers 404 from /account when no user owns the token', async () => {
      const bare = await startTeamViewerEmulator();
      try {
        const res = await fetch(`${bare.apiUrl}/account`, { headers: { Authorization: `Bearer ${bare.token}` } });
        expect(res.status).toBe(404);
      } finally {
        await bare.close();
      }
    });
  });

  describe('create and read', () => {
    it('creates a user the way TeamViewer returns it, keeping create-only attributes to itself', async () => {
      const res = await tv.create({
        schemas: [USER, SSO],
        userName: 'ada.lovelace@contoso.com',
        displayName: 'Ada King Lovelace',
        emails: [{ value: 'ignored@contoso.com', primary: true }],
        active: true,
        password: 'S3cret!pass',
        preferredLanguage: 'de',
        externalId: 'entra-1',
        [SSO]: { ssoCustomerId: 'sso-42' },
      });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        schemas: [USER],
        id: expect.stringMatching(/^u\d+$/),
        userName: 'ada.lovelace@contoso.com',
        name: { formatted: 'Ada King Lovelace', givenName: 'Ada', familyName: 'King Lovelace' },
        displayName: 'Ada King Lovelace',
        emails: [{ primary: true, value: 'ada.lovelace@contoso.com' }],
        active: true,
      });
      const stored = em.users().find((u) => u.id === res.body.id)!;
      expect(stored).toMatchObject({ preferredLanguage: 'de', ssoCustomerId: 'sso-42', hasPassword: true, createdBy: 'scim', email: 'ada.lovelace@contoso.com' });

      const read = await tv.send('GET', `/Users/${res.body.id}`);
      expect(read.body).toEqual(res.body);
    });

    it('takes the name by precedence: displayName, then name.formatted, then givenName + familyName', async () => {
      const a = await tv.create({ userName: 'p1@contoso.com', displayName: 'Shown Name', name: { formatted: 'Formatted Name', givenName: 'G', familyName: 'F' } });
      const b = await tv.create({ userName: 'p2@contoso.com', name: { formatted: 'Formatted Name', givenName: 'G', familyName: 'F' } });
      const c = await tv.create({ userName: 'p3@contoso.com', name: { givenName: 'Grace', familyName: 'Hopper' } });
      expect([a.body.displayName, b.body.displayName, c.body.displayName]).toEqual(['Shown Name', 'Formatted Name', 'Grace Hopper']);
    });

    it('derives null name parts from a name without a space', async () => {
      const res = await tv.create({ userName: 'cher@contoso.com', displayName: 'Cher' });
      expect(res.body.name).toEqual({ formatted: 'Cher', givenName: null, familyName: null });
    });

    it('uses emails when userName is missing, and defaults active and preferredLanguage', async () => {
      const res = await tv.create({ emails: [{ value: 'mail.only@contoso.com' }], displayName: 'Mail Only' });
      expect(res.status).toBe(201);
      expect(res.body.userName).toBe('mail.only@contoso.com');
      expect(res.body.active).toBe(true);
      expect(em.users().find((u) => u.id === res.body.id)).toMatchObject({ preferredLanguage: 'en', hasPassword: false, ssoCustomerId: null });
    });

    it('rejects a body without the core User schema, a bad name length, or a missing userName with 400', async () => {
      const noSchema = await tv.send('POST', '/Users', { schemas: ['urn:other'], userName: 'x1@contoso.com', displayName: 'X One' });
      const tooShort = await tv.create({ userName: 'x2@contoso.com', displayName: 'X' });
      const tooLong = await tv.create({ userName: 'x3@contoso.com', displayName: 'Y'.repeat(51) });
      const noName = await tv.create({ userName: 'x4@contoso.com' });
      const noLogin = await tv.create({ displayName: 'No Login' });
      const notEmail = await tv.create({ userName: 'not an email', displayName: 'Not Email' });
      for (const res of [noSchema, tooShort, tooLong, noName, noLogin, notEmail]) {
        expect(res.status).toBe(400);
        expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
        expect(res.body.status).toBe('400');
      }
      expect((await tv.create({ userName: 'x5@contoso.com', displayName: 'Z'.repeat(50) })).status).toBe(201);
      expect(em.users().map((u) => u.userName)).not.toContain('x2@contoso.com');
    });

    it('refuses a taken email (any case) or one registered outside the company with 409 uniqueness', async () => {
      await tv.create({ userName: 'dup@contoso.com', displayName: 'Dup One' });
      for (const userName of ['dup@contoso.com', 'DUP@contoso.com', 'taken@elsewhere.com', 'owner@contoso.com']) {
        const res = await tv.create({ userName, displayName: 'Dup Two' });
        expect(res.status, userName).toBe(409);
        expect(res.body).toMatchObject({ status: '409', scimType: 'uniqueness' });
      }
    });

    it('answers 404 for an unknown id and 405 for DELETE', async () => {
      expect((await tv.send('GET', '/Users/u999')).status).toBe(404);
      const created = await tv.create({ userName: 'keep@contoso.com', displayName: 'Keep Me' });
      const del = await tv.send('DELETE', `/Users/${created.body.id}`);
      expect(del.status).toBe(405);
      expect(del.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
      expect((await tv.send('GET', `/Users/${created.body.id}`)).status).toBe(200);
    });
  });

  describe('filters and paging', () => {
    let f: TeamViewerEmulator;
    let fv: ReturnType<typeof client>;
    beforeAll(async () => {
      f = await startTeamViewerEmulator();
      fv = client(f);
      f.seed({ userName: 'alice@contoso.com', displayName: 'Alice Smith' });
      f.seed({ userName: 'Bob@contoso.com', displayName: 'Bob Jones' });
      f.seed({ userName: 'carol@fabrikam.com', displayName: 'Carol Smith' });
      f.seed({ userName: 'q"uo\\te@contoso.com', displayName: 'Quote Person' });
      f.seed({ userName: 'dave@contoso.com', displayName: 'Dave Null', active: false });
    });
    afterAll(() => f.close());

    const names = async (filter: string) => {
      const res = await fv.filter(filter);
      expect(res.status, filter).toBe(200);
      return (res.body.Resources as Json[]).map((r) => r.userName);
    };

    it('supports eq ne co sw ew, case-sensitively, on userName, emails.value, name and displayName', async () => {
      expect(await names('userName eq "alice@contoso.com"')).toEqual(['alice@contoso.com']);
      expect(await names('userName eq "bob@contoso.com"')).toEqual([]);
      expect(await names('userName eq "Bob@contoso.com"')).toEqual(['Bob@contoso.com']);
      expect(await names('userName ne "alice@contoso.com"')).toHaveLength(4);
      expect(await names('userName co "fabrikam"')).toEqual(['carol@fabrikam.com']);
      expect(await names('userName sw "ali"')).toEqual(['alice@contoso.com']);
      expect(await names('emails.value ew "@fabrikam.com"')).toEqual(['carol@fabrikam.com']);
      expect(await names('displayName co "Smith"')).toEqual(['alice@contoso.com', 'carol@fabrikam.com']);
      expect(await names('displayName co "smith"')).toEqual([]);
      expect(await names('name eq "Bob Jones"')).toEqual(['Bob@contoso.com']);
    });

    it('reads \\" and \\\\ escapes in values', async () => {
      expect(await names('userName eq "q\\"uo\\\\te@contoso.com"')).toEqual(['q"uo\\te@contoso.com']);
    });

    it('answers 200 with an empty list when nothing matches', async () => {
      const res = await fv.filter('userName eq "3f2c7c1e-0000-4000-8000-000000000000"');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ totalResults: 0, Resources: [] });
    });

    it('rejects anything else with 400 invalidFilter', async () => {
      for (const filter of [
        'active eq "true"',
        'userName gt "a"',
        'userName eq alice@contoso.com',
        'userName eq "a" or userName ne "b"',
        'userName eq "unterminated',
        'userName eq "bad \\n escape"',
        'userName eq',
        '',
      ]) {
        const res = await fv.filter(filter);
        expect(res.status, filter).toBe(400);
        expect(res.body.scimType, filter).toBe('invalidFilter');
      }
    });

    it('pages with a 1-based startIndex and count, echoes startIndex, and lists everything without count', async () => {
      const all = await fv.list('');
      expect(all.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 5, startIndex: 1, itemsPerPage: 5 });
      expect(all.body.Resources).toHaveLength(5);
      expect(all.body.Resources.every((r: Json) => r.schemas === undefined)).toBe(true);

      const page = await fv.list('startIndex=2&count=2');
      expect(page.body).toMatchObject({ totalResults: 5, startIndex: 2, itemsPerPage: 2 });
      expect(page.body.Resources.map((r: Json) => r.userName)).toEqual(['Bob@contoso.com', 'carol@fabrikam.com']);

      const rest = await fv.list('startIndex=4');
      expect(rest.body.Resources.map((r: Json) => r.userName)).toEqual(['q"uo\\te@contoso.com', 'dave@contoso.com']);
      const past = await fv.list('startIndex=9&count=3');
      expect(past.body).toMatchObject({ totalResults: 5, Resources: [] });
      const filtered = await fv.list(`filter=${encodeURIComponent('displayName co "Smith"')}&startIndex=2&count=1`);
      expect(filtered.body).toMatchObject({ totalResults: 2, Resources: [{ userName: 'carol@fabrikam.com' }] });
      expect((await fv.list('count=abc')).status).toBe(400);
    });

    it('answers startIndex 0 when told to (quirk of TeamViewer\'s own example)', async () => {
      const quirky = await startTeamViewerEmulator({ quirks: { startIndexZero: true } });
      try {
        quirky.seed({ userName: 'one@contoso.com' });
        const res = await client(quirky).list('startIndex=1&count=1');
        expect(res.body).toMatchObject({ startIndex: 0, totalResults: 1 });
      } finally {
        await quirky.close();
      }
    });

    it('removes a user as the console would', async () => {
      const dave = f.users().find((u) => u.userName === 'dave@contoso.com')!;
      f.remove(dave.id);
      expect((await fv.send('GET', `/Users/${dave.id}`)).status).toBe(404);
      expect((await fv.list('')).body.totalResults).toBe(4);
    });
  });

  describe('PATCH and PUT', () => {
    const fresh = async (userName: string, displayName = 'Jane Doe') => (await tv.create({ userName, displayName })).body.id as string;

    it('replaces with dot paths: name parts recompose the name, emails.value changes the login too', async () => {
      const id = await fresh('jane@contoso.com');
      const res = await tv.patch(id, [
        { op: 'replace', path: 'name.givenName', value: 'Janet' },
        { op: 'replace', path: 'name.familyName', value: 'Smith Jones' },
        { op: 'replace', path: 'emails.value', value: 'janet@contoso.com' },
        { op: 'Replace', path: 'active', value: false },
      ]);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        schemas: [USER],
        userName: 'janet@contoso.com',
        displayName: 'Janet Smith Jones',
        name: { formatted: 'Janet Smith Jones', givenName: 'Janet', familyName: 'Smith Jones' },
        emails: [{ primary: true, value: 'janet@contoso.com' }],
        active: false,
      });
    });

    it('replaces without a path (a partial User), and accepts the PatchOp URN from TeamViewer\'s docs', async () => {
      const id = await fresh('noPath@contoso.com');
      const res = await tv.patch(id, [{ op: 'replace', value: { displayName: 'New Name', active: false, userName: 'nopath2@contoso.com' } }],
        'urn:ietf:params:scim:schemas:core:2.0:PatchOp');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ displayName: 'New Name', active: false, userName: 'nopath2@contoso.com' });
    });

    it('refuses other ops, unknown paths, bad schemas, bad names and taken emails', async () => {
      const id = await fresh('strict@contoso.com');
      const other = await fresh('other@contoso.com');
      const cases: Array<[Json[], number, string | undefined]> = [
        [[{ op: 'add', path: 'displayName', value: 'X Y' }], 400, undefined],
        [[{ op: 'remove', path: 'displayName' }], 400, undefined],
        [[{ op: 'replace', path: 'title', value: 'Boss' }], 400, 'invalidPath'],
        [[{ op: 'replace', path: 'displayName', value: 'X' }], 400, undefined],
        [[{ op: 'replace', path: 'userName', value: 'OTHER@contoso.com' }], 409, 'uniqueness'],
        [[{ op: 'replace', path: 'emails.value', value: 'taken@elsewhere.com' }], 409, 'uniqueness'],
        [[], 400, undefined],
      ];
      for (const [ops, status, scimType] of cases) {
        const res = await tv.patch(id, ops);
        expect(res.status, JSON.stringify(ops)).toBe(status);
        if (scimType) expect(res.body.scimType).toBe(scimType);
      }
      expect((await tv.patch(id, [{ op: 'replace', path: 'active', value: false }], 'urn:nope')).status).toBe(400);
      expect((await tv.patch('u424242', [{ op: 'replace', path: 'active', value: false }])).status).toBe(404);
      const unchanged = await tv.send('GET', `/Users/${id}`);
      expect(unchanged.body).toMatchObject({ userName: 'strict@contoso.com', displayName: 'Jane Doe', active: true });
      expect(other).toMatch(/^u\d+$/);
    });

    it('replaces the whole user with PUT', async () => {
      const id = await fresh('put@contoso.com');
      await tv.patch(id, [{ op: 'replace', path: 'active', value: false }]);
      const res = await tv.send('PUT', `/Users/${id}`, { schemas: [USER], userName: 'put2@contoso.com', name: { givenName: 'Put', familyName: 'Two' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ userName: 'put2@contoso.com', displayName: 'Put Two', active: true });
    });
  });

  describe('faults, rate limit and bookkeeping', () => {
    it('injects 5xx with a SCIM error body, only on matching requests and only `times` times', async () => {
      em.inject({ kind: 'status', status: 503, times: 2, method: 'GET', pathIncludes: '/Users' });
      expect((await tv.send('POST', '/Users', { schemas: [USER], userName: 'f1@contoso.com', displayName: 'Fault One' })).status).toBe(201);
      const first = await tv.list('count=1');
      expect(first.status).toBe(503);
      expect(first.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '503' });
      expect((await tv.list('count=1')).status).toBe(503);
      expect((await tv.list('count=1')).status).toBe(200);
    });

    it('injects 429 with Retry-After and 403 rate_limit_reached', async () => {
      em.inject({ kind: 'status429', retryAfterSeconds: 7, times: 1 });
      const tooMany = await tv.list('count=1');
      expect(tooMany.status).toBe(429);
      expect(tooMany.headers.get('retry-after')).toBe('7');
      em.inject({ kind: 'rateLimit', times: 1 });
      const limited = await tv.list('count=1');
      expect(limited.status).toBe(403);
      expect(limited.body).toMatchObject({ error: 'rate_limit_reached' });
    });

    it('drops the connection on reset, and holds it on timeout until the client gives up', async () => {
      em.inject({ kind: 'reset', times: 1 });
      await expect(fetch(`${em.url}/Users`, { headers: { Authorization: `Bearer ${em.token}` } })).rejects.toThrow();
      em.inject({ kind: 'timeout', times: 1 });
      const started = Date.now();
      await expect(fetch(`${em.url}/Users`, { headers: { Authorization: `Bearer ${em.token}` }, signal: AbortSignal.timeout(150) }))
        .rejects.toMatchObject({ name: 'TimeoutError' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    });

    it('can carry a write out before losing its answer', async () => {
      em.inject({ kind: 'reset', times: 1, method: 'POST', applyFirst: true });
      await expect(tv.create({ userName: 'landed@contoso.com', displayName: 'Landed Anyway' })).rejects.toThrow();
      expect(em.users().map((u) => u.userName)).toContain('landed@contoso.com');
    });

    it('closes while a request is being held', async () => {
      const held = await startTeamViewerEmulator();
      held.inject({ kind: 'timeout', times: 1 });
      const pending = fetch(`${held.url}/Users`, { headers: { Authorization: `Bearer ${held.token}` } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await held.close();
      await expect(pending).rejects.toThrow();
    });

    it('rate-limits per token over a sliding second with 403 rate_limit_reached', async () => {
      const limited = await startTeamViewerEmulator({ rateLimitPerSecond: 3 });
      try {
        const lv = client(limited);
        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await lv.list('count=1')).status);
        expect(statuses).toEqual([200, 200, 200, 403]);
        const body = (await lv.list('count=1')).body;
        expect(body).toMatchObject({ error: 'rate_limit_reached' });
        // Another token has its own window (it is invalid here, so it is refused with 401, not 403).
        expect((await lv.send('GET', '/Users', undefined, 'someone-else')).status).toBe(401);
        await new Promise((resolve) => setTimeout(resolve, 1050));
        expect((await lv.list('count=1')).status).toBe(200);
      } finally {
        await limited.close();
      }
    });

    it('logs requests, counts writes, and measures requests in flight', async () => {
      const slow = await startTeamViewerEmulator({ latencyMs: 60 });
      try {
        const sv = client(slow);
        await Promise.all([sv.list(''), sv.list(''), sv.list('')]);
        expect(slow.peakInFlight()).toBe(3);
        await sv.create({ userName: 'w@contoso.com', displayName: 'Write Once' });
        await sv.send('DELETE', '/Users/u1');
        expect(slow.writes()).toBe(2);
        expect(slow.requests.at(-1)).toEqual({ method: 'DELETE', path: '/scim/v2/Users/u1', status: 405 });
        expect(slow.requests[0]).toEqual({ method: 'GET', path: '/scim/v2/Users', status: 200 });
        slow.resetRequests();
        expect(slow.requests).toEqual([]);
        expect(slow.writes()).toBe(0);
        await sv.list('count=1');
        expect(slow.peakInFlight()).toBe(1);
      } finally {
        await slow.close();
      }
    });
  });
});
