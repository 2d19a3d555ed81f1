import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTeamViewerEmulator, type TeamViewerEmulator } from './teamviewer';

type Json = Record<string, any>;

/** Raw Web API calls, so the emulator is checked on the wire, not through our client. */
function webApi(em: TeamViewerEmulator) {
  return async (method: string, path: string, body?: unknown, token: string | null = em.token) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${em.apiUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Json };
  };
}

const accountId = (userId: string): number => Number(userId.slice(1));

describe('TeamViewer emulator: user groups and roles', () => {
  let em: TeamViewerEmulator;
  let send: ReturnType<typeof webApi>;
  const extra: TeamViewerEmulator[] = [];
  let users: string[];

  beforeAll(async () => {
    em = await startTeamViewerEmulator({ token: 'groups-token-271828' });
    send = webApi(em);
    users = Array.from({ length: 130 }, (_, i) => em.seed({ userName: `member${i}@contoso.com`, displayName: `Member ${i}` }).id);
  });
  afterAll(async () => {
    await em.close();
    await Promise.all(extra.map((e) => e.close()));
  });

  async function listAll(path: string): Promise<{ items: Json[]; pages: number }> {
    const items: Json[] = [];
    let pages = 0;
    for (let token: string | null = null; ;) {
      const res = await send('GET', token === null ? path : `${path}?paginationToken=${encodeURIComponent(token)}`);
      expect(res.status).toBe(200);
      pages++;
      items.push(...res.body.resources);
      token = res.body.nextPaginationToken;
      if (token === null) return { items, pages };
    }
  }

  describe('groups', () => {
    it('When a group is created, then it answers 200 with a numeric id and the name, and GET reads it back', async () => {
      const created = await send('POST', '/usergroups', { name: 'Helpdesk' });
      expect(created).toEqual({ status: 200, body: { id: expect.any(Number), name: 'Helpdesk' } });
      expect(await send('GET', `/usergroups/${created.body.id}`)).toEqual({ status: 200, body: { id: created.body.id, name: 'Helpdesk' } });
      expect(em.userGroups.groups()).toContainEqual({ id: String(created.body.id), name: 'Helpdesk' });
    });

    it('When a name is taken in any letter case, then create answers 409 and nothing is created', async () => {
      em.userGroups.seedGroup('Field engineers');
      const before = em.userGroups.groups().length;
      const res = await send('POST', '/usergroups', { name: 'FIELD ENGINEERS' });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ error: 'conflict', error_description: expect.any(String) });
      expect(em.userGroups.groups()).toHaveLength(before);
    });

    it('When a name is empty, longer than 100 characters or not a string, then it answers 400; 100 characters (an emoji counts as one) are fine', async () => {
      for (const name of ['', 'x'.repeat(101), 42]) {
        expect((await send('POST', '/usergroups', { name })).status).toBe(400);
      }
      expect((await send('POST', '/usergroups', {})).status).toBe(400);
      expect((await send('POST', '/usergroups', { name: 'y'.repeat(100) })).status).toBe(200);
      expect((await send('POST', '/usergroups', { name: `${'z'.repeat(99)}😀` })).status).toBe(200);
    });

    it('When a group is renamed with PUT, then the new name is kept; another group\'s name is 409, its own in other letters is fine', async () => {
      const group = em.userGroups.seedGroup('Sales EMEA');
      em.userGroups.seedGroup('Sales APAC');
      expect(await send('PUT', `/usergroups/${group.id}`, { name: 'Sales Europe' })).toEqual({ status: 200, body: { id: Number(group.id), name: 'Sales Europe' } });
      expect((await send('PUT', `/usergroups/${group.id}`, { name: 'sales apac' })).status).toBe(409);
      expect((await send('PUT', `/usergroups/${group.id}`, { name: 'SALES EUROPE' })).status).toBe(200);
      expect(em.userGroups.groups().find((g) => g.id === group.id)?.name).toBe('SALES EUROPE');
    });

    it('When a group id is unknown, then GET, PUT, DELETE and its members answer 404', async () => {
      for (const [method, path] of [['GET', '/usergroups/1'], ['PUT', '/usergroups/1'], ['DELETE', '/usergroups/1'], ['GET', '/usergroups/1/members'], ['GET', '/usergroups/nope']]) {
        expect((await send(method!, path!, method === 'PUT' ? { name: 'x' } : undefined)).status).toBe(404);
      }
    });

    it('When groups are listed, then they come 50 per page behind an opaque token, the last page says null, and a bad token is 400', async () => {
      const own = await startTeamViewerEmulator();
      extra.push(own);
      for (let i = 0; i < 120; i++) own.userGroups.seedGroup(`Group ${String(i).padStart(3, '0')}`);
      const list = webApi(own);
      const first = await list('GET', '/usergroups');
      expect(first.body.resources).toHaveLength(50);
      expect(typeof first.body.nextPaginationToken).toBe('string');
      const items: Json[] = [...first.body.resources];
      let token: string | null = first.body.nextPaginationToken;
      let pages = 1;
      while (token !== null) {
        const next = await list('GET', `/usergroups?paginationToken=${encodeURIComponent(token)}`);
        items.push(...next.body.resources);
        token = next.body.nextPaginationToken;
        pages++;
      }
      expect(pages).toBe(3);
      expect(items.map((g) => g.name)).toEqual(own.userGroups.groups().map((g) => g.name));
      expect((await list('GET', '/usergroups?paginationToken=forged')).status).toBe(400);
    });

    it('When a group is deleted, then it answers 204 and its memberships and role go with it, not the accounts', async () => {
      const role = em.userGroups.roles()[1]!;
      const group = em.userGroups.seedGroup('Temporary', [users[0]!, users[1]!]);
      await send('POST', '/userroles/assign/usergroup', { UserRoleId: role.id, UserGroupId: Number(group.id) });
      expect((await send('DELETE', `/usergroups/${group.id}`)).status).toBe(204);
      expect(em.userGroups.groups().some((g) => g.id === group.id)).toBe(false);
      expect((await send('GET', `/usergroups/${group.id}/userroles`)).status).toBe(404);
      expect(em.users().map((u) => u.id)).toEqual(expect.arrayContaining([users[0], users[1]]));
    });
  });

  describe('members', () => {
    it('When members are added as a JSON array of account ids, then they are listed with their names; adding one twice changes nothing', async () => {
      const group = em.userGroups.seedGroup('Members A');
      const add = await send('POST', `/usergroups/${group.id}/members`, [accountId(users[2]!), accountId(users[3]!)]);
      expect(add).toEqual({ status: 200, body: [{ accountId: accountId(users[2]!), name: 'Member 2' }, { accountId: accountId(users[3]!), name: 'Member 3' }] });
      expect((await send('POST', `/usergroups/${group.id}/members`, [accountId(users[2]!)])).status).toBe(200);
      expect(em.userGroups.members(group.id)).toEqual([users[2], users[3]]);
      expect((await listAll(`/usergroups/${group.id}/members`)).items).toEqual([
        { accountId: accountId(users[2]!), name: 'Member 2' },
        { accountId: accountId(users[3]!), name: 'Member 3' },
      ]);
    });

    it('When a call names more than 100 ids, none, an unknown account or a user id with its u, then it answers 400 and changes nothing', async () => {
      const group = em.userGroups.seedGroup('Members B');
      const ids = users.slice(0, 101).map(accountId);
      for (const body of [ids, [], [1], [users[0]], { accountIds: [accountId(users[0]!)] }]) {
        expect((await send('POST', `/usergroups/${group.id}/members`, body)).status).toBe(400);
      }
      expect((await send('DELETE', `/usergroups/${group.id}/members`, ids)).status).toBe(400);
      expect(em.userGroups.members(group.id)).toEqual([]);
      expect((await send('POST', `/usergroups/${group.id}/members`, ids.slice(0, 100))).status).toBe(200);
      expect(em.userGroups.members(group.id)).toHaveLength(100);
    });

    it('When members are removed with a DELETE that has a body, then exactly those leave; removing a non-member is a no-op', async () => {
      const group = em.userGroups.seedGroup('Members C', users.slice(10, 14));
      const res = await send('DELETE', `/usergroups/${group.id}/members`, [accountId(users[11]!), accountId(users[12]!), accountId(users[20]!)]);
      expect(res.status).toBe(204);
      expect(em.userGroups.members(group.id)).toEqual([users[10], users[13]]);
    });

    it('When a group has more members than a page, then they are paged by token like groups', async () => {
      const group = em.userGroups.seedGroup('Members D', users.slice(0, 120));
      const { items, pages } = await listAll(`/usergroups/${group.id}/members`);
      expect(pages).toBe(3);
      expect(items.map((m) => `u${m.accountId}`)).toEqual(users.slice(0, 120));
    });

    it('When an admin adds a member by hand or a user leaves the company, then the lists show it', async () => {
      const leaver = em.seed({ userName: 'leaver@contoso.com', displayName: 'Lee Leaver' }).id;
      const group = em.userGroups.seedGroup('Members E', [users[5]!]);
      em.userGroups.addMemberByHand(group.id, leaver);
      expect(em.userGroups.members(group.id)).toEqual([users[5], leaver]);
      em.remove(leaver);
      expect(em.userGroups.members(group.id)).toEqual([users[5]]);
      expect((await listAll(`/usergroups/${group.id}/members`)).items.map((m) => m.accountId)).toEqual([accountId(users[5]!)]);
      expect(() => em.userGroups.addMemberByHand(group.id, leaver)).toThrow(/no user/);
    });
  });

  describe('roles', () => {
    it('When roles are listed, then they come as Roles[].Id/Name with GUID ids; a role added by hand is listed too', async () => {
      const added = em.userGroups.addRole('Auditor');
      const res = await send('GET', '/userroles');
      expect(res.status).toBe(200);
      const names = (res.body.Roles as Json[]).map((r) => r.Name);
      expect(names).toEqual(expect.arrayContaining(['Default role', 'Support agent', 'Administrator', 'Auditor']));
      for (const role of res.body.Roles as Json[]) expect(role.Id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(res.body.Roles).toContainEqual({ Id: added.id, Name: 'Auditor', Permissions: {} });
    });

    it('When a role is assigned, changed and unassigned, then the group\'s userroles says so each time', async () => {
      const [, support, admin] = em.userGroups.roles();
      const group = em.userGroups.seedGroup('Role holders');
      const roleOf = async () => (await send('GET', `/usergroups/${group.id}/userroles`)).body;
      expect(await roleOf()).toEqual({ assignedRoleId: null });
      expect((await send('POST', '/userroles/assign/usergroup', { UserRoleId: support!.id, UserGroupId: Number(group.id) })).status).toBe(204);
      expect(await roleOf()).toEqual({ assignedRoleId: support!.id });
      await send('POST', '/userroles/assign/usergroup', { UserRoleId: admin!.id, UserGroupId: Number(group.id) });
      expect(em.userGroups.roleOf(group.id)).toBe(admin!.id);
      expect((await send('POST', '/userroles/unassign/usergroup', { UserGroupId: Number(group.id) })).status).toBe(204);
      expect(await roleOf()).toEqual({ assignedRoleId: null });
    });

    it('When the role or the group does not exist, then assigning answers 404; a malformed body 400', async () => {
      const group = em.userGroups.seedGroup('Role misses');
      expect((await send('POST', '/userroles/assign/usergroup', { UserRoleId: '00000000-0000-4000-8000-000000000000', UserGroupId: Number(group.id) })).status).toBe(404);
      expect((await send('POST', '/userroles/assign/usergroup', { UserRoleId: em.userGroups.roles()[0]!.id, UserGroupId: 1 })).status).toBe(404);
      expect((await send('POST', '/userroles/assign/usergroup', [1])).status).toBe(400);
      expect(em.userGroups.roleOf(group.id)).toBeNull();
    });
  });

  describe('licence, rights, rate limit and the request log', () => {
    it('When the company has no licence or the token no User groups rights, then every group and role call is 403 (not a rate limit) while SCIM works', async () => {
      const own = await startTeamViewerEmulator({ userGroups: { access: 'no-licence' } });
      extra.push(own);
      own.seed({ userName: 'solo@contoso.com' });
      const call = webApi(own);
      const scim = () => fetch(`${own.url}/Users`, { headers: { Authorization: `Bearer ${own.token}` } });
      for (const access of ['no-licence', 'no-rights'] as const) {
        own.userGroups.setAccess(access);
        for (const [method, path, body] of [['GET', '/usergroups'], ['POST', '/usergroups', { name: 'x' }], ['GET', '/usergroups/1/members'], ['GET', '/userroles'], ['POST', '/userroles/assign/usergroup', {}]] as const) {
          const res = await call(method, path, body);
          expect(res.status, `${access} ${method} ${path}`).toBe(403);
          expect(res.body.error).not.toBe('rate_limit_reached');
          expect(res.body.error_description).not.toMatch(/rate|too many/i);
        }
        expect((await scim()).status).toBe(200);
      }
      own.userGroups.setAccess('licensed');
      expect((await call('GET', '/usergroups')).status).toBe(200);
    });

    it('When SCIM and group calls together pass the per-token limit, then the next call of either kind is 403 rate_limit_reached, and the log has both', async () => {
      const limited = await startTeamViewerEmulator({ rateLimitPerSecond: 3 });
      extra.push(limited);
      const call = webApi(limited);
      const scim = await fetch(`${limited.url}/Users`, { headers: { Authorization: `Bearer ${limited.token}` } });
      expect(scim.status).toBe(200);
      expect((await call('GET', '/usergroups')).status).toBe(200);
      expect((await call('GET', '/userroles')).status).toBe(200);
      const throttled = await call('POST', '/usergroups', { name: 'Too fast' });
      expect(throttled).toMatchObject({ status: 403, body: { error: 'rate_limit_reached' } });
      expect(limited.userGroups.groups()).toEqual([]);
      expect(limited.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        'GET /scim/v2/Users 200', 'GET /api/v1/usergroups 200', 'GET /api/v1/userroles 200', 'POST /api/v1/usergroups 403',
      ]);
      expect(limited.writes()).toBe(1);
    });

    it('When the token is wrong, then group calls answer 401 invalid_token before anything else', async () => {
      const res = await send('GET', '/usergroups', undefined, 'wrong-token');
      expect(res).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    });
  });
});
