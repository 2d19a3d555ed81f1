/**
 * Delta primitives end to end: the real DefaultAzureCredential gets tokens from the managed
 * identity emulator, the reader follows Graph delta rounds on the Graph emulator over https.
 *
 * MSAL keeps the managed identity endpoint and its token cache per process: one identity
 * emulator and one credential for the whole file.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DefaultAzureCredential } from '@azure/identity';
import { memoryLogger } from '../../shared/log';
import { createGraphClient } from '../../shared/entra/graph-client';
import { EntraReader, type EntraUserRecord } from '../../shared/entra/reader';
import { EntraReadError, type EntraReadErrorCode } from '../../shared/entra/errors';
import { startGraphEmulator, type EmulatedTenant, type GraphEmulator, type TenantUser } from '../emulators/graph';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';

const hex = (prefix: string, n: number): string => `${prefix}-0000-4000-8000-${String(n).padStart(12, '0')}`;
const userId = (n: number): string => hex('00000000', n);
const groupId = (n: number): string => hex('99999999', n);
const SP = hex('5e5e5e5e', 1);
const MI_CLIENT_ID = hex('c1c1c1c1', 1);
const ATTRIBUTES = ['department', 'extensionAttribute3'];

const user = (n: number, extra: Partial<TenantUser> = {}): TenantUser => ({
  id: userId(n),
  userPrincipalName: `user${n}@contoso.test`,
  displayName: `User ${n}`,
  givenName: 'User',
  surname: `N${n}`,
  mail: `user${n}@contoso.test`,
  accountEnabled: true,
  department: 'Support',
  jobTitle: 'Agent',
  ...extra,
});

/** Users 1–6; group 1 holds 2, 3 and nested group 3; group 2 holds 3; group 3 holds 4. */
function tenant(): EmulatedTenant {
  return {
    servicePrincipals: [{ id: SP, appId: hex('ab000000', 1), displayName: 'TeamViewer' }],
    users: [1, 2, 3, 4, 5, 6].map((n) => user(n)),
    groups: [
      { id: groupId(1), displayName: 'Support', members: [userId(2), userId(3), groupId(3)] },
      { id: groupId(2), displayName: 'Admins', members: [userId(3)] },
      { id: groupId(3), displayName: 'Nested', members: [userId(4)] },
    ],
    assignments: [
      { id: 'a1', resourceId: SP, principalId: userId(1), principalType: 'User', appRoleId: '00000000-0000-0000-0000-000000000000' },
      { id: 'a2', resourceId: SP, principalId: groupId(1), principalType: 'Group', appRoleId: '00000000-0000-0000-0000-000000000000' },
      { id: 'a3', resourceId: SP, principalId: groupId(2), principalType: 'Group', appRoleId: '00000000-0000-0000-0000-000000000000' },
    ],
  };
}

const CREDENTIAL_ENV = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_USERNAME', 'AZURE_FEDERATED_TOKEN_FILE'];

