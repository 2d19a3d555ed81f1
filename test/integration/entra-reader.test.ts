/**
 * The Entra reader end to end: the real DefaultAzureCredential gets tokens from the managed
 * identity emulator, and the reader talks to the Graph emulator over https.
 *
 * MSAL keeps the managed identity endpoint and its token cache per process, so this file starts
 * one identity emulator and one credential; a test that needs a fresh token request starts its
 * own Graph emulator (a new port is a new resource, hence a cache miss).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DefaultAzureCredential } from '@azure/identity';
import { memoryLogger } from '../../shared/log';
import { createGraphClient } from '../../shared/entra/graph-client';
import { EntraReader, odataString } from '../../shared/entra/reader';
import { EntraReadError, type EntraReadErrorCode } from '../../shared/entra/errors';
import { startGraphEmulator, type EmulatedTenant, type GraphEmulator } from '../emulators/graph';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';

const hex = (prefix: string, n: number): string => `${prefix}-0000-4000-8000-${String(n).padStart(12, '0')}`;
const userId = (n: number): string => hex('00000000', n);
const groupId = (n: number): string => hex('99999999', n);
const SP = hex('5e5e5e5e', 1);
const ROBOT_SP = hex('5e5e5e5e', 2);
const MI_CLIENT_ID = hex('c1c1c1c1', 1);
const DEFAULT_ACCESS = '00000000-0000-0000-0000-000000000000';
const ROLE_ADMIN = hex('a0a0a0a0', 1);
const ROLE_USER = hex('a0a0a0a0', 2);

type TenantUser = EmulatedTenant['users'][number];
const user = (n: number, extra: Partial<TenantUser> = {}): TenantUser => ({
  id: userId(n),
  userPrincipalName: `user${n}@contoso.test`,
  displayName: `User ${n}`,
  givenName: 'User',
  surname: `N${n}`,
  mail: `user${n}@contoso.test`,
  accountEnabled: true,
  department: 'Support',
  ...extra,
});

let assignmentSeq = 0;
const assign = (principalId: string, principalType: 'User' | 'Group' | 'ServicePrincipal', appRoleId = DEFAULT_ACCESS) =>
  ({ id: `assignment-${++assignmentSeq}`, resourceId: SP, principalId, principalType, appRoleId });

/**
 * 1 direct (admin role) · 2 via group 1 (default access) · 3 direct (user role) and via groups 1 and 2
 * · 4 member of group 3, which is nested in group 1 only · 5 direct, disabled · 6 not assigned
 * · 7 assigned directly but deleted · the robot service principal is assigned too.
 */
function scenarioTenant(): EmulatedTenant {
  return {
    servicePrincipals: [
      { id: SP, appId: hex('ab000000', 1), displayName: 'TeamViewer' },
      { id: ROBOT_SP, appId: hex('ab000000', 2), displayName: 'Robot' },
    ],
    users: [user(1), user(2), user(3), user(4), user(5, { accountEnabled: false }), user(6)],
    groups: [
      { id: groupId(1), displayName: 'Support', members: [userId(2), userId(3), groupId(3), ROBOT_SP] },
      { id: groupId(2), displayName: 'Admins', members: [userId(3)] },
      { id: groupId(3), displayName: 'Nested', members: [userId(4)] },
    ],
    assignments: [
      assign(userId(1), 'User', ROLE_ADMIN),
      assign(groupId(1), 'Group'),
      assign(userId(3), 'User', ROLE_USER),
      assign(groupId(2), 'Group', ROLE_ADMIN),
      assign(userId(5), 'User'),
      assign(ROBOT_SP, 'ServicePrincipal'),
      assign(userId(7), 'User'),
    ],
  };
}

function directTenant(count: number): EmulatedTenant {
  const users = Array.from({ length: count }, (_, i) => user(1000 + i));
  return {
    servicePrincipals: [{ id: SP, appId: hex('ab000000', 1), displayName: 'TeamViewer' }],
    users,
    groups: [],
    assignments: users.map((u) => assign(u.id, 'User')),
  };
}

