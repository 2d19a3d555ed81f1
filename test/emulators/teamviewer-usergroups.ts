/**
 * TeamViewer Web API v1 user groups and roles, for the TeamViewer emulator (mounted by
 * test/emulators/teamviewer.ts, behind its bearer-token check, rate limit, faults and request log),
 * faithful to /work/shared/spec/teamviewer-usergroups.md.
 *
 *   GET    /usergroups[?paginationToken=…]            { resources: [{ id, name }], nextPaginationToken }
 *   POST   /usergroups                                { name } → 200 { id, name }; 409 name taken
 *   GET    /usergroups/{id}                           { id, name }; 404 unknown
 *   PUT    /usergroups/{id}                           { name } → 200 { id, name }
 *   DELETE /usergroups/{id}                           204 (memberships and role assignment go with it)
 *   GET    /usergroups/{id}/members[?paginationToken] { resources: [{ accountId, name }], nextPaginationToken }
 *   POST   /usergroups/{id}/members                   [accountId, …] (1–100) → 200 the given members
 *   DELETE /usergroups/{id}/members                   [accountId, …] (1–100, a body on DELETE) → 204
 *   GET    /usergroups/{id}/userroles                 { assignedRoleId: guid | null }   (ASSUMED shape)
 *   GET    /userroles                                 { Roles: [{ Id, Name, Permissions }] }
 *   POST   /userroles/assign/usergroup                { UserRoleId, UserGroupId } → 204
 *   POST   /userroles/unassign/usergroup              { UserGroupId } → 204             (ASSUMED)
 *
 * Invariants, as TeamViewer keeps them (ASSUMED where the spec says so):
 * - Group names are unique per company compared without case, 1–100 characters; renaming a group
 *   to another spelling of its own name is allowed.
 * - A member is an account id (the SCIM user id without its `u`) of a user that exists; a user
 *   removed from the company leaves every group (members are listed only while their user exists).
 * - Adding a member twice, or removing one that is not a member, changes nothing and succeeds.
 * - A group holds at most one role; deleting a group takes its memberships and role with it.
 * - Lists are paged by an opaque token, `pageSize` per page (default 50), in creation order; the
 *   last page has `nextPaginationToken: null`.
 * - Without a licence (or a token without User groups rights), every call here is 403 — never
 *   rate_limit_reached.
 *
 * Test conveniences: groups(), members(), roleOf(), roles(), addRole(), seedGroup(),
 * addMemberByHand() and setAccess() act as an admin in the Management Console would.
 */
import { randomBytes, randomUUID } from 'node:crypto';

/** `licensed`; `no-licence`: the company has no Tensor licence; `no-rights`: the token lacks *User groups*. */
export type UserGroupsAccess = 'licensed' | 'no-licence' | 'no-rights';

export interface UserGroupsEmulatorOptions {
  /** Groups or members per page (default 50). */
  pageSize?: number;
  /** Default `licensed`. */
  access?: UserGroupsAccess;
}

export interface UserGroupsEmulator {
  /** Every group, in creation order. */
  groups(): Array<{ id: string; name: string }>;
  /** The group's members as TeamViewer user ids (`u1234567`), in the order they joined. */
  members(groupId: string): string[];
  /** The id of the group's role, or null. */
  roleOf(groupId: string): string | null;
  roles(): Array<{ id: string; name: string }>;
  /** A role made in the Management Console (a fresh GUID id). */
  addRole(name: string): { id: string; name: string };
  /** A group made in the Management Console, with members given as user ids (`u…`) or account ids. */
  seedGroup(name: string, members?: string[]): { id: string; name: string };
  addMemberByHand(groupId: string, member: string): void;
  setAccess(access: UserGroupsAccess): void;
}

/** What the host emulator needs to know about its users. */
export interface AccountDirectory {
  /** The display name of the user with this account id, or undefined when there is no such user. */
  nameOf(accountId: number): string | undefined;
}

export interface UserGroupsAnswer {
  status: number;
  body?: unknown;
}

interface StoredGroup {
  id: number;
  name: string;
  /** Account ids, in the order they joined. */
  members: number[];
  roleId: string | null;
}

const MAX_NAME = 100;
const MAX_IDS_PER_CALL = 100;
const SEEDED_ROLES = ['Default role', 'Support agent', 'Administrator'];

function webApiError(status: number, error: string, description: string, code: number): UserGroupsAnswer {
  return { status, body: { error, error_description: description, error_code: code } };
}

const invalid = (description: string) => webApiError(400, 'invalid_request', description, 2);
const notFound = (description: string) => webApiError(404, 'not_found', description, 4);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Characters, not UTF-16 units (ASSUMED: TeamViewer counts what a person sees). */
const lengthOf = (text: string): number => [...text].length;

/** `u1234567` or `1234567` → 1234567. */
function accountIdOf(member: string): number {
  const match = /^u?(\d+)$/.exec(member);
  if (!match) throw new Error(`emulator: "${member}" is neither a user id nor an account id`);
  return Number(match[1]);
}

