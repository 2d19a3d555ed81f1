import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGraphEmulator, type EmulatedTenant, type GraphEmulator } from './graph';

const TOKEN = 'good-token-123456';
const id = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const SP = id(900);
const DEFAULT_ROLE = '00000000-0000-0000-0000-000000000000';

function user(n: number, extra: Record<string, unknown> = {}): EmulatedTenant['users'][number] {
  return {
    id: id(n),
    userPrincipalName: `user${n}@contoso.test`,
    displayName: `User ${n}`,
    givenName: 'User',
    surname: String(n),
    mail: `user${n}@contoso.test`,
    accountEnabled: true,
    department: 'Support',
    ...extra,
  };
}

function tenant(): EmulatedTenant {
  return {
    servicePrincipals: [{ id: SP, appId: id(901), displayName: 'TeamViewer' }, { id: id(950), appId: id(951), displayName: 'Robot' }],
    users: [1, 2, 3, 4, 5].map((n) => user(n)).concat([user(6, { userPrincipalName: "o'brien@contoso.test", accountEnabled: false })]),
    groups: [
      { id: id(100), displayName: 'Support', members: [id(1), id(2), id(101), id(950)] },
      { id: id(101), displayName: 'Nested', members: [id(3), id(1)] },
    ],
    assignments: [1, 2, 3, 4, 5].map((n) => ({
      id: `assignment-${n}`, resourceId: SP, principalId: id(n), principalType: 'User' as const, appRoleId: DEFAULT_ROLE,
    })),
  };
}