/** Variables that would make DefaultAzureCredential use something other than the managed identity. */
const CREDENTIAL_ENV = ['AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_USERNAME', 'AZURE_FEDERATED_TOKEN_FILE'];

describe('Entra reader against the Graph and managed identity emulators', () => {
  let identity: IdentityEmulator;
  let graph: GraphEmulator;
  let credential: DefaultAzureCredential;
  const extraEmulators: GraphEmulator[] = [];
  const savedEnv: Record<string, string | undefined> = {};
  let logger: ReturnType<typeof memoryLogger>;

  const readerFor = (emulator: GraphEmulator, options: { servicePrincipalId?: string; maxRetryAfterSeconds?: number } = {}) =>
    new EntraReader({
      client: createGraphClient({
        graphBaseUrl: emulator.url,
        credential,
        logger,
        retry: { maxRetries: 3, delaySeconds: 0.01, maxRetryAfterSeconds: options.maxRetryAfterSeconds ?? 5 },
      }),
      servicePrincipalId: options.servicePrincipalId ?? SP,
      logger,
    });

  /** Awaits a failing read; checks its code and that no token or identity secret leaked into it or the logs. */
  async function readError(promise: Promise<unknown>, code: EntraReadErrorCode): Promise<EntraReadError> {
    const error = await promise.then(
      (value) => { throw new Error(`expected ${code}, but the read returned ${JSON.stringify(value).slice(0, 200)}`); },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EntraReadError);
    const readError = error as EntraReadError;
    expect(readError.code).toBe(code);
    const everything = [readError.message, JSON.stringify(readError), String(readError.stack), JSON.stringify(logger.lines)].join('\n');
    expect(identity.issued.size).toBeGreaterThan(0);
    for (const token of identity.issued) expect(everything).not.toContain(token);
    expect(everything).not.toContain(identity.header);
    return readError;
  }

  beforeAll(async () => {
    for (const name of [...CREDENTIAL_ENV, 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_TOKEN_CREDENTIALS']) {
      savedEnv[name] = process.env[name];
      delete process.env[name];
    }
    identity = await startIdentityEmulator({ clientId: MI_CLIENT_ID });
    process.env.IDENTITY_ENDPOINT = identity.endpoint;
    process.env.IDENTITY_HEADER = identity.header;
    // The production chain only (environment, workload identity, managed identity): a developer's
    // Azure CLI login must not answer instead. Not "ManagedIdentityCredential": with that value
    // @azure/identity 4.13 ignores the options below (managedIdentityClientId, retryOptions).
    process.env.AZURE_TOKEN_CREDENTIALS = 'prod';
    credential = new DefaultAzureCredential({ managedIdentityClientId: MI_CLIENT_ID, retryOptions: { maxRetries: 1, retryDelayInMs: 10 } });
    graph = await startGraphEmulator({ tenant: scenarioTenant(), pageSize: 3, isValidToken: (token) => identity.isValid(token) });
  });

  afterAll(async () => {
    await Promise.all([graph?.close(), identity?.close(), ...extraEmulators.map((e) => e.close())]);
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  beforeEach(() => {
    graph.tenant = scenarioTenant();
    graph.clearFaults();
    graph.resetRequests();
    graph.nextLinkOrigin = undefined;
    identity.fail(0);
    logger = memoryLogger();
  });

  describe('who is in scope', () => {
    it('When users are assigned directly and through groups over several pages, then each appears once with how they came in', async () => {
      const { users, stats } = await readerFor(graph).readAssignedUsers();

      expect(users.map((u) => u.id)).toEqual([1, 2, 3, 5].map(userId));
      const byId = new Map(users.map((u) => [u.id, u]));
      expect(byId.get(userId(1))).toEqual({
        id: userId(1), userPrincipalName: 'user1@contoso.test', displayName: 'User 1', givenName: 'User', surname: 'N1',
        mail: 'user1@contoso.test', accountEnabled: true, direct: true, viaGroups: [], appRoleIds: [ROLE_ADMIN],
        attributes: {},
      });
      expect(byId.get(userId(2))).toMatchObject({ direct: false, viaGroups: [groupId(1)], appRoleIds: [DEFAULT_ACCESS] });
      const both = byId.get(userId(3));
      expect(both).toMatchObject({ direct: true, appRoleIds: [DEFAULT_ACCESS, ROLE_ADMIN, ROLE_USER].sort() });
      expect([...(both?.viaGroups ?? [])].sort()).toEqual([groupId(1), groupId(2)]);
      expect(byId.get(userId(5))).toMatchObject({ accountEnabled: false, direct: true, appRoleIds: [DEFAULT_ACCESS] });

      // 7 assignments at 3 per page.
      expect(stats).toEqual({ requests: expect.any(Number), assignments: 7, groups: 2, ignoredServicePrincipals: 1 });
      expect(graph.requests.filter((r) => r.path.includes('appRoleAssignedTo'))).toHaveLength(3);
      expect(stats.requests).toBe(graph.requests.length);
      // The user-assigned identity asked for a token for this Graph, and only that.
      expect(identity.requests).toContainEqual({ resource: graph.url, clientId: MI_CLIENT_ID, apiVersion: '2019-08-01', status: 200 });
      expect(identity.requests.every((r) => r.clientId === MI_CLIENT_ID)).toBe(true);
    });

    it('When a group is nested in an assigned group, then its members are not brought in (as in Entra)', async () => {
      const { users } = await readerFor(graph).readAssignedUsers();
      expect(users.map((u) => u.id)).not.toContain(userId(4));
      expect(graph.batchRequests.some((r) => r.path.includes('transitiveMembers'))).toBe(false);
    });

    it('When a directly assigned user no longer exists, then it is left out with a debug line', async () => {
      const { users } = await readerFor(graph).readAssignedUsers();
      expect(users.map((u) => u.id)).not.toContain(userId(7));
      expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'debug', fields: { userId: userId(7) } }));
    });

    it('When the tenant changes between reads, then the next read reflects it', async () => {
      const reader = readerFor(graph);
      await reader.readAssignedUsers();
      graph.tenant.groups[0]!.members = [userId(6)];
      graph.tenant.users[0]!.accountEnabled = false;
      const { users } = await reader.readAssignedUsers();
      expect(users.map((u) => u.id)).toEqual([1, 3, 5, 6].map(userId));
      expect(users.find((u) => u.id === userId(1))?.accountEnabled).toBe(false);
      expect(users.find((u) => u.id === userId(3))?.viaGroups).toEqual([groupId(2)]);
    });

    it('When 300 users are assigned directly, then the read costs 4 requests: 3 pages and one $batch of id filters', async () => {
      const big = await startGraphEmulator({ tenant: directTenant(300), pageSize: 100, isValidToken: (t) => identity.isValid(t) });
      extraEmulators.push(big);
      const { users, stats } = await readerFor(big).readAssignedUsers();
      expect(users).toHaveLength(300);
      expect(users.every((u) => u.accountEnabled && u.userPrincipalName.endsWith('@contoso.test') && u.direct)).toBe(true);
      expect(big.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'POST']);
      expect(stats.requests).toBe(4);
      expect(big.batchRequests).toHaveLength(20);
      expect(big.batchRequests.every((r) => r.path.startsWith('/users?$filter=id in ('))).toBe(true);
    });

    it('When the service principal is read, then its id, appId and name come back', async () => {
      expect(await readerFor(graph).getServicePrincipal()).toEqual({ id: SP, appId: hex('ab000000', 1), displayName: 'TeamViewer' });
    });
  });

  describe('assigned groups and their names', () => {
    it('When group names are asked for, then each assigned group comes with its current name, read in the $batch call that reads the member lists', async () => {
      const reader = readerFor(graph);
      const plain = await reader.readAssignedUsers();
      expect(plain.assignedGroups).toBeUndefined();
      const plainRequests = graph.requests.length;
      expect(graph.batchRequests.some((r) => r.path.startsWith('/groups?'))).toBe(false);

      graph.resetRequests();
      graph.tenant.groups[1]!.displayName = 'Administrators (renamed)';
      const named = await reader.readAssignedUsers({ groupNames: true });
      expect(named.assignedGroups).toEqual([
        { id: groupId(1), displayName: 'Support' },
        { id: groupId(2), displayName: 'Administrators (renamed)' },
      ]);
      expect(named.users).toEqual(plain.users);
      expect(graph.requests).toHaveLength(plainRequests);
      expect(graph.batchRequests.filter((r) => r.path.startsWith('/groups?')).map((r) => r.path)).toEqual([
        `/groups?$filter=id in ('${groupId(1)}','${groupId(2)}')&$select=id,displayName`,
      ]);
    });

    it('When 20 groups are assigned, then their names are read 15 per id filter and every one comes back, hostile text as it is', async () => {
      for (let n = 10; n < 28; n++) {
        graph.tenant.groups.push({ id: groupId(n), displayName: n === 27 ? 'Ops\u0007 "quoted" \'single\' <b>' : `Team ${n}`, members: [] });
        graph.tenant.assignments.push(assign(groupId(n), 'Group'));
      }
      const { assignedGroups, assignedGroupIds } = await readerFor(graph).readAssignedUsers({ groupNames: true, scope: 'all' });
      expect(assignedGroups?.map((g) => g.id)).toEqual(assignedGroupIds);
      expect(assignedGroups).toHaveLength(20);
      expect(assignedGroups?.find((g) => g.id === groupId(27))?.displayName).toBe('Ops\u0007 "quoted" \'single\' <b>');
      expect(graph.batchRequests.filter((r) => r.path.startsWith('/groups?$filter=id in ('))).toHaveLength(2);
    });

    it('When the names cannot be read, then the whole read fails rather than come back without them', async () => {
      graph.inject({ kind: 'status', status: 403, times: 1, pathIncludes: '/groups?$filter' });
      const error = await readError(readerFor(graph).readAssignedUsers({ groupNames: true }), 'GRAPH_FORBIDDEN');
      expect(error.message).toMatch(/GroupMember\.Read\.All/);
    });
  });

  describe('scope all, nested groups and extra attributes', () => {
    it('When the scope is all, then every user of the tenant comes back over all pages, with assignment facts where there are some', async () => {
      const { users, assignedGroupIds, directUserIds } = await readerFor(graph).readAssignedUsers({ scope: 'all' });

      expect(users.map((u) => u.id)).toEqual([1, 2, 3, 4, 5, 6].map(userId));
      const byId = new Map(users.map((u) => [u.id, u]));
      expect(byId.get(userId(6))).toMatchObject({ direct: false, viaGroups: [], appRoleIds: [], userPrincipalName: 'user6@contoso.test' });
      // Nested group members are users of the tenant but not brought in by an assignment.
      expect(byId.get(userId(4))).toMatchObject({ direct: false, viaGroups: [], appRoleIds: [] });
      expect(byId.get(userId(1))).toMatchObject({ direct: true, appRoleIds: [ROLE_ADMIN] });
      expect(byId.get(userId(3))).toMatchObject({ direct: true, appRoleIds: [DEFAULT_ACCESS, ROLE_ADMIN, ROLE_USER].sort() });
      expect([...(byId.get(userId(3))?.viaGroups ?? [])].sort()).toEqual([groupId(1), groupId(2)]);
      expect(byId.get(userId(5))).toMatchObject({ direct: true, accountEnabled: false });
      expect(assignedGroupIds).toEqual([groupId(1), groupId(2)]);
      expect(directUserIds).toEqual([1, 3, 5, 7].map(userId));

      // 6 users at 3 per page; member lists carry only ids; no user is read twice.
      expect(graph.requests.filter((r) => r.path.startsWith('/v1.0/users?'))).toHaveLength(2);
      expect(graph.requests.find((r) => r.path.startsWith('/v1.0/users?'))?.path).toContain('$top=999');
      const memberReads = graph.batchRequests.filter((r) => r.path.includes('/members/'));
      expect(memberReads).toHaveLength(2);
      expect(memberReads.every((r) => r.path.includes('$select=id&'))).toBe(true);
      expect(graph.batchRequests.some((r) => r.path.startsWith('/users?$filter'))).toBe(false);
    });

    it('When the scope is all, then assigned users read exactly as with the assigned scope', async () => {
      const reader = readerFor(graph);
      const all = await reader.readAssignedUsers({ scope: 'all', attributes: ['department'] });
      const assigned = await reader.readAssignedUsers({ attributes: ['department'] });
      expect(all.users.filter((u) => u.direct || u.viaGroups.length > 0)).toEqual(assigned.users);
    });

    it('When a user is only in a group nested in an assigned group, then it is in scope only with expandNestedGroups', async () => {
      const reader = readerFor(graph);
      const flat = await reader.readAssignedUsers();
      expect(flat.users.map((u) => u.id)).not.toContain(userId(4));

      graph.resetRequests();
      const nested = await reader.readAssignedUsers({ expandNestedGroups: true });
      expect(nested.users.map((u) => u.id)).toEqual([1, 2, 3, 4, 5].map(userId));
      expect(nested.users.find((u) => u.id === userId(4))).toMatchObject({ direct: false, viaGroups: [groupId(1)], appRoleIds: [DEFAULT_ACCESS] });
      const memberReads = graph.batchRequests.filter((r) => r.path.startsWith('/groups/'));
      expect(memberReads.map((r) => r.path.split('?')[0]).sort()).toEqual([
        `/groups/${groupId(1)}/transitiveMembers/microsoft.graph.user`,
        `/groups/${groupId(2)}/transitiveMembers/microsoft.graph.user`,
      ]);

      const all = await reader.readAssignedUsers({ scope: 'all', expandNestedGroups: true });
      expect(all.users.find((u) => u.id === userId(4))).toMatchObject({ viaGroups: [groupId(1)] });
    });

    it('When a user sits at the end of a deep chain of nested groups (with a loop), then only expandNestedGroups finds it', async () => {
      graph.addUser(user(8));
      graph.tenant.groups.push(
        { id: groupId(4), displayName: 'Level 2', members: [groupId(5)] },
        { id: groupId(5), displayName: 'Level 3', members: [groupId(6), groupId(3)] },
        { id: groupId(6), displayName: 'Level 4', members: [userId(8), groupId(4)] },
      );
      graph.addMember(groupId(3), groupId(4));
      const reader = readerFor(graph);
      expect((await reader.readAssignedUsers()).users.map((u) => u.id)).not.toContain(userId(8));
      const deep = await reader.readAssignedUsers({ expandNestedGroups: true });
      expect(deep.users.find((u) => u.id === userId(8))).toMatchObject({ viaGroups: [groupId(1)], appRoleIds: [DEFAULT_ACCESS] });
      expect(deep.users.filter((u) => u.id === userId(4))).toHaveLength(1);
    });

    it('When extra attributes are asked for, then they come back by canonical name, extension attributes flattened, unset ones null', async () => {
      graph.updateUser(userId(1), { onPremisesExtensionAttributes: { extensionAttribute3: 'EMEA', extensionAttribute7: 'x' }, jobTitle: 'Engineer' });
      graph.updateUser(userId(2), { department: null });
      const attributes = ['department', 'EXTENSIONATTRIBUTE3', 'jobTitle', 'physicalDeliveryOfficeName', 'onPremisesExtensionAttributes.extensionAttribute7'];
      const { users } = await readerFor(graph).readAssignedUsers({ attributes });

      const byId = new Map(users.map((u) => [u.id, u]));
      expect(byId.get(userId(1))?.attributes).toEqual({ department: 'Support', extensionAttribute3: 'EMEA', jobTitle: 'Engineer', officeLocation: null, extensionAttribute7: 'x' });
      expect(byId.get(userId(2))?.attributes).toEqual({ department: null, extensionAttribute3: null, jobTitle: null, officeLocation: null, extensionAttribute7: null });
      // The base fields are still there, and every read selected what the attributes need.
      expect(byId.get(userId(1))).toMatchObject({ userPrincipalName: 'user1@contoso.test', accountEnabled: true });
      const reads = graph.batchRequests.map((r) => new URLSearchParams(r.path.split('?')[1]).get('$select') ?? '');
      expect(reads.length).toBeGreaterThan(0);
      for (const select of reads) {
        expect(select.split(',')).toEqual(expect.arrayContaining(['accountEnabled', 'department', 'onPremisesExtensionAttributes', 'jobTitle', 'officeLocation']));
      }
    });

    it('When an attribute is not in the catalogue, then the read throws before any request', async () => {
      await expect(readerFor(graph).readAssignedUsers({ attributes: ['department', 'favouriteColour'] })).rejects.toMatchObject({ code: 'ATTRIBUTE_UNKNOWN', attribute: 'favouriteColour' });
      expect(graph.requests).toHaveLength(0);
    });

    it('When appRoleAssignments is asked for, then each user carries the values of its app roles (default access has none), for one more request', async () => {
      graph.tenant.servicePrincipals[0]!.appRoles = [
        { id: ROLE_ADMIN, value: 'Admin', displayName: 'Administrator', allowedMemberTypes: ['User'], isEnabled: true },
        { id: ROLE_USER, value: null, displayName: 'Standard user', allowedMemberTypes: ['User'], isEnabled: true },
      ];
      const reader = readerFor(graph);
      const plain = await reader.readAssignedUsers();
      expect(plain.users.every((u) => u.appRoleValues === undefined)).toBe(true);
      const plainRequests = graph.requests.length;
      graph.resetRequests();

      const { users, stats } = await reader.readAssignedUsers({ attributes: ['appRoleAssignments', 'IsSoftDeleted'] });
      const byId = new Map(users.map((u) => [u.id, u]));
      expect(byId.get(userId(1))?.appRoleValues).toEqual(['Admin']);
      expect(byId.get(userId(2))?.appRoleValues).toEqual([]);
      expect([...(byId.get(userId(3))?.appRoleValues ?? [])].sort()).toEqual(['Admin', 'Standard user']);
      expect(byId.get(userId(1))?.attributes).toEqual({});
      expect(stats.requests).toBe(plainRequests + 1);
    });
  });

  describe('soft-deleted users', () => {
    it('When a user is soft-deleted, then it and its assignments leave the read, the deleted items name it, and a restore brings it back', async () => {
      const reader = readerFor(graph);
      graph.softDeleteUser(userId(1));
      graph.softDeleteUser(userId(2));
      const whileDeleted = await reader.readAssignedUsers();
      expect(whileDeleted.users.map((u) => u.id)).toEqual([3, 5].map(userId));
      expect(whileDeleted.directUserIds).not.toContain(userId(1));
      expect((await reader.readAssignedUsers({ scope: 'all' })).users.map((u) => u.id)).not.toContain(userId(1));

      // 2 soft-deleted, 7 hard-deleted, 3 live, an id in upper case, and something that is no object id.
      const asked = [userId(1), userId(2).toUpperCase(), userId(3), userId(7), "x') or (id ne '"];
      expect(await reader.readDeletedUserIds(asked)).toEqual(new Set([userId(1), userId(2).toUpperCase()]));
      // What is no object id cannot be a deleted user: it never reaches a filter.
      expect(graph.batchRequests.filter((r) => r.path.includes('deletedItems')).map((r) => r.path).join()).not.toContain('id ne');

      graph.restoreUser(userId(1));
      const restored = await reader.readAssignedUsers();
      expect(restored.users.find((u) => u.id === userId(1))).toMatchObject({ direct: true, appRoleIds: [ROLE_ADMIN] });
      expect(await reader.readDeletedUserIds(asked)).toEqual(new Set([userId(2).toUpperCase()]));

      graph.hardDeleteUser(userId(2));
      expect(await reader.readDeletedUserIds(asked)).toEqual(new Set());
    });

    it('When 40 ids are checked, then it costs one $batch of 15-id filters; none costs no request', async () => {
      for (let n = 100; n < 140; n++) graph.addUser(user(n, { deletedDateTime: '2025-01-02T03:04:05Z' }));
      const reader = readerFor(graph);
      graph.resetRequests();
      expect(await reader.readDeletedUserIds([])).toEqual(new Set());
      expect(graph.requests).toHaveLength(0);

      const ids = Array.from({ length: 40 }, (_, i) => userId(100 + i));
      const deleted = await reader.readDeletedUserIds(ids);
      expect(deleted).toEqual(new Set(ids));
      // 15 + 15 + 10 ids in one $batch; each list spans pages of 3, whose nextLinks are followed.
      expect(graph.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
      expect(graph.batchRequests).toHaveLength(3);
      expect(graph.batchRequests.every((r) => r.path.startsWith('/directory/deletedItems/microsoft.graph.user?$filter=id in ('))).toBe(true);
    });

    it('When Graph refuses the deleted items, then GRAPH_FORBIDDEN names User.Read.All', async () => {
      graph.inject({ kind: 'status', status: 403, times: 1, pathIncludes: 'deletedItems' });
      const error = await readError(readerFor(graph).readDeletedUserIds([userId(1)]), 'GRAPH_FORBIDDEN');
      expect(error.permission).toBe('User.Read.All');
    });
  });

  describe('throttling and failures', () => {
    it('When Graph throttles a page with Retry-After, then the reader waits that long and returns the full list', async () => {
      const expected = (await readerFor(graph).readAssignedUsers()).users;
      graph.resetRequests();
      graph.inject({ kind: 'throttle', times: 1, retryAfterSeconds: 1, pathIncludes: 'appRoleAssignedTo', afterMatches: 1 });
      const started = Date.now();
      const { users } = await readerFor(graph).readAssignedUsers();
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(users).toEqual(expected);
      expect(graph.requests.filter((r) => r.path.includes('appRoleAssignedTo')).map((r) => r.status)).toEqual([200, 429, 200, 200]);
      expect(logger.lines.some((l) => l.level === 'warn' && l.fields?.status === 429)).toBe(true);
    });

    it('When a read inside a $batch is throttled, then only that read is sent again after its Retry-After', async () => {
      const expected = (await readerFor(graph).readAssignedUsers()).users;
      graph.resetRequests();
      graph.inject({ kind: 'throttle', times: 1, retryAfterSeconds: 1, pathIncludes: '/users?' });
      const started = Date.now();
      const { users } = await readerFor(graph).readAssignedUsers();
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(users).toEqual(expected);
      const userReads = graph.batchRequests.filter((r) => r.path.startsWith('/users?'));
      expect(userReads.map((r) => r.status)).toEqual([429, 200]);
      const memberReads = graph.batchRequests.filter((r) => r.path.includes('/members/'));
      expect(memberReads).toHaveLength(2);
    });

    it('When the third page fails with 500, then the read throws and returns no users', async () => {
      graph.inject({ kind: 'status', status: 500, times: 1, pathIncludes: 'appRoleAssignedTo', afterMatches: 2 });
      const reader = readerFor(graph);
      const error = await readError(reader.readAssignedUsers(), 'GRAPH_UNAVAILABLE');
      expect(error.status).toBe(500);
      expect(error.concerns).toContain('page 3');
    });

    it('When Graph keeps answering 503, then the read gives up after the retries with GRAPH_UNAVAILABLE', async () => {
      graph.inject({ kind: 'status', status: 503, times: 100, retryAfterSeconds: 0, pathIncludes: 'appRoleAssignedTo' });
      const error = await readError(readerFor(graph).readAssignedUsers(), 'GRAPH_UNAVAILABLE');
      expect(error.status).toBe(503);
      expect(graph.requests).toHaveLength(4);
    });

    it('When Graph keeps throttling a batch read, then GRAPH_THROTTLED says how long Graph asked to wait', async () => {
      graph.inject({ kind: 'throttle', times: 100, retryAfterSeconds: 0, pathIncludes: '/members/' });
      const error = await readError(readerFor(graph).readAssignedUsers(), 'GRAPH_THROTTLED');
      expect(error.status).toBe(429);
      expect(error.retryAfter).toBe(0);
      expect(graph.batchRequests.filter((r) => r.status === 429).length).toBe(2 * 4);
    });

    it('When Retry-After is longer than we are willing to wait, then the read fails at once with retryAfter', async () => {
      graph.inject({ kind: 'throttle', times: 1, retryAfterSeconds: 600, pathIncludes: 'appRoleAssignedTo' });
      const started = Date.now();
      const error = await readError(readerFor(graph, { maxRetryAfterSeconds: 30 }).readAssignedUsers(), 'GRAPH_THROTTLED');
      expect(Date.now() - started).toBeLessThan(2000);
      expect(error.retryAfter).toBe(600);
    });

    it('When the connection keeps being reset, then GRAPH_UNAVAILABLE after the retries; once is survived', async () => {
      graph.inject({ kind: 'reset', times: 1, pathIncludes: 'appRoleAssignedTo', afterMatches: 1 });
      expect((await readerFor(graph).readAssignedUsers()).users).toHaveLength(4);
      graph.clearFaults();
      graph.resetRequests();
      graph.inject({ kind: 'reset', times: 100 });
      await readError(readerFor(graph).readAssignedUsers(), 'GRAPH_UNAVAILABLE');
      expect(graph.requests.map((r) => r.status)).toEqual([0, 0, 0, 0]);
    });

    it('When Graph sends a nextLink to another host, then the reader refuses to follow it', async () => {
      graph.nextLinkOrigin = 'https://graph.attacker.test';
      const error = await readError(readerFor(graph).readAssignedUsers(), 'GRAPH_INCOMPLETE');
      expect(error.message).toContain('https://graph.attacker.test');
      expect(graph.requests).toHaveLength(1);
    });

    it('When an assignment carries a principal id that is not a GUID, then nothing reaches a filter and the read fails', async () => {
      graph.tenant.assignments.push(assign("x') or (id ne '", 'User'));
      await readError(readerFor(graph).readAssignedUsers(), 'GRAPH_INCOMPLETE');
      expect(graph.batchRequests).toHaveLength(0);
      expect(odataString("o'brien@contoso.test")).toBe("'o''brien@contoso.test'");
    });
  });

  describe('permissions and identity', () => {
    it.each([
      ['appRoleAssignedTo', 'Application.Read.All'],
      ['/members/', 'GroupMember.Read.All'],
      ['/users?', 'User.Read.All'],
    ])('When Graph answers 403 on %s, then GRAPH_FORBIDDEN names %s', async (pathIncludes, permission) => {
      graph.inject({ kind: 'status', status: 403, times: 1, pathIncludes });
      const error = await readError(readerFor(graph).readAssignedUsers(), 'GRAPH_FORBIDDEN');
      expect(error.permission).toBe(permission);
      expect(error.message).toContain(permission);
      expect(error.graphCode).toBe('Authorization_RequestDenied');
    });

    it('When the service principal id is wrong, then GRAPH_NOT_FOUND says to use the Object ID', async () => {
      const reader = readerFor(graph, { servicePrincipalId: hex('deadbeef', 1) });
      const read = await readError(reader.readAssignedUsers(), 'GRAPH_NOT_FOUND');
      expect(read.message).toContain('Object ID');
      expect(read.status).toBe(404);
      await readError(reader.getServicePrincipal(), 'GRAPH_NOT_FOUND');
      graph.resetRequests();
      await readError(readerFor(graph, { servicePrincipalId: 'TeamViewer' }).readAssignedUsers(), 'GRAPH_NOT_FOUND');
      expect(graph.requests).toHaveLength(0);
    });

    it('When the managed identity endpoint fails, then GRAPH_AUTH_FAILED carries its reason and Graph is not called', async () => {
      const fresh = await startGraphEmulator({ tenant: scenarioTenant(), isValidToken: (t) => identity.isValid(t) });
      extraEmulators.push(fresh);
      identity.fail(10, 500);
      const error = await readError(readerFor(fresh).readAssignedUsers(), 'GRAPH_AUTH_FAILED');
      expect(error.message).toContain('emulated 500');
      expect(fresh.requests).toHaveLength(0);
    });

    it('When Graph rejects the token, then GRAPH_UNAUTHORIZED', async () => {
      const strict = await startGraphEmulator({ tenant: scenarioTenant(), isValidToken: () => false });
      extraEmulators.push(strict);
      const error = await readError(readerFor(strict).readAssignedUsers(), 'GRAPH_UNAUTHORIZED');
      expect(error.status).toBe(401);
      expect(error.graphCode).toBe('InvalidAuthenticationToken');
    });
  });
});