export function createUserGroups(accounts: AccountDirectory, options: UserGroupsEmulatorOptions = {}): UserGroupsEmulator & {
  /** The answer for a Web API route below /api/v1, or undefined when the route is not about groups or roles. */
  handle(method: string, route: string, params: URLSearchParams, body: unknown): UserGroupsAnswer | undefined;
} {
  const pageSize = options.pageSize ?? 50;
  let access: UserGroupsAccess = options.access ?? 'licensed';
  const groups = new Map<number, StoredGroup>();
  const roles = new Map<string, string>(SEEDED_ROLES.map((name) => [randomUUID(), name]));
  const pages = new Map<string, { list: 'groups' | 'members'; groupId?: number; offset: number }>();
  let nextId = 10_000_000 + Math.floor(Math.random() * 1_000_000);

  const nameTaken = (name: string, exceptId?: number): boolean =>
    [...groups.values()].some((g) => g.id !== exceptId && g.name.toLowerCase() === name.toLowerCase());

  /** Members whose user still exists: a user removed from the company leaves its groups. */
  const liveMembers = (group: StoredGroup): number[] => group.members.filter((id) => accounts.nameOf(id) !== undefined);

  const checkName = (body: unknown): string | UserGroupsAnswer => {
    const name = isObject(body) ? body.name : undefined;
    if (typeof name !== 'string' || lengthOf(name) < 1 || lengthOf(name) > MAX_NAME) {
      return invalid(`name must be a string of 1 to ${MAX_NAME} characters.`);
    }
    return name;
  };

  const addGroup = (name: string, members: number[] = []): StoredGroup => {
    const group: StoredGroup = { id: nextId++, name, members, roleId: null };
    groups.set(group.id, group);
    return group;
  };

  /** One page of `items` from the token's offset, and the token of the next page (or null). */
  const page = <T>(items: T[], list: 'groups' | 'members', params: URLSearchParams, groupId?: number): { resources: T[]; nextPaginationToken: string | null } | UserGroupsAnswer => {
    const token = params.get('paginationToken');
    let offset = 0;
    if (token !== null && token !== '') {
      const saved = pages.get(token);
      if (!saved || saved.list !== list || saved.groupId !== groupId) return invalid('paginationToken is not valid for this list.');
      offset = saved.offset;
    }
    const resources = items.slice(offset, offset + pageSize);
    let nextPaginationToken: string | null = null;
    if (offset + pageSize < items.length) {
      nextPaginationToken = randomBytes(12).toString('base64url');
      pages.set(nextPaginationToken, { list, groupId, offset: offset + pageSize });
    }
    return { resources, nextPaginationToken };
  };

  /** A members body: a JSON array of 1–100 account ids (numbers). */
  const memberIds = (body: unknown): number[] | UserGroupsAnswer => {
    if (!Array.isArray(body)) return invalid('The body must be a JSON array of account ids.');
    if (body.length === 0) return invalid('The body must name at least one account id.');
    if (body.length > MAX_IDS_PER_CALL) return invalid(`At most ${MAX_IDS_PER_CALL} account ids per call (got ${body.length}).`);
    if (!body.every((id) => typeof id === 'number' && Number.isSafeInteger(id) && id > 0)) {
      return invalid('Every account id must be a positive whole number.');
    }
    return body as number[];
  };

  const groupRoute = (method: string, group: StoredGroup, relation: string | undefined, params: URLSearchParams, body: unknown): UserGroupsAnswer => {
    if (relation === undefined) {
      if (method === 'GET') return { status: 200, body: { id: group.id, name: group.name } };
      if (method === 'PUT') {
        const name = checkName(body);
        if (typeof name !== 'string') return name;
        if (nameTaken(name, group.id)) return webApiError(409, 'conflict', 'A user group with this name already exists.', 409);
        group.name = name;
        return { status: 200, body: { id: group.id, name: group.name } };
      }
      if (method === 'DELETE') {
        groups.delete(group.id);
        return { status: 204 };
      }
    }
    if (relation === 'members') {
      if (method === 'GET') {
        const members = liveMembers(group).map((accountId) => ({ accountId, name: accounts.nameOf(accountId) }));
        const answer = page(members, 'members', params, group.id);
        return 'status' in answer ? answer : { status: 200, body: answer };
      }
      if (method === 'POST' || method === 'DELETE') {
        const ids = memberIds(body);
        if (!Array.isArray(ids)) return ids;
        if (method === 'DELETE') {
          const gone = new Set(ids);
          group.members = group.members.filter((id) => !gone.has(id));
          return { status: 204 };
        }
        const unknown = ids.filter((id) => accounts.nameOf(id) === undefined);
        if (unknown.length > 0) return invalid(`No user in this company has the account id ${unknown.join(', ')}.`);
        for (const id of ids) if (!group.members.includes(id)) group.members.push(id);
        return { status: 200, body: [...new Set(ids)].map((accountId) => ({ accountId, name: accounts.nameOf(accountId) })) };
      }
    }
    if (relation === 'userroles' && method === 'GET') return { status: 200, body: { assignedRoleId: group.roleId } };
    return webApiError(405, 'invalid_request', `${method} is not supported here.`, 2);
  };

  /** A group id in a body: a number, or (leniently) its digits as a string. */
  const groupFrom = (value: unknown): StoredGroup | UserGroupsAnswer => {
    const id = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
    if (id === undefined) return invalid('UserGroupId must be a user group id.');
    return groups.get(id) ?? notFound(`User group ${id} not found.`);
  };

  const rolesRoute = (method: string, route: string, body: unknown): UserGroupsAnswer => {
    if (route === '/userroles' && method === 'GET') {
      return { status: 200, body: { Roles: [...roles].map(([Id, Name]) => ({ Id, Name, Permissions: {} })) } };
    }
    if (route === '/userroles/assign/usergroup' && method === 'POST') {
      if (!isObject(body)) return invalid('The body must be { UserRoleId, UserGroupId }.');
      const group = groupFrom(body.UserGroupId);
      if ('status' in group) return group;
      const roleId = typeof body.UserRoleId === 'string' ? [...roles.keys()].find((id) => id.toLowerCase() === String(body.UserRoleId).toLowerCase()) : undefined;
      if (roleId === undefined) return notFound('User role not found.');
      group.roleId = roleId;
      return { status: 204 };
    }
    if (route === '/userroles/unassign/usergroup' && method === 'POST') {
      if (!isObject(body)) return invalid('The body must be { UserGroupId }.');
      const group = groupFrom(body.UserGroupId);
      if ('status' in group) return group;
      group.roleId = null;
      return { status: 204 };
    }
    return notFound(`No resource at ${route}.`);
  };

  const handle = (method: string, route: string, params: URLSearchParams, body: unknown): UserGroupsAnswer | undefined => {
    const groupsRoute = route === '/usergroups' || route.startsWith('/usergroups/');
    if (!groupsRoute && route !== '/userroles' && !route.startsWith('/userroles/')) return undefined;
    if (access === 'no-licence') {
      return webApiError(403, 'insufficient_license', 'User groups and roles need a TeamViewer Tensor license for this company.', 403);
    }
    if (access === 'no-rights') {
      return webApiError(403, 'insufficient_rights', 'The access token does not have the permission User groups.', 403);
    }
    if (!groupsRoute) return rolesRoute(method, route, body);
    if (route === '/usergroups') {
      if (method === 'GET') {
        const answer = page([...groups.values()].map((g) => ({ id: g.id, name: g.name })), 'groups', params);
        return 'status' in answer ? answer : { status: 200, body: answer };
      }
      if (method === 'POST') {
        const name = checkName(body);
        if (typeof name !== 'string') return name;
        if (nameTaken(name)) return webApiError(409, 'conflict', 'A user group with this name already exists.', 409);
        const group = addGroup(name);
        return { status: 200, body: { id: group.id, name: group.name } };
      }
      return webApiError(405, 'invalid_request', `${method} is not supported on /usergroups.`, 2);
    }
    const match = /^\/usergroups\/(\d+)(?:\/(members|userroles))?$/.exec(route);
    const group = match ? groups.get(Number(match[1])) : undefined;
    if (!match || !group) return notFound(`User group ${route.split('/')[2]} not found.`);
    return groupRoute(method, group, match[2], params, body);
  };

  const stored = (groupId: string): StoredGroup => {
    const group = groups.get(Number(groupId));
    if (!group) throw new Error(`emulator: no user group ${groupId}`);
    return group;
  };

  return {
    handle,
    groups: () => [...groups.values()].map((g) => ({ id: String(g.id), name: g.name })),
    members: (groupId) => liveMembers(stored(groupId)).map((id) => `u${id}`),
    roleOf: (groupId) => stored(groupId).roleId,
    roles: () => [...roles].map(([id, name]) => ({ id, name })),
    addRole: (name) => {
      const id = randomUUID();
      roles.set(id, name);
      return { id, name };
    },
    seedGroup: (name, members = []) => {
      if (nameTaken(name)) throw new Error(`emulator: a user group named ${name} exists`);
      const ids = [...new Set(members.map(accountIdOf))];
      const missing = ids.filter((id) => accounts.nameOf(id) === undefined);
      if (missing.length > 0) throw new Error(`emulator: no user with account id ${missing.join(', ')}`);
      const group = addGroup(name, ids);
      return { id: String(group.id), name: group.name };
    },
    addMemberByHand: (groupId, member) => {
      const group = stored(groupId);
      const id = accountIdOf(member);
      if (accounts.nameOf(id) === undefined) throw new Error(`emulator: no user with account id ${id}`);
      if (!group.members.includes(id)) group.members.push(id);
    },
    setAccess: (next) => {
      access = next;
    },
  };
}
