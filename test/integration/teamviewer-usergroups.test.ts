/**
 * TeamViewer user groups and roles through the real client, over HTTP to the TeamViewer emulator
 * (and, for answers a faithful emulator never gives, to a small server that misbehaves on purpose).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TeamViewerClient, type TeamViewerClientOptions } from '../../shared/teamviewer/client';
import { isTeamViewerError, type TeamViewerError } from '../../shared/teamviewer/errors';
import { TeamViewerUserGroups } from '../../shared/teamviewer/usergroups';
import { startTeamViewerEmulator, type TeamViewerEmulator } from '../emulators/teamviewer';

const TOKEN = 'tv-groups-token-1618033988';

function clients(em: { url: string; token: string }, options: Partial<TeamViewerClientOptions> = {}) {
  const client = new TeamViewerClient({ baseUrl: em.url, token: em.token, baseDelayMs: 5, maxDelayMs: 40, timeoutMs: 2_000, ...options });
  return { client, groups: new TeamViewerUserGroups(client) };
}

async function failure(promise: Promise<unknown>): Promise<TeamViewerError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!isTeamViewerError(error)) throw new Error(`expected a TeamViewerError, got ${String(error)}`);
  return error;
}

const lines = (em: TeamViewerEmulator) => em.requests.map((r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`);

describe('TeamViewer user groups through the client', () => {
  let em: TeamViewerEmulator;
  let groups: TeamViewerUserGroups;
  let users: string[];
  const emulators: TeamViewerEmulator[] = [];
  const own = async (...args: Parameters<typeof startTeamViewerEmulator>) => {
    const started = await startTeamViewerEmulator(...args);
    emulators.push(started);
    return started;
  };

  beforeAll(async () => {
    em = await startTeamViewerEmulator({ token: TOKEN });
    ({ groups } = clients(em));
    users = Array.from({ length: 260 }, (_, i) => em.seed({ userName: `person${i}@contoso.com`, displayName: `Person ${i}` }).id);
  });
  afterEach(() => em.resetRequests());
  afterAll(async () => {
    await em.close();
    await Promise.all(emulators.map((e) => e.close()));
  });

  describe('groups', () => {
    it('When the company has more groups than a page, then listGroups follows the token to the last page and returns each group once', async () => {
      const many = await own();
      for (let i = 0; i < 120; i++) many.userGroups.seedGroup(`Team ${i}`);
      const listed = await clients(many).groups.listGroups();
      expect(listed).toEqual(many.userGroups.groups());
      expect(many.requests.map((r) => r.path)).toEqual([
        '/api/v1/usergroups',
        expect.stringMatching(/^\/api\/v1\/usergroups\?paginationToken=.+/),
        expect.stringMatching(/^\/api\/v1\/usergroups\?paginationToken=.+/),
      ]);
    });

    it('When a group is created, read, renamed and deleted, then TeamViewer holds exactly that, and deleting it again says it was already gone', async () => {
      const created = await groups.createGroup('Helpdesk');
      expect(created).toEqual({ id: expect.stringMatching(/^\d+$/), name: 'Helpdesk' });
      expect(await groups.getGroup(created.id)).toEqual(created);
      await groups.renameGroup(created.id, 'Helpdesk Europe');
      expect(em.userGroups.groups()).toContainEqual({ id: created.id, name: 'Helpdesk Europe' });
      expect(await groups.deleteGroup(created.id)).toBe(true);
      expect(await groups.getGroup(created.id)).toBeNull();
      expect(await groups.deleteGroup(created.id)).toBe(false);
    });

    it('When the name is taken in another letter case, then create throws TEAMVIEWER_GROUP_NAME_TAKEN once, without a second POST or a second group', async () => {
      em.userGroups.seedGroup('Field Engineers');
      const count = em.userGroups.groups().length;
      const error = await failure(groups.createGroup('field engineers'));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_GROUP_NAME_TAKEN', status: 409, method: 'POST', mayHaveApplied: false });
      expect(error.message).toContain('"field engineers"');
      expect(lines(em)).toEqual(['POST /api/v1/usergroups 409']);
      expect(em.userGroups.groups()).toHaveLength(count);
    });

    it('When a rename takes another group\'s name, then it is TEAMVIEWER_GROUP_NAME_TAKEN; a group deleted by hand is TEAMVIEWER_NOT_FOUND naming it', async () => {
      const a = em.userGroups.seedGroup('Rename A');
      em.userGroups.seedGroup('Rename B');
      expect(await failure(groups.renameGroup(a.id, 'RENAME B'))).toMatchObject({ code: 'TEAMVIEWER_GROUP_NAME_TAKEN', status: 409 });
      const gone = em.userGroups.seedGroup('Rename C');
      await clients(em).groups.deleteGroup(gone.id);
      const error = await failure(groups.renameGroup(gone.id, 'Rename D'));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_NOT_FOUND', status: 404 });
      expect(error.message).toContain(`user group ${gone.id}`);
    });

    it('When the answer to a create does not come in time, then it is not sent again: TEAMVIEWER_TIMEOUT with mayHaveApplied, and the group is there to adopt', async () => {
      em.inject({ kind: 'timeout', times: 1, method: 'POST', pathIncludes: '/usergroups', applyFirst: true });
      const { client, groups: slow } = clients(em, { timeoutMs: 150 });
      const error = await failure(slow.createGroup('Maybe made'));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_TIMEOUT', mayHaveApplied: true, method: 'POST' });
      expect(error.message).toMatch(/list the user groups before trying again/);
      expect(em.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect(client.stats.retries).toBe(0);
      expect((await slow.listGroups()).filter((g) => g.name === 'Maybe made')).toHaveLength(1);
    });

    it('When the connection drops after a create was carried out, then it is not sent again: TEAMVIEWER_TRANSIENT with mayHaveApplied', async () => {
      em.inject({ kind: 'reset', times: 1, method: 'POST', pathIncludes: '/usergroups', applyFirst: true });
      const error = await failure(groups.createGroup('Dropped answer'));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_TRANSIENT', mayHaveApplied: true, method: 'POST' });
      expect(error.message).toMatch(/list the user groups before trying again/);
      expect(em.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect((await groups.listGroups()).filter((g) => g.name === 'Dropped answer')).toHaveLength(1);
    });

    it('When the answer to a delete is lost, then the delete is sent again and reports the group already gone', async () => {
      const group = em.userGroups.seedGroup('Lost delete');
      em.inject({ kind: 'reset', times: 1, method: 'DELETE', applyFirst: true });
      expect(await groups.deleteGroup(group.id)).toBe(false);
      expect(lines(em)).toEqual([`DELETE /api/v1/usergroups/${group.id} 0`, `DELETE /api/v1/usergroups/${group.id} 404`]);
      expect(em.userGroups.groups().some((g) => g.id === group.id)).toBe(false);
    });
  });

  describe('members', () => {
    it('When 250 members are added, then they go in 3 calls of at most 100, each reported before the next, and listMembers pages through all of them', async () => {
      const group = em.userGroups.seedGroup('Big team');
      const reported: number[] = [];
      const calls = await groups.addMembers(group.id, users.slice(0, 250), (added) => {
        // The call that added these has finished; the next has not been sent.
        reported.push(added.length);
        expect(em.requests.filter((r) => r.method === 'POST')).toHaveLength(reported.length);
      });
      expect(calls).toBe(3);
      expect(reported).toEqual([100, 100, 50]);
      expect(lines(em)).toEqual(Array(3).fill(`POST /api/v1/usergroups/${group.id}/members 200`));
      expect(em.userGroups.members(group.id)).toEqual(users.slice(0, 250));

      em.resetRequests();
      expect(await groups.listMembers(group.id)).toEqual(users.slice(0, 250));
      expect(em.requests).toHaveLength(5);
    });

    it('When members are removed, then exactly those leave, in DELETE calls of at most 100; a member added by hand stays', async () => {
      const group = em.userGroups.seedGroup('Shrinking team', users.slice(0, 150));
      em.userGroups.addMemberByHand(group.id, users[200]!);
      const calls = await groups.removeMembers(group.id, users.slice(0, 120));
      expect(calls).toBe(2);
      expect(lines(em)).toEqual(Array(2).fill(`DELETE /api/v1/usergroups/${group.id}/members 204`));
      expect(em.userGroups.members(group.id)).toEqual([...users.slice(120, 150), users[200]]);
    });

    it('When the second call fails, then the first call\'s members were reported and are in TeamViewer, and the error names the group', async () => {
      const group = em.userGroups.seedGroup('Half team');
      const stranger = 'u999999999';
      const reported: string[][] = [];
      const error = await failure(groups.addMembers(group.id, [...users.slice(0, 120), stranger], (added) => { reported.push(added); }));
      expect(error).toMatchObject({ code: 'TEAMVIEWER_BAD_REQUEST', status: 400 });
      expect(error.message).toContain(`user group ${group.id}`);
      expect(reported).toEqual([users.slice(0, 100)]);
      expect(em.userGroups.members(group.id)).toEqual(users.slice(0, 100));
    });

    it('When a member is not a TeamViewer user id, then nothing is sent', async () => {
      const group = em.userGroups.seedGroup('Careful team');
      const error = await failure(groups.addMembers(group.id, [users[0]!, 'alice@contoso.com']));
      expect(error.code).toBe('TEAMVIEWER_BAD_REQUEST');
      expect(error.message).toContain('"alice@contoso.com" is not a TeamViewer user id');
      expect(em.requests).toEqual([]);
      expect(await failure(groups.listMembers('12; DROP'))).toMatchObject({ code: 'TEAMVIEWER_BAD_REQUEST' });
      expect(em.requests).toEqual([]);
    });
  });

  describe('roles', () => {
    it('When a role is assigned, changed and unassigned, then the group\'s role reads back each time', async () => {
      const roles = await groups.listRoles();
      expect(roles.map((r) => r.name)).toEqual(expect.arrayContaining(['Default role', 'Support agent', 'Administrator']));
      const support = roles.find((r) => r.name === 'Support agent')!;
      const admin = roles.find((r) => r.name === 'Administrator')!;
      const group = em.userGroups.seedGroup('Role team');
      expect(await groups.getGroupRole(group.id)).toBeNull();
      await groups.assignRole(group.id, support.id);
      expect(await groups.getGroupRole(group.id)).toBe(support.id);
      await groups.assignRole(group.id, admin.id);
      expect(em.userGroups.roleOf(group.id)).toBe(admin.id);
      await groups.unassignRole(group.id);
      expect(await groups.getGroupRole(group.id)).toBeNull();
    });

    it('When the answer to a role assignment is lost, then it is sent again (assigning twice is harmless) and holds', async () => {
      const role = em.userGroups.roles()[1]!;
      const group = em.userGroups.seedGroup('Lost role');
      em.inject({ kind: 'reset', times: 1, method: 'POST', pathIncludes: '/userroles/assign', applyFirst: true });
      await groups.assignRole(group.id, role.id);
      expect(lines(em)).toEqual(['POST /api/v1/userroles/assign/usergroup 0', 'POST /api/v1/userroles/assign/usergroup 204']);
      expect(em.userGroups.roleOf(group.id)).toBe(role.id);
    });
  });

  describe('permissions and throttling', () => {
    it('When the company has no Tensor licence or the token lacks User groups, then every call is TEAMVIEWER_GROUPS_FORBIDDEN naming the right, sent once, and SCIM still works', async () => {
      const unlicensed = await own({ userGroups: { access: 'no-licence' } });
      const person = unlicensed.seed({ userName: 'only@contoso.com' }).id;
      const { client, groups: blocked } = clients(unlicensed);
      for (const access of ['no-licence', 'no-rights'] as const) {
        unlicensed.userGroups.setAccess(access);
        for (const call of [() => blocked.listGroups(), () => blocked.createGroup('X'), () => blocked.addMembers('12345678', [person]), () => blocked.listRoles()]) {
          unlicensed.resetRequests();
          const error = await failure(call());
          expect(error).toMatchObject({ code: 'TEAMVIEWER_GROUPS_FORBIDDEN', status: 403 });
          expect(error.message).toContain('User groups: create, delete, edit, read');
          expect(error.message).toContain('Tensor');
          expect(unlicensed.requests).toHaveLength(1);
        }
      }
      expect(client.stats.retries).toBe(0);
      expect((await client.listUsers()).map((u) => u.id)).toEqual([person]);
    });

    it('When a group call is throttled, then SCIM calls of the same client wait too, and the reverse', async () => {
      const { client, groups: shared } = clients(em, { maxDelayMs: 5_000 });
      em.inject({ kind: 'rateLimit', retryAfterSeconds: 1, times: 1, pathIncludes: '/usergroups' });
      const started = Date.now();
      const listing = shared.listGroups();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await client.getUser(users[0]!);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      await listing;
      expect(client.stats.throttled).toBe(1);

      em.resetRequests();
      em.inject({ kind: 'rateLimit', retryAfterSeconds: 1, times: 1, pathIncludes: '/scim/' });
      const again = Date.now();
      const reading = client.getUser(users[1]!);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await shared.listRoles();
      expect(Date.now() - again).toBeGreaterThanOrEqual(950);
      await reading;
      expect(lines(em).slice(0, 1)).toEqual([`GET /scim/v2/Users/${users[1]} 403`]);
    });

    it('When the token is rejected, then group calls throw TEAMVIEWER_UNAUTHORIZED', async () => {
      const { groups: wrong } = clients({ url: em.url, token: 'not-the-token' });
      expect(await failure(wrong.listGroups())).toMatchObject({ code: 'TEAMVIEWER_UNAUTHORIZED', status: 401 });
    });
  });

  describe('answers a faithful TeamViewer never gives', () => {
    let server: http.Server;
    let base: string;
    let answer: (req: http.IncomingMessage, body: string) => { status: number; body?: unknown };
    const seen: Array<{ method: string; url: string; type: string | undefined; body: string }> = [];

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          seen.push({ method: req.method ?? '', url: req.url ?? '', type: req.headers['content-type'], body });
          const reply = answer(req, body);
          res.writeHead(reply.status, { 'Content-Type': 'application/json' });
          res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scim/v2`;
    });
    afterEach(() => { seen.length = 0; });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const against = () => clients({ url: base, token: TOKEN }).groups;

    it('When a page hands out a token seen before, then listing throws TEAMVIEWER_PROTOCOL instead of looping or returning what it has', async () => {
      answer = (req) => ({ status: 200, body: { resources: [{ id: req.url?.includes('B') ? 2 : 1, name: 'G' }], nextPaginationToken: req.url?.includes('A') ? 'B' : 'A' } });
      const error = await failure(against().listGroups());
      expect(error.code).toBe('TEAMVIEWER_PROTOCOL');
      expect(error.message).toMatch(/pagination token seen before/);
      expect(seen).toHaveLength(3);
    });

    it('When an empty page says more follow, then listing members throws TEAMVIEWER_PROTOCOL, never a short list', async () => {
      answer = (req) => (req.url?.includes('paginationToken')
        ? { status: 200, body: { resources: [], nextPaginationToken: 'more' } }
        : { status: 200, body: { resources: [{ accountId: 1234567, name: 'A' }], nextPaginationToken: 'next' } });
      expect(await failure(against().listMembers('42'))).toMatchObject({ code: 'TEAMVIEWER_PROTOCOL' });
    });

    it('When a group id is beyond 2^53, then it is TEAMVIEWER_PROTOCOL rather than a rounded id naming another group; a last page without a token ends the list', async () => {
      answer = () => ({ status: 200, body: { resources: [{ id: 2 ** 60, name: 'Huge' }] } });
      expect((await failure(against().listGroups())).message).toMatch(/larger than 2\^53/);
      answer = () => ({ status: 200, body: { resources: [{ id: '000123', name: 'Padded' }] } });
      expect(await against().listGroups()).toEqual([{ id: '123', name: 'Padded' }]);
    });

    it('When members are removed or a role assigned, then the body is JSON with account ids as numbers, also on DELETE', async () => {
      answer = () => ({ status: 204 });
      await against().removeMembers('42', ['u1234567', '7654321']);
      await against().assignRole('42', '0f8fad5b-d9cb-469f-a165-70867728950e');
      expect(seen).toEqual([
        { method: 'DELETE', url: '/api/v1/usergroups/42/members', type: 'application/json', body: '[1234567,7654321]' },
        { method: 'POST', url: '/api/v1/userroles/assign/usergroup', type: 'application/json', body: '{"UserRoleId":"0f8fad5b-d9cb-469f-a165-70867728950e","UserGroupId":42}' },
      ]);
    });

    it('When the role answer uses another spelling or names nothing, then the first is read and the second is TEAMVIEWER_PROTOCOL', async () => {
      answer = () => ({ status: 200, body: { AssignedRoleId: '0f8fad5b-d9cb-469f-a165-70867728950e' } });
      expect(await against().getGroupRole('42')).toBe('0f8fad5b-d9cb-469f-a165-70867728950e');
      answer = () => ({ status: 200, body: {} });
      expect(await failure(against().getGroupRole('42'))).toMatchObject({ code: 'TEAMVIEWER_PROTOCOL' });
      answer = () => ({ status: 200, body: { roles: [{ id: 'r1', name: 'lower-case spelling' }] } });
      expect(await against().listRoles()).toEqual([{ id: 'r1', name: 'lower-case spelling' }]);
    });
  });
});