describe('Graph emulator', () => {
  let graph: GraphEmulator;

  beforeAll(async () => {
    graph = await startGraphEmulator({ tenant: tenant(), pageSize: 2, isValidToken: (token) => token === TOKEN });
  });
  afterAll(async () => {
    await graph.close();
  });
  beforeEach(() => {
    graph.tenant = tenant();
    graph.clearFaults();
    graph.resetRequests();
    graph.nextLinkOrigin = undefined;
  });

  const get = async (pathOrUrl: string, headers: Record<string, string> = {}) => {
    const url = pathOrUrl.startsWith('https://') ? pathOrUrl : `${graph.url}/v1.0${pathOrUrl}`;
    const response = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}`, ...headers } });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
  };
  const batch = async (requests: unknown[]) => {
    const response = await fetch(`${graph.url}/v1.0/$batch`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ requests }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  async function all(path: string, headers: Record<string, string> = {}): Promise<{ items: any[]; pages: number }> {
    const items: any[] = [];
    let next: string | undefined = path;
    let pages = 0;
    while (next) {
      const { status, body } = await get(next, headers);
      expect(status).toBe(200);
      items.push(...body.value);
      pages++;
      next = body['@odata.nextLink'];
    }
    return { items, pages };
  }

  describe('paging', () => {
    it('When assignments exceed the page size, then every page but the last links absolutely to the next', async () => {
      const first = await get(`/servicePrincipals/${SP}/appRoleAssignedTo`);
      expect(first.body.value).toHaveLength(2);
      const next = first.body['@odata.nextLink'] as string;
      expect(next.startsWith(`${graph.url}/v1.0/servicePrincipals/${SP}/appRoleAssignedTo?`)).toBe(true);
      expect(new URL(next).searchParams.get('$skiptoken')).toMatch(/^[A-Za-z0-9_-]{10,}$/);

      const { items, pages } = await all(`/servicePrincipals/${SP}/appRoleAssignedTo`);
      expect(pages).toBe(3);
      expect(items.map((a) => a.principalId)).toEqual([1, 2, 3, 4, 5].map(id));
      expect(items[0]).toMatchObject({ principalType: 'User', appRoleId: DEFAULT_ROLE, resourceId: SP, principalDisplayName: 'User 1' });
    });

    it('When $top is below the server page size it is honoured, above it the server caps it, above 999 it is refused', async () => {
      expect((await all(`/servicePrincipals/${SP}/appRoleAssignedTo?$top=1`)).pages).toBe(5);
      expect((await all(`/servicePrincipals/${SP}/appRoleAssignedTo?$top=999`)).pages).toBe(3);
      const tooBig = await get(`/servicePrincipals/${SP}/appRoleAssignedTo?$top=1000`);
      expect(tooBig.status).toBe(400);
    });

    it('When a nextLink keeps $select, then later pages are projected too; a skiptoken used on another path is refused', async () => {
      const first = await get(`/users?$select=id,accountEnabled`);
      const second = await get(first.body['@odata.nextLink']);
      expect(Object.keys(second.body.value[0]).sort()).toEqual(['accountEnabled', 'id']);
      const token = new URL(first.body['@odata.nextLink']).searchParams.get('$skiptoken') as string;
      const misused = await get(`/groups/${id(100)}/members/microsoft.graph.user?$skiptoken=${token}`);
      expect(misused.status).toBe(400);
      expect(misused.body.error.code).toBe('Request_BadRequest');
    });

    it('When nextLinkOrigin is set, then nextLinks point at that origin', async () => {
      graph.nextLinkOrigin = 'https://graph.attacker.test';
      const first = await get(`/servicePrincipals/${SP}/appRoleAssignedTo`);
      expect(first.body['@odata.nextLink']).toMatch(/^https:\/\/graph\.attacker\.test\/v1\.0\/servicePrincipals\//);
    });
  });

  describe('resources', () => {
    it('When a service principal exists it is returned, when not the 404 has Graph\'s error shape', async () => {
      expect((await get(`/servicePrincipals/${SP}?$select=id,displayName`)).body).toEqual({ id: SP, displayName: 'TeamViewer' });
      const missing = await get(`/servicePrincipals/${id(999)}/appRoleAssignedTo`);
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatchObject({ code: 'Request_ResourceNotFound' });
      expect(missing.body.error.message).toContain(id(999));
    });

    it('When users are read without $select, then accountEnabled and department are missing, as in Graph', async () => {
      const plain = await get(`/users/${id(1)}`);
      expect(plain.body).not.toHaveProperty('accountEnabled');
      expect(plain.body).not.toHaveProperty('department');
      expect(plain.body.userPrincipalName).toBe('user1@contoso.test');
      const selected = await get(`/users/${id(6)}?$select=id,accountEnabled,department`);
      expect(selected.body).toEqual({ id: id(6), accountEnabled: false, department: 'Support' });
      expect((await get(`/users/o'brien@contoso.test?$select=id`)).body).toEqual({ id: id(6) });
      expect((await get(`/users/${id(77)}`)).status).toBe(404);
    });

    it('When direct members are listed, then nested groups and service principals are left out; transitive members expand them', async () => {
      const direct = await all(`/groups/${id(100)}/members/microsoft.graph.user?$select=id`);
      expect(direct.items.map((u) => u.id)).toEqual([id(1), id(2)]);
      const transitive = await all(`/groups/${id(100)}/transitiveMembers/microsoft.graph.user?$select=id`, { ConsistencyLevel: 'eventual' });
      expect(transitive.items.map((u) => u.id)).toEqual([id(1), id(2), id(3)]);
      expect((await get(`/groups/${id(555)}/members/microsoft.graph.user`)).status).toBe(404);
    });

    it('When $count=true is asked, then it needs ConsistencyLevel: eventual and returns the total', async () => {
      const without = await get(`/groups/${id(100)}/members/microsoft.graph.user?$count=true`);
      expect(without.status).toBe(400);
      const withHeader = await get(`/groups/${id(100)}/members/microsoft.graph.user?$count=true`, { ConsistencyLevel: 'eventual' });
      expect(withHeader.body['@odata.count']).toBe(2);
    });

    it('When users are filtered by id in (...) or by a quoted value, then only those come back; over 15 values are refused', async () => {
      const filter = encodeURIComponent(`id in ('${id(1)}','${id(5)}','${id(77)}')`);
      expect((await all(`/users?$filter=${filter}&$select=id`)).items.map((u) => u.id)).toEqual([id(1), id(5)]);
      const quoted = encodeURIComponent(`userPrincipalName eq 'O''Brien@contoso.test'`);
      expect((await get(`/users?$filter=${quoted}&$select=id`)).body.value).toEqual([{ id: id(6) }]);
      const many = encodeURIComponent(`id in (${Array.from({ length: 16 }, (_, i) => `'${id(i)}'`).join(',')})`);
      const refused = await get(`/users?$filter=${many}`);
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('Request_UnsupportedQuery');
    });

    it('When the tenant changes between requests, then the next request sees the change', async () => {
      graph.tenant.users[0]!.displayName = 'Renamed';
      expect((await get(`/users/${id(1)}?$select=displayName`)).body.displayName).toBe('Renamed');
    });
  });

  describe('deleted users and tenant changes', () => {
    it('When a user is soft-deleted, then only the deleted items show it, with its assignments hidden until it is restored', async () => {
      graph.addMember(id(101), id(4));
      graph.softDeleteUser(id(1), new Date('2025-03-04T05:06:07.890Z'));
      graph.softDeleteUser(id(4));

      expect((await get(`/users/${id(1)}`)).status).toBe(404);
      expect((await all('/users?$select=id')).items.map((u) => u.id)).toEqual([2, 3, 5, 6].map(id));
      expect((await all(`/groups/${id(100)}/members/microsoft.graph.user?$select=id`)).items.map((u) => u.id)).toEqual([id(2)]);
      expect((await all(`/groups/${id(100)}/transitiveMembers/microsoft.graph.user?$select=id`)).items.map((u) => u.id)).toEqual([id(2), id(3)]);
      expect((await all(`/servicePrincipals/${SP}/appRoleAssignedTo`)).items.map((a) => a.principalId)).toEqual([2, 3, 5].map(id));

      const deleted = await all('/directory/deletedItems/microsoft.graph.user?$select=id,deletedDateTime');
      expect(deleted.items).toEqual([{ id: id(1), deletedDateTime: '2025-03-04T05:06:07Z' }, { id: id(4), deletedDateTime: expect.any(String) }]);
      const one = await get(`/directory/deletedItems/${id(1)}`);
      expect(one.body).toMatchObject({ '@odata.type': '#microsoft.graph.user', id: id(1), userPrincipalName: 'user1@contoso.test' });
      expect((await get(`/directory/deletedItems/${id(2)}`)).status).toBe(404);
      const filter = encodeURIComponent(`id in ('${id(1)}','${id(2)}')`);
      expect((await get(`/directory/deletedItems/microsoft.graph.user?$filter=${filter}&$select=id`)).body.value).toEqual([{ id: id(1) }]);
      expect((await get('/directory/deletedItems')).status).toBe(400);

      graph.restoreUser(id(1));
      expect((await get(`/users/${id(1)}?$select=id`)).body).toEqual({ id: id(1) });
      expect((await all(`/servicePrincipals/${SP}/appRoleAssignedTo`)).items.map((a) => a.principalId)).toEqual([1, 2, 3, 5].map(id));
      expect(() => graph.restoreUser(id(2))).toThrow();
    });

    it('When a user is hard-deleted, then it is gone everywhere, with its memberships and assignments', async () => {
      graph.hardDeleteUser(id(1));
      expect((await get(`/directory/deletedItems/${id(1)}`)).status).toBe(404);
      expect(graph.tenant.groups.some((g) => g.members.includes(id(1)))).toBe(false);
      expect(graph.tenant.assignments.some((a) => a.principalId === id(1))).toBe(false);
      expect(() => graph.updateUser(id(1), { displayName: 'x' })).toThrow();
    });

    it('When groups and assignments are changed through the helpers, then the next request sees it', async () => {
      graph.assign(id(100), 'Group', id(800));
      graph.unassign(id(2));
      graph.removeMember(id(100), id(2));
      const assignments = (await all(`/servicePrincipals/${SP}/appRoleAssignedTo`)).items;
      expect(assignments.map((a) => [a.principalId, a.principalType])).toEqual([
        [id(1), 'User'], [id(3), 'User'], [id(4), 'User'], [id(5), 'User'], [id(100), 'Group'],
      ]);
      expect(assignments.at(-1)).toMatchObject({ appRoleId: id(800), resourceId: SP, principalDisplayName: 'Support' });
      expect((await all(`/groups/${id(100)}/members/microsoft.graph.user?$select=id`)).items.map((u) => u.id)).toEqual([id(1)]);
    });

    it('When onPremisesExtensionAttributes or appRoles are selected, then they come back as Graph shapes them', async () => {
      graph.updateUser(id(1), { onPremisesExtensionAttributes: { extensionAttribute3: 'EMEA' } });
      const body = (await get(`/users/${id(1)}?$select=id,onPremisesExtensionAttributes`)).body;
      expect(Object.keys(body.onPremisesExtensionAttributes)).toHaveLength(15);
      expect(body.onPremisesExtensionAttributes).toMatchObject({ extensionAttribute1: null, extensionAttribute3: 'EMEA' });
      expect((await get(`/servicePrincipals/${SP}?$select=appRoles`)).body).toEqual({ appRoles: [] });
    });
  });

  describe('delta', () => {
    const deltaToken = (link: string): string | null => new URL(link).searchParams.get('$deltatoken');

    it('When a user delta round starts, then pages carry only skiptokens, $select is kept, and the last page has the deltaLink', async () => {
      const first = await get('/users/delta?$select=id,displayName,accountEnabled');
      expect(first.body.value).toEqual([
        { id: id(1), displayName: 'User 1', accountEnabled: true },
        { id: id(2), displayName: 'User 2', accountEnabled: true },
      ]);
      expect(first.body['@odata.nextLink']).toMatch(new RegExp(`^${graph.url}/v1\\.0/users/delta\\?\\$skiptoken=[A-Za-z0-9_-]+$`));
      const { items, pages } = await all('/users/delta?$select=id,displayName,accountEnabled');
      expect(pages).toBe(3);
      expect(items.map((u) => u.id)).toEqual([1, 2, 3, 4, 5, 6].map(id));
      expect(Object.keys(items[5]).sort()).toEqual(['accountEnabled', 'displayName', 'id']);

      let page = first;
      while (page.body['@odata.nextLink']) page = await get(page.body['@odata.nextLink']);
      const link = page.body['@odata.deltaLink'] as string;
      expect(deltaToken(link)).toMatch(/^[A-Za-z0-9_-]+$/);
      const quiet = await get(link);
      expect(quiet.body.value).toEqual([]);
      expect(deltaToken(quiet.body['@odata.deltaLink'])).not.toBe(deltaToken(link));
    });

    it('When users change between rounds, then changed ones come back whole and deleted ones as @removed: changed (soft) or deleted (hard)', async () => {
      const { link } = await round('/users/delta?$select=id,department');
      graph.updateUser(id(2), { department: 'Sales' });
      graph.updateUser(id(3), { jobTitle: 'not selected' });
      graph.softDeleteUser(id(4));
      graph.hardDeleteUser(id(5));
      const { items } = await round(link);
      expect(items).toEqual([
        { id: id(2), department: 'Sales' },
        { id: id(4), '@removed': { reason: 'changed' } },
        { id: id(5), '@removed': { reason: 'deleted' } },
      ]);
    });

    it('When a delta query asks for $top, an in filter or more than 50 ids, then it is refused; id eq … or … narrows it', async () => {
      expect((await get('/users/delta?$top=5')).status).toBe(400);
      const inFilter = await get(`/users/delta?$filter=${encodeURIComponent(`id in ('${id(1)}')`)}`);
      expect(inFilter.status).toBe(400);
      expect(inFilter.body.error.code).toBe('Request_UnsupportedQuery');
      const many = Array.from({ length: 51 }, (_, i) => `id eq '${id(i)}'`).join(' or ');
      expect((await get(`/groups/delta?$filter=${encodeURIComponent(many)}`)).status).toBe(400);
      const two = await round(`/users/delta?$select=id&$filter=${encodeURIComponent(`id eq '${id(1)}' or id eq '${id(6)}'`)}`);
      expect(two.items).toEqual([{ id: id(1) }, { id: id(6) }]);
      graph.updateUser(id(2), { displayName: 'outside the filter' });
      expect((await round(two.link)).items).toEqual([]);
    });

    it('When group members change, then members@delta lists additions and @removed members, typed', async () => {
      const filter = encodeURIComponent(`id eq '${id(100)}'`);
      const initial = await round(`/groups/delta?$select=displayName,members&$filter=${filter}`);
      // Four members at two per page: the same group comes back on two pages, as Graph does.
      expect(initial.items.map((g) => [g.id, g.displayName])).toEqual([[id(100), 'Support'], [id(100), 'Support']]);
      expect(initial.items.flatMap((g) => g['members@delta'])).toEqual([
        { '@odata.type': '#microsoft.graph.user', id: id(1) },
        { '@odata.type': '#microsoft.graph.user', id: id(2) },
        { '@odata.type': '#microsoft.graph.group', id: id(101) },
        { '@odata.type': '#microsoft.graph.servicePrincipal', id: id(950) },
      ]);
      graph.removeMember(id(100), id(1));
      graph.addMember(id(100), id(5));
      const { items } = await round(initial.link);
      expect(items).toEqual([{
        displayName: 'Support',
        id: id(100),
        'members@delta': [
          { '@odata.type': '#microsoft.graph.user', id: id(5) },
          { '@odata.type': '#microsoft.graph.user', id: id(1), '@removed': { reason: 'deleted' } },
        ],
      }]);
    });

    it('When delta tokens are expired, then every issued token answers 410 syncStateNotFound with a Location to start over; a token of another resource is refused', async () => {
      const users = await round('/users/delta?$select=id');
      const firstPage = await get('/users/delta?$select=id');
      expect((await get(users.link.replace('/users/delta', '/groups/delta'))).status).toBe(400);
      graph.expireDeltaTokens();
      const expired = await get(users.link);
      expect(expired.status).toBe(410);
      expect(expired.body.error.code).toBe('syncStateNotFound');
      expect(expired.headers.get('location')).toBe(`${graph.url}/v1.0/users/delta`);
      expect((await get(firstPage.body['@odata.nextLink'])).status).toBe(410);
      const fresh = await round('/users/delta?$select=id');
      expect((await get(fresh.link)).status).toBe(200);
      graph.expireDeltaTokens({ status: 400, code: 'resyncRequired' });
      expect((await get(fresh.link)).body.error.code).toBe('resyncRequired');
    });

    it('When a dropLinks fault fires, then the answer is a 200 without its nextLink', async () => {
      graph.inject({ kind: 'dropLinks', times: 1, pathIncludes: '/users' });
      const page = await get('/users?$select=id');
      expect(page.status).toBe(200);
      expect(page.body.value).toHaveLength(2);
      expect(page.body['@odata.nextLink']).toBeUndefined();
    });

    /** All pages of one round: its items and the deltaLink of its last page. */
    async function round(start: string): Promise<{ items: any[]; link: string }> {
      const items: any[] = [];
      let page = await get(start);
      for (;;) {
        expect(page.status).toBe(200);
        items.push(...page.body.value);
        if (!page.body['@odata.nextLink']) break;
        page = await get(page.body['@odata.nextLink']);
      }
      return { items, link: page.body['@odata.deltaLink'] };
    }
  });

  describe('$batch', () => {
    it('When sub-requests are batched, then each has its own status and body, matched by id', async () => {
      const { status, body } = await batch([
        { id: 'a', method: 'GET', url: `/users/${id(1)}?$select=id,accountEnabled` },
        { id: 'b', method: 'GET', url: `/users/${id(77)}` },
        { id: 'c', method: 'GET', url: `users?$filter=${encodeURIComponent(`id in ('${id(2)}','${id(3)}','${id(4)}')`)}&$select=id` },
      ]);
      expect(status).toBe(200);
      const byId = new Map<string, any>(body.responses.map((r: any) => [r.id, r]));
      expect(byId.get('a')).toMatchObject({ status: 200, body: { id: id(1), accountEnabled: true } });
      expect(byId.get('b')).toMatchObject({ status: 404, body: { error: { code: 'Request_ResourceNotFound' } } });
      const c = byId.get('c');
      expect(c.body.value.map((u: any) => u.id)).toEqual([id(2), id(3)]);
      expect(c.body['@odata.nextLink']).toMatch(new RegExp(`^${graph.url}/v1\\.0/users\\?`));
      expect((await all(c.body['@odata.nextLink'])).items.map((u) => u.id)).toEqual([id(4)]);
      expect(graph.requests.filter((r) => r.path.includes('$batch'))).toHaveLength(1);
      expect(graph.batchRequests.map((r) => r.status).sort()).toEqual([200, 200, 404]);
    });

    it('When a batch has more than 20 sub-requests, then the whole batch is refused', async () => {
      const requests = Array.from({ length: 21 }, (_, i) => ({ id: String(i), method: 'GET', url: `/users/${id(1)}` }));
      const { status, body } = await batch(requests);
      expect(status).toBe(400);
      expect(body.error.message).toContain('20');
      expect((await batch(requests.slice(0, 20))).status).toBe(200);
    });
  });

  describe('authentication', () => {
    it('When the token is missing or unknown, then 401 InvalidAuthenticationToken', async () => {
      const missing = await fetch(`${graph.url}/v1.0/users`);
      expect(missing.status).toBe(401);
      expect(((await missing.json()) as any).error.code).toBe('InvalidAuthenticationToken');
      const wrong = await fetch(`${graph.url}/v1.0/users`, { headers: { Authorization: 'Bearer forged' } });
      expect(wrong.status).toBe(401);
    });

    it('When a request is refused for its token, then it does not use up an injected fault', async () => {
      graph.inject({ kind: 'status', status: 503, times: 1 });
      await fetch(`${graph.url}/v1.0/users`);
      expect((await get('/users')).status).toBe(503);
      expect((await get('/users')).status).toBe(200);
    });
  });

  describe('faults', () => {
    it('When throttled, then 429 with Retry-After and Graph\'s error body, for the given number of times', async () => {
      graph.inject({ kind: 'throttle', times: 2, retryAfterSeconds: 7, pathIncludes: '/users' });
      const first = await get('/users');
      expect(first.status).toBe(429);
      expect(first.headers.get('retry-after')).toBe('7');
      expect(first.body.error.code).toBe('TooManyRequests');
      expect((await get(`/servicePrincipals/${SP}`)).status).toBe(200);
      expect((await get('/users')).status).toBe(429);
      expect((await get('/users')).status).toBe(200);
    });

    it('When afterMatches is 2, then the third matching request fails: a 500 on the third page', async () => {
      graph.inject({ kind: 'status', status: 500, times: 1, afterMatches: 2, pathIncludes: 'appRoleAssignedTo' });
      const first = await get(`/servicePrincipals/${SP}/appRoleAssignedTo`);
      const second = await get(first.body['@odata.nextLink']);
      const third = await get(second.body['@odata.nextLink']);
      expect([first.status, second.status, third.status]).toEqual([200, 200, 500]);
      expect(graph.requests.map((r) => r.status)).toEqual([200, 200, 500]);
    });

    it('When a reset is injected, then the connection is dropped without a response', async () => {
      graph.inject({ kind: 'reset', times: 1 });
      await expect(get('/users')).rejects.toThrow();
      expect(graph.requests.at(-1)?.status).toBe(0);
      expect((await get('/users')).status).toBe(200);
    });

    it('When a hang is injected for POST, then a $batch is read and never answered until the client gives up, while GETs are answered', async () => {
      graph.inject({ kind: 'hang', times: 1, method: 'POST' });
      expect((await get('/users')).status).toBe(200);
      const held = fetch(`${graph.url}/v1.0/$batch`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ requests: [{ id: '1', method: 'GET', url: '/users' }] }),
        signal: AbortSignal.timeout(200),
      });
      await expect(held).rejects.toMatchObject({ name: 'TimeoutError' });
      expect(graph.requests.at(-1)).toMatchObject({ method: 'POST', status: 0 });
      for (let waited = 0; graph.hanging() > 0 && waited < 3_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(graph.hanging()).toBe(0);
      expect((await batch([{ id: '1', method: 'GET', url: '/users' }])).status).toBe(200);
    });

    it('When close() is called while a request hangs, then the request ends and the emulator stops', async () => {
      const other = await startGraphEmulator({ tenant: tenant(), isValidToken: (t) => t === TOKEN });
      other.inject({ kind: 'hang', times: 1 });
      const pending = fetch(`${other.url}/v1.0/users`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      for (let waited = 0; other.hanging() === 0 && waited < 3_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(other.hanging()).toBe(1);
      await other.close();
      await expect(pending).rejects.toThrow();
    });

    it('When a fault names a path, then it fires inside a $batch too, on the matching sub-request only', async () => {
      graph.inject({ kind: 'throttle', times: 1, retryAfterSeconds: 3, pathIncludes: '/members' });
      graph.inject({ kind: 'status', status: 403, times: 1, pathIncludes: `/users/${id(2)}` });
      const { status, body } = await batch([
        { id: '1', method: 'GET', url: `/users/${id(1)}` },
        { id: '2', method: 'GET', url: `/groups/${id(100)}/members/microsoft.graph.user` },
        { id: '3', method: 'GET', url: `/users/${id(2)}` },
      ]);
      expect(status).toBe(200);
      const byId = new Map<string, any>(body.responses.map((r: any) => [r.id, r]));
      expect(byId.get('1').status).toBe(200);
      expect(byId.get('2')).toMatchObject({ status: 429, headers: { 'Retry-After': '3' }, body: { error: { code: 'TooManyRequests' } } });
      expect(byId.get('3')).toMatchObject({ status: 403, body: { error: { code: 'Authorization_RequestDenied' } } });
    });
  });
});