describe('Entra delta rounds against the Graph and managed identity emulators', () => {
  let identity: IdentityEmulator;
  let graph: GraphEmulator;
  let credential: DefaultAzureCredential;
  const savedEnv: Record<string, string | undefined> = {};
  let logger: ReturnType<typeof memoryLogger>;

  const readerFor = (emulator: GraphEmulator) =>
    new EntraReader({
      client: createGraphClient({ graphBaseUrl: emulator.url, credential, logger, retry: { maxRetries: 3, delaySeconds: 0.01, maxRetryAfterSeconds: 5 } }),
      servicePrincipalId: SP,
      logger,
    });

  /** Awaits a failing read; checks its code and that no token, identity secret or delta token leaked. */
  async function readError(promise: Promise<unknown>, code: EntraReadErrorCode, deltaLinks: string[] = []): Promise<EntraReadError> {
    const error = await promise.then(
      (value) => { throw new Error(`expected ${code}, but the read returned ${JSON.stringify(value).slice(0, 200)}`); },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EntraReadError);
    const readError = error as EntraReadError;
    expect(readError.code).toBe(code);
    const everything = [readError.message, JSON.stringify(readError), String(readError.stack), JSON.stringify(logger.lines)].join('\n');
    for (const token of identity.issued) expect(everything).not.toContain(token);
    expect(everything).not.toContain(identity.header);
    for (const link of deltaLinks) for (const token of tokensIn(link)) expect(everything).not.toContain(token);
    return readError;
  }
  const tokensIn = (links: string): string[] => links.split(' ').filter(Boolean).map((l) => new URL(l).searchParams.get('$deltatoken') ?? '').filter(Boolean);

  const ids = (users: Array<{ id: string }>): string[] => users.map((u) => u.id);

  beforeAll(async () => {
    for (const name of [...CREDENTIAL_ENV, 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_TOKEN_CREDENTIALS']) {
      savedEnv[name] = process.env[name];
      delete process.env[name];
    }
    identity = await startIdentityEmulator({ clientId: MI_CLIENT_ID });
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.header;
    process.env.AZURE_TOKEN_CREDENTIALS = 'prod';
    credential = new DefaultAzureCredential({ managedIdentityClientId: MI_CLIENT_ID, retryOptions: { maxRetries: 1, retryDelayInMs: 10 } });
    graph = await startGraphEmulator({ tenant: tenant(), pageSize: 3, isValidToken: (token) => identity.isValid(token) });
  });

  afterAll(async () => {
    await Promise.all([graph?.close(), identity?.close()]);
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  beforeEach(() => {
    graph.tenant = tenant();
    graph.clearFaults();
    graph.resetRequests();
    graph.nextLinkOrigin = undefined;
    logger = memoryLogger();
  });

  describe('user changes', () => {
    it('When the initial round is read, then every user comes back over all pages; a round without changes then costs exactly one request', async () => {
      const reader = readerFor(graph);
      const initial = await reader.readUserChanges(null, ATTRIBUTES);
      expect(initial.initial).toBe(true);
      expect(ids(initial.changed)).toEqual([1, 2, 3, 4, 5, 6].map(userId));
      expect(initial.changed[0]).toEqual({
        id: userId(1), userPrincipalName: 'user1@contoso.test', displayName: 'User 1', givenName: 'User', surname: 'N1',
        mail: 'user1@contoso.test', accountEnabled: true, attributes: { department: 'Support', extensionAttribute3: null },
      });
      expect(initial.removed).toEqual([]);
      expect(initial.requests).toBe(2);
      expect(initial.deltaLink.startsWith(`${graph.url}/v1.0/users/delta?`)).toBe(true);
      // The initial request asked for what the mappings need; nothing else is ever sent.
      const select = new URLSearchParams(graph.requests[0]!.path.split('?')[1]).get('$select')?.split(',');
      expect(select).toEqual(expect.arrayContaining(['id', 'userPrincipalName', 'accountEnabled', 'department', 'onPremisesExtensionAttributes']));

      graph.resetRequests();
      const quiet = await reader.readUserChanges(initial.deltaLink, ATTRIBUTES);
      expect(quiet).toMatchObject({ initial: false, changed: [], removed: [], requests: 1 });
      expect(graph.requests).toHaveLength(1);
      const again = await reader.readUserChanges(quiet.deltaLink, ATTRIBUTES);
      expect(again).toMatchObject({ changed: [], removed: [], requests: 1 });
    });

    it('When attributes change, through the helpers or by editing the tenant, then only those users come back, with their new values', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readUserChanges(null, ATTRIBUTES);
      graph.updateUser(userId(2), { department: 'Sales', onPremisesExtensionAttributes: { extensionAttribute3: 'EMEA' } });
      graph.tenant.users[4]!.accountEnabled = false;
      graph.tenant.users[0]!.jobTitle = 'Manager'; // not read: Graph does not report it

      const round = await reader.readUserChanges(deltaLink, ATTRIBUTES);
      expect(ids(round.changed)).toEqual([userId(2), userId(5)]);
      expect(round.changed[0]?.attributes).toEqual({ department: 'Sales', extensionAttribute3: 'EMEA' });
      expect(round.changed[1]).toMatchObject({ accountEnabled: false, userPrincipalName: 'user5@contoso.test' });
      expect(round.removed).toEqual([]);
    });

    it('When a user is renamed or created, then it comes back as changed with all its fields', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readUserChanges(null, ATTRIBUTES);
      graph.updateUser(userId(3), { userPrincipalName: 'renamed@contoso.test' });
      graph.addUser(user(9, { department: 'HR' }));
      const round = await reader.readUserChanges(deltaLink, ATTRIBUTES);
      expect(ids(round.changed)).toEqual([userId(3), userId(9)]);
      expect(round.changed[0]?.userPrincipalName).toBe('renamed@contoso.test');
      expect(round.changed[1]).toMatchObject({ userPrincipalName: 'user9@contoso.test', accountEnabled: true, attributes: { department: 'HR' } });
    });

    it('When users are soft-deleted, restored and hard-deleted, then @removed says "changed" for soft and "deleted" for hard, and a restore is a change', async () => {
      const reader = readerFor(graph);
      let link = (await reader.readUserChanges(null)).deltaLink;

      graph.softDeleteUser(userId(1));
      graph.softDeleteUser(userId(2));
      graph.hardDeleteUser(userId(3));
      let round = await reader.readUserChanges(link);
      expect(round.changed).toEqual([]);
      expect(round.removed).toEqual([
        { id: userId(1), reason: 'changed' },
        { id: userId(2), reason: 'changed' },
        { id: userId(3), reason: 'deleted' },
      ]);
      link = round.deltaLink;

      graph.restoreUser(userId(1));
      graph.hardDeleteUser(userId(2)); // emptied from the deleted items
      round = await reader.readUserChanges(link);
      expect(ids(round.changed)).toEqual([userId(1)]);
      expect(round.changed[0]).toMatchObject({ userPrincipalName: 'user1@contoso.test', accountEnabled: true });
      expect(round.removed).toEqual([{ id: userId(2), reason: 'deleted' }]);
    });

    it('When a user is soft-deleted and restored between two rounds, then nothing is reported', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readUserChanges(null);
      graph.softDeleteUser(userId(4));
      graph.restoreUser(userId(4));
      expect(await reader.readUserChanges(deltaLink)).toMatchObject({ changed: [], removed: [] });
    });

    it('When many users change, then the round runs over several pages and a fresh initial round agrees with the old state plus the changes', async () => {
      const reader = readerFor(graph);
      const initial = await reader.readUserChanges(null, ATTRIBUTES);
      const state = new Map<string, EntraUserRecord>(initial.changed.map((u) => [u.id, u]));

      for (const n of [1, 2, 4]) graph.updateUser(userId(n), { displayName: `Renamed ${n}`, department: `D${n}` });
      for (const n of [10, 11, 12]) graph.addUser(user(n));
      graph.softDeleteUser(userId(5));
      graph.hardDeleteUser(userId(6));
      graph.resetRequests();
      const round = await reader.readUserChanges(initial.deltaLink, ATTRIBUTES);
      // 6 changes and 2 removals at 3 per page.
      expect(round.requests).toBe(3);
      expect(round.changed).toHaveLength(6);
      expect(round.removed).toHaveLength(2);

      for (const changed of round.changed) state.set(changed.id, changed);
      for (const removed of round.removed) state.delete(removed.id);
      const fresh = await reader.readUserChanges(null, ATTRIBUTES);
      expect([...state.values()].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(fresh.changed);
    });
  });

  describe('group membership changes', () => {
    const G1 = groupId(1);
    const G2 = groupId(2);

    it('When the initial round is read, then every user member comes back, nested groups are named, and a quiet round costs one request', async () => {
      const reader = readerFor(graph);
      const initial = await reader.readGroupMemberChanges([G1, G2.toUpperCase()], null);
      expect(initial).toMatchObject({
        initial: true,
        added: [{ groupId: G1, userId: userId(2) }, { groupId: G1, userId: userId(3) }, { groupId: G2, userId: userId(3) }],
        removed: [],
        removedGroups: [],
        groupsWithNestedChanges: [G1],
        requests: 2,
      });
      // One filtered delta query, in a $batch; its 4 members fill a page of 3, so one nextLink.
      expect(graph.batchRequests.map((r) => r.path)).toEqual([`/groups/delta?$select=id,displayName,members&$filter=id eq '${G1}' or id eq '${G2}'`]);
      expect(graph.requests.map((r) => r.method)).toEqual(['POST', 'GET']);

      graph.resetRequests();
      const quiet = await reader.readGroupMemberChanges([G1, G2], initial.deltaLink);
      expect(quiet).toMatchObject({ initial: false, added: [], removed: [], removedGroups: [], groupsWithNestedChanges: [], requests: 1 });
      expect(graph.requests).toHaveLength(1);
    });

    it('When a group is renamed, then the next round reports its new name; the initial round names every group, a quiet round none', async () => {
      const reader = readerFor(graph);
      const initial = await reader.readGroupMemberChanges([G1, G2], null);
      const names = new Map(graph.tenant.groups.map((g) => [g.id, g.displayName]));
      expect(initial.displayNames).toEqual([{ id: G1, displayName: names.get(G1) }, { id: G2, displayName: names.get(G2) }]);
      const quiet = await reader.readGroupMemberChanges([G1, G2], initial.deltaLink);
      expect(quiet.displayNames).toEqual([]);

      graph.tenant.groups.find((g) => g.id === G2)!.displayName = 'Field engineers (EMEA)';
      const round = await reader.readGroupMemberChanges([G1, G2], quiet.deltaLink);
      expect(round).toMatchObject({ added: [], removed: [], removedGroups: [], requests: 1 });
      expect(round.displayNames).toEqual([{ id: G2, displayName: 'Field engineers (EMEA)' }]);
    });

    it('When members are added and removed, then exactly those changes come back; other groups are not reported', async () => {
      graph.tenant.groups.push({ id: groupId(7), displayName: 'Unrelated', members: [] });
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readGroupMemberChanges([G1, G2], null);
      graph.addMember(G1, userId(6));
      graph.removeMember(G1, userId(2));
      graph.tenant.groups[1]!.members.push(userId(5)); // edited directly
      graph.addMember(groupId(7), userId(1));
      graph.addMember(G2, groupId(3));

      const round = await reader.readGroupMemberChanges([G1, G2], deltaLink);
      expect(round.added).toEqual([{ groupId: G1, userId: userId(6) }, { groupId: G2, userId: userId(5) }]);
      expect(round.removed).toEqual([{ groupId: G1, userId: userId(2) }]);
      expect(round.groupsWithNestedChanges).toEqual([G2]);
    });

    it('When a member is soft-deleted it leaves its groups, a restore brings it back, and a deleted group is named', async () => {
      const reader = readerFor(graph);
      let link = (await reader.readGroupMemberChanges([G1, G2], null)).deltaLink;
      graph.softDeleteUser(userId(3));
      let round = await reader.readGroupMemberChanges([G1, G2], link);
      expect(round.removed).toEqual([{ groupId: G1, userId: userId(3) }, { groupId: G2, userId: userId(3) }]);
      link = round.deltaLink;

      graph.restoreUser(userId(3));
      graph.tenant.groups = graph.tenant.groups.filter((g) => g.id !== G2);
      round = await reader.readGroupMemberChanges([G1, G2], link);
      expect(round.added).toEqual([{ groupId: G1, userId: userId(3) }]);
      expect(round.removedGroups).toEqual([G2]);
    });

    it('When a group gains more members than fit a page, then the entries spread over pages are merged', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readGroupMemberChanges([G1], null);
      for (let n = 20; n < 27; n++) graph.addMember(G1, graph.addUser(user(n)).id);
      graph.resetRequests();
      const round = await reader.readGroupMemberChanges([G1], deltaLink);
      expect(round.added.map((m) => m.userId)).toEqual(Array.from({ length: 7 }, (_, i) => userId(20 + i)));
      // 7 members at 3 per entry, one entry per page: the $batch and two nextLink pages.
      expect(round.requests).toBe(3);
    });

    it('When more than 50 groups are tracked, then their delta queries go in one $batch and a quiet round is still one request', async () => {
      for (let n = 100; n < 160; n++) graph.tenant.groups.push({ id: groupId(n), displayName: `G${n}`, members: [userId(1)] });
      const groups = Array.from({ length: 60 }, (_, i) => groupId(100 + i));
      const reader = readerFor(graph);
      const initial = await reader.readGroupMemberChanges(groups, null);
      expect(initial.added).toHaveLength(60);
      expect(graph.batchRequests).toHaveLength(2);
      expect(graph.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

      graph.resetRequests();
      graph.removeMember(groupId(159), userId(1));
      const round = await reader.readGroupMemberChanges(groups, initial.deltaLink);
      expect(round).toMatchObject({ added: [], removed: [{ groupId: groupId(159), userId: userId(1) }], requests: 1 });

      // A watermark started for other groups cannot be used: start again.
      await readError(reader.readGroupMemberChanges(groups.slice(0, 10), round.deltaLink), 'GRAPH_DELTA_EXPIRED', [round.deltaLink]);
    });

    it('When no group is assigned, then no request is made', async () => {
      const reader = readerFor(graph);
      const none = await reader.readGroupMemberChanges([], null);
      expect(none).toMatchObject({ added: [], deltaLink: '', requests: 0 });
      expect(await reader.readGroupMemberChanges([], none.deltaLink)).toMatchObject({ added: [], requests: 0 });
      expect(graph.requests).toHaveLength(0);
    });
  });

  describe('expired watermarks and failures', () => {
    it('When Graph expires the delta tokens (410 syncStateNotFound), then GRAPH_DELTA_EXPIRED for users and groups', async () => {
      const reader = readerFor(graph);
      const users = await reader.readUserChanges(null);
      const groups = await reader.readGroupMemberChanges([groupId(1)], null);
      graph.expireDeltaTokens();

      const error = await readError(reader.readUserChanges(users.deltaLink), 'GRAPH_DELTA_EXPIRED', [users.deltaLink]);
      expect(error).toMatchObject({ status: 410, graphCode: 'syncStateNotFound' });
      const groupError = await readError(reader.readGroupMemberChanges([groupId(1)], groups.deltaLink), 'GRAPH_DELTA_EXPIRED', [groups.deltaLink]);
      expect(groupError.status).toBe(410);
      // A new initial round works.
      expect((await reader.readUserChanges(null)).changed).toHaveLength(6);
    });

    it('When Graph answers resyncRequired or cannot read the token (400), then GRAPH_DELTA_EXPIRED too', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readUserChanges(null);
      graph.expireDeltaTokens({ status: 400, code: 'resyncRequired' });
      expect((await readError(reader.readUserChanges(deltaLink), 'GRAPH_DELTA_EXPIRED', [deltaLink])).graphCode).toBe('resyncRequired');

      const garbled = `${graph.url}/v1.0/users/delta?$deltatoken=not-a-token-we-issued`;
      expect((await readError(reader.readUserChanges(garbled), 'GRAPH_DELTA_EXPIRED')).status).toBe(400);
    });

    it('When a stored deltaLink leads to another host or resource, then GRAPH_DELTA_EXPIRED and nothing is sent', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readUserChanges(null);
      graph.resetRequests();
      const elsewhere = deltaLink.replace(graph.url, 'https://graph.attacker.test');
      const error = await readError(reader.readUserChanges(elsewhere), 'GRAPH_DELTA_EXPIRED', [deltaLink]);
      expect(error.message).toContain('GRAPH_BASE_URL');
      await readError(reader.readGroupMemberChanges([groupId(1)], deltaLink), 'GRAPH_DELTA_EXPIRED', [deltaLink]);
      await readError(reader.readUserChanges('not a url'), 'GRAPH_DELTA_EXPIRED');
      expect(graph.requests).toHaveLength(0);
    });

    it('When Graph sends a nextLink or deltaLink to another host, then the round fails instead of following it', async () => {
      const reader = readerFor(graph);
      graph.nextLinkOrigin = 'https://graph.attacker.test';
      const error = await readError(reader.readUserChanges(null), 'GRAPH_INCOMPLETE');
      expect(error.message).toContain('nextLink to https://graph.attacker.test');
      expect(graph.requests).toHaveLength(1);

      graph.tenant.users = graph.tenant.users.slice(0, 2); // one page: its deltaLink goes elsewhere
      const delta = await readError(reader.readUserChanges(null), 'GRAPH_INCOMPLETE');
      expect(delta.message).toContain('deltaLink to https://graph.attacker.test');
    });

    it('When a page of an incremental round fails, then the round throws (never partial) and the old deltaLink still reads every change', async () => {
      const reader = readerFor(graph);
      const { deltaLink } = await reader.readUserChanges(null);
      for (let n = 30; n < 37; n++) graph.addUser(user(n));
      graph.inject({ kind: 'status', status: 500, times: 1, pathIncludes: '/users/delta', afterMatches: 1 });
      const error = await readError(reader.readUserChanges(deltaLink), 'GRAPH_UNAVAILABLE', [deltaLink]);
      expect(error.concerns).toContain('page 2');

      const retried = await reader.readUserChanges(deltaLink);
      expect(ids(retried.changed)).toEqual(Array.from({ length: 7 }, (_, i) => userId(30 + i)));
    });

    it('When a group delta query fails inside the $batch, then the round throws; a throttled one is sent again and completes', async () => {
      const reader = readerFor(graph);
      graph.inject({ kind: 'status', status: 403, times: 1, pathIncludes: '/groups/delta' });
      const forbidden = await readError(reader.readGroupMemberChanges([groupId(1)], null), 'GRAPH_FORBIDDEN');
      expect(forbidden.permission).toBe('GroupMember.Read.All');

      graph.inject({ kind: 'throttle', times: 1, retryAfterSeconds: 0, pathIncludes: '/groups/delta' });
      const round = await reader.readGroupMemberChanges([groupId(1)], null);
      expect(round.added).toHaveLength(2);
      expect(graph.batchRequests.filter((r) => r.path.startsWith('/groups/delta')).map((r) => r.status)).toEqual([403, 429, 200]);
    });

    it('When a page of a round comes without its nextLink or deltaLink, then the round is incomplete', async () => {
      const reader = readerFor(graph);
      graph.inject({ kind: 'dropLinks', times: 1, pathIncludes: '/users/delta', afterMatches: 1 });
      const error = await readError(reader.readUserChanges(null), 'GRAPH_INCOMPLETE');
      expect(error.message).toContain('neither a nextLink nor a deltaLink');

      graph.inject({ kind: 'dropLinks', times: 1, pathIncludes: '/groups/delta' });
      await readError(reader.readGroupMemberChanges([groupId(1)], null), 'GRAPH_INCOMPLETE');
    });

    it('When Graph refuses the user delta (403), then GRAPH_FORBIDDEN names User.Read.All', async () => {
      graph.inject({ kind: 'status', status: 403, times: 1, pathIncludes: '/users/delta' });
      const forbidden = await readError(readerFor(graph).readUserChanges(null), 'GRAPH_FORBIDDEN');
      expect(forbidden.permission).toBe('User.Read.All');
    });
  });
});
