/**
 * TeamViewer user groups and roles over the Web API v1 (/usergroups, /userroles), beside the SCIM
 * client and through it: every call goes through TeamViewerClient.webApi, so it shares the token,
 * the request pool, the retries and the throttling pause with SCIM (TeamViewer limits per token).
 * Facts and ASSUMED points: /work/shared/spec/teamviewer-usergroups.md.
 *
 * What a caller can rely on:
 * - Lists (groups, members, roles) are complete or throw: pages are followed until the token is
 *   null or absent; a token seen before, or an empty page that still carries a token, is
 *   TEAMVIEWER_PROTOCOL — never a short list (a short member list would look like members left).
 * - Members are named by TeamViewer user id (`u1234567`) on both sides of this module; the account
 *   ids on the wire (`1234567`) never leave it. Add and remove split any list into calls of at most
 *   100 ids and report each call that succeeded (onBatch) before the next is sent, so a caller can
 *   record exactly what was written even when a later call fails.
 * - createGroup is never sent twice: a create whose answer was lost throws TEAMVIEWER_TRANSIENT
 *   (or TEAMVIEWER_TIMEOUT, when no answer came in time) with mayHaveApplied (list the groups before creating again), and a name already in use throws
 *   TEAMVIEWER_GROUP_NAME_TAKEN (list the groups and adopt). Rename, delete, member and role calls
 *   can be repeated without harm and are retried like reads.
 * - A 403 that is not throttling is TEAMVIEWER_GROUPS_FORBIDDEN, naming the missing right
 *   (*User groups: create, delete, edit, read* on the script token) or the missing Tensor licence.
 * - Every call takes `{ signal }` (a cycle's deadline): it stops the call as the SCIM client does.
 * - Group ids are decimal strings; an id beyond 2^53 (which JSON numbers cannot carry exactly) is
 *   TEAMVIEWER_PROTOCOL, never a rounded id that would name another group.
 */
import type { TeamViewerGroup, TeamViewerRole } from '../domain/group-model';
import type { CallOptions, WebApiRequest } from './client';
import { isTeamViewerError, TeamViewerError } from './errors';

/** What this module needs of the TeamViewer client (TeamViewerClient implements it). */
export interface WebApiTransport {
  webApi<T>(request: WebApiRequest<T>, options?: CallOptions): Promise<T>;
}

/** TeamViewer takes at most this many account ids per members call. */
export const MEMBERS_PER_CALL = 100;

type Fail = (problem: string) => never;
type Json = Record<string, unknown>;

const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A JSON id (number or digits) as a decimal string. */
function readId(value: unknown, what: string, fail: Fail): string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1) fail(`${what} ${value} is not a positive whole number`);
    if (!Number.isSafeInteger(value)) fail(`${what} ${value} is larger than 2^53, so it cannot be read exactly`);
    return String(value);
  }
  if (typeof value === 'string' && /^\d+$/.test(value)) {
    // Ids go back to TeamViewer as JSON numbers (role calls): they must survive the round trip.
    if (!Number.isSafeInteger(Number(value)) || Number(value) < 1) fail(`${what} ${value.slice(0, 30)} is not a whole number from 1 to 2^53`);
    return String(Number(value));
  }
  return fail(`${what} is missing or not a number`);
}

/** A field under either spelling TeamViewer uses (`Roles[].Id`, `resources[].id`). */
const field = (raw: Json, name: string): unknown => raw[name] ?? raw[name.charAt(0).toUpperCase() + name.slice(1)];

function readGroup(raw: unknown, fail: Fail): TeamViewerGroup {
  if (!isJson(raw)) fail('a user group in the answer is not an object');
  const id = readId(raw.id, 'a user group id', fail);
  if (typeof raw.name !== 'string') fail(`user group ${id} in the answer has no name`);
  return { id, name: raw.name };
}

function readRole(raw: unknown, fail: Fail): TeamViewerRole {
  if (!isJson(raw)) fail('a role in the answer is not an object');
  const id = field(raw, 'id');
  const name = field(raw, 'name');
  if (typeof id !== 'string' || id === '') fail('a role in the answer has no Id');
  if (typeof name !== 'string') fail(`role ${id} in the answer has no Name`);
  return { id, name };
}

/** `u1234567` (or bare digits) → the account id TeamViewer's member calls take. */
function accountIdOf(member: string, request: { method: string; path: string }): number {
  const match = typeof member === 'string' ? /^u?(\d{1,15})$/.exec(member) : null;
  if (!match) {
    throw new TeamViewerError({
      code: 'TEAMVIEWER_BAD_REQUEST',
      message: `${JSON.stringify(String(member)).slice(0, 80)} is not a TeamViewer user id (u followed by digits); nothing was sent.`,
      ...request,
    });
  }
  return Number(match[1]);
}

function checkedGroupId(id: string, request: { method: string; path: string }): string {
  if (typeof id !== 'string' || !/^[1-9]\d{0,15}$/.test(id) || !Number.isSafeInteger(Number(id))) {
    throw new TeamViewerError({
      code: 'TEAMVIEWER_BAD_REQUEST',
      message: `${JSON.stringify(String(id)).slice(0, 80)} is not a TeamViewer user group id (digits); nothing was sent.`,
      ...request,
    });
  }
  return id;
}

/** What TeamViewer said, as errors.ts words it: "403 insufficient_rights: …". */
function said(error: TeamViewerError): string {
  return `${error.status ?? 'no answer'}${error.scimType ? ` ${error.scimType}` : ''}${error.detail && error.detail !== error.scimType ? `: ${error.detail}` : ''}`;
}

const FORBIDDEN_ADVICE = 'the script token lacks the right "User groups: create, delete, edit, read", or the company has no '
  + 'TeamViewer Tensor licence (user groups need one). Edit the token in the TeamViewer Management Console '
  + '(Edit profile → Apps → the script token) and tick User groups, or set GROUP_PROVISIONING=off; '
  + 'user provisioning is not affected.';

interface Subject {
  action: string;
  /** The group the call is about, for a 404. */
  groupId?: string;
  /** The name sent, for a 409. */
  name?: string;
}

/** The same failure in words about groups: the SCIM-minded messages of errors.ts would mislead here. */
function groupError(error: unknown, subject: Subject): unknown {
  if (!isTeamViewerError(error)) return error;
  const keep = {
    method: error.method, path: error.path, status: error.status, retryAfterSeconds: error.retryAfterSeconds,
    scimType: error.scimType, detail: error.detail, mayHaveApplied: error.mayHaveApplied, cause: error,
  };
  const make = (code: TeamViewerError['code'], message: string) => new TeamViewerError({ ...keep, code, message });
  switch (error.code) {
    case 'TEAMVIEWER_FORBIDDEN':
      return make('TEAMVIEWER_GROUPS_FORBIDDEN', `TeamViewer refused to ${subject.action} (${said(error)}): ${FORBIDDEN_ADVICE}`);
    case 'TEAMVIEWER_CONFLICT':
      return make('TEAMVIEWER_GROUP_NAME_TAKEN', `TeamViewer refused to ${subject.action} (${said(error)}): a user group named `
        + `${JSON.stringify(subject.name ?? '')} already exists (names are compared without letter case). Link the existing group instead of creating another.`);
    case 'TEAMVIEWER_BAD_REQUEST':
      return make('TEAMVIEWER_BAD_REQUEST', `TeamViewer rejected the request to ${subject.action} as invalid (${said(error)}): `
        + 'a group name has 1–100 characters, and a members call names 1–100 accounts of this company.');
    case 'TEAMVIEWER_NOT_FOUND':
      if (subject.groupId === undefined) return error;
      return make('TEAMVIEWER_NOT_FOUND', `TeamViewer has no user group ${subject.groupId} (${said(error)}) while trying to `
        + `${subject.action}: it may have been deleted in the TeamViewer Management Console.`);
    case 'TEAMVIEWER_TRANSIENT':
    case 'TEAMVIEWER_TIMEOUT':
      if (!error.mayHaveApplied) return error;
      return make(error.code, `TeamViewer gave no complete answer (${error.detail ?? (error.code === 'TEAMVIEWER_TIMEOUT' ? 'no answer in time' : 'connection lost')}) while trying to `
        + `${subject.action}. The change may or may not have been made; list the user groups before trying again.`);
    default:
      return error;
  }
}

export class TeamViewerUserGroups {
  constructor(private readonly transport: WebApiTransport) {}

  /** Every user group of the company. Throws rather than return a partial list. */
  listGroups(options: CallOptions = {}): Promise<TeamViewerGroup[]> {
    return this.pages('/usergroups', { action: 'list the user groups' }, readGroup, (g) => g.id, options);
  }

  /** The group, or null when TeamViewer has no group with this id. */
  async getGroup(id: string, options: CallOptions = {}): Promise<TeamViewerGroup | null> {
    const path = `/usergroups/${checkedGroupId(id, { method: 'GET', path: '/usergroups/{id}' })}`;
    try {
      return await this.send({ method: 'GET', path, action: `read user group ${id}`, parse: readGroup }, { action: `read user group ${id}`, groupId: id }, options);
    } catch (error) {
      if (isTeamViewerError(error) && error.code === 'TEAMVIEWER_NOT_FOUND') return null;
      throw error;
    }
  }

  /**
   * Creates a group. TEAMVIEWER_GROUP_NAME_TAKEN: the name is in use (list and adopt);
   * TEAMVIEWER_TRANSIENT or TEAMVIEWER_TIMEOUT with mayHaveApplied: the answer was lost (list before creating again).
   */
  createGroup(name: string, options: CallOptions = {}): Promise<TeamViewerGroup> {
    const action = `create user group ${JSON.stringify(name)}`;
    return this.send({ method: 'POST', path: '/usergroups', body: { name }, action, parse: readGroup }, { action, name }, options);
  }

  /** TEAMVIEWER_GROUP_NAME_TAKEN when another group has the name; TEAMVIEWER_NOT_FOUND when the group is gone. */
  async renameGroup(id: string, name: string, options: CallOptions = {}): Promise<void> {
    const path = `/usergroups/${checkedGroupId(id, { method: 'PUT', path: '/usergroups/{id}' })}`;
    const action = `rename user group ${id} to ${JSON.stringify(name)}`;
    await this.send({ method: 'PUT', path, body: { name }, action, readAnswer: false, parse: () => undefined }, { action, groupId: id, name }, options);
  }

  /** True when TeamViewer deleted it now; false when it had no such group (already gone). */
  async deleteGroup(id: string, options: CallOptions = {}): Promise<boolean> {
    const path = `/usergroups/${checkedGroupId(id, { method: 'DELETE', path: '/usergroups/{id}' })}`;
    const action = `delete user group ${id}`;
    try {
      await this.send({ method: 'DELETE', path, action, readAnswer: false, parse: () => undefined }, { action, groupId: id }, options);
      return true;
    } catch (error) {
      if (isTeamViewerError(error) && error.code === 'TEAMVIEWER_NOT_FOUND') return false;
      throw error;
    }
  }

  /** Every member, as TeamViewer user ids (`u…`). Throws rather than return a partial list. */
  async listMembers(groupId: string, options: CallOptions = {}): Promise<string[]> {
    const path = `/usergroups/${checkedGroupId(groupId, { method: 'GET', path: '/usergroups/{id}/members' })}/members`;
    const readMember = (raw: unknown, fail: Fail): string => {
      if (!isJson(raw)) fail('a member in the answer is not an object');
      return `u${readId(raw.accountId, 'a member\'s accountId', fail)}`;
    };
    return this.pages(path, { action: `list the members of user group ${groupId}`, groupId }, readMember, (m) => m, options);
  }

  /**
   * Adds members in calls of at most 100; after each call that succeeded, `onBatch` gets the
   * members it added (and is awaited) before the next call is sent. Returns the calls made.
   */
  addMembers(groupId: string, members: readonly string[], onBatch?: (added: string[]) => Promise<void> | void, options: CallOptions = {}): Promise<number> {
    return this.changeMembers('POST', groupId, members, onBatch, options);
  }

  /** Removes members in calls of at most 100 (a DELETE with a body); `onBatch` as for addMembers. */
  removeMembers(groupId: string, members: readonly string[], onBatch?: (removed: string[]) => Promise<void> | void, options: CallOptions = {}): Promise<number> {
    return this.changeMembers('DELETE', groupId, members, onBatch, options);
  }

  /** Every role of the company (`Roles[].Id/Name`). */
  listRoles(options: CallOptions = {}): Promise<TeamViewerRole[]> {
    const action = 'list the roles';
    return this.send({
      method: 'GET',
      path: '/userroles',
      action,
      parse: (json, fail: Fail) => {
        if (!isJson(json)) fail('the roles answer is not an object');
        const roles = field(json, 'roles');
        if (!Array.isArray(roles)) fail('the roles answer has no Roles array');
        return roles.map((r) => readRole(r, fail));
      },
    }, { action }, options);
  }

  /** The id of the role the group holds, or null when it holds none. */
  getGroupRole(groupId: string, options: CallOptions = {}): Promise<string | null> {
    const path = `/usergroups/${checkedGroupId(groupId, { method: 'GET', path: '/usergroups/{id}/userroles' })}/userroles`;
    const action = `read the role of user group ${groupId}`;
    return this.send({
      method: 'GET',
      path,
      action,
      // ASSUMED shape { assignedRoleId }; the spellings TeamViewer uses elsewhere are read too.
      parse: (json, fail: Fail) => {
        if (!isJson(json)) fail('the answer is not an object');
        const key = ['assignedRoleId', 'AssignedRoleId', 'userRoleId', 'UserRoleId', 'roleId'].find((k) => k in json);
        if (key === undefined) fail('the answer names no assignedRoleId');
        const value = json[key];
        if (value === null || value === '') return null;
        if (typeof value !== 'string') fail(`${key} is not a role id`);
        return value;
      },
    }, { action, groupId }, options);
  }

  /** Gives the group this role (replacing the one it held). */
  async assignRole(groupId: string, roleId: string, options: CallOptions = {}): Promise<void> {
    const id = checkedGroupId(groupId, { method: 'POST', path: '/userroles/assign/usergroup' });
    if (typeof roleId !== 'string' || !GUID.test(roleId)) {
      throw new TeamViewerError({ code: 'TEAMVIEWER_BAD_REQUEST', message: `${JSON.stringify(String(roleId)).slice(0, 80)} is not a TeamViewer role id (a GUID); nothing was sent.`, method: 'POST', path: '/userroles/assign/usergroup' });
    }
    const action = `assign role ${roleId} to user group ${id}`;
    await this.send({
      method: 'POST', path: '/userroles/assign/usergroup', body: { UserRoleId: roleId, UserGroupId: Number(id) },
      action, idempotent: true, readAnswer: false, parse: () => undefined,
    }, { action, groupId: id }, options);
  }

  /** Takes the group's role away (ASSUMED endpoint, as TeamViewer's PowerShell module calls it). */
  async unassignRole(groupId: string, options: CallOptions = {}): Promise<void> {
    const id = checkedGroupId(groupId, { method: 'POST', path: '/userroles/unassign/usergroup' });
    const action = `unassign the role of user group ${id}`;
    await this.send({
      method: 'POST', path: '/userroles/unassign/usergroup', body: { UserGroupId: Number(id) },
      action, idempotent: true, readAnswer: false, parse: () => undefined,
    }, { action, groupId: id }, options);
  }

  private async changeMembers(method: 'POST' | 'DELETE', groupId: string, members: readonly string[], onBatch: ((batch: string[]) => Promise<void> | void) | undefined, options: CallOptions): Promise<number> {
    const path = `/usergroups/${checkedGroupId(groupId, { method, path: '/usergroups/{id}/members' })}/members`;
    // Checked (and de-duplicated) before anything is sent: a bad id fails the whole call up front.
    const byAccount = new Map<number, string>();
    for (const member of members) byAccount.set(accountIdOf(member, { method, path }), member);
    const accounts = [...byAccount.keys()];
    let calls = 0;
    for (let start = 0; start < accounts.length; start += MEMBERS_PER_CALL) {
      const chunk = accounts.slice(start, start + MEMBERS_PER_CALL);
      const action = `${method === 'POST' ? 'add' : 'remove'} ${chunk.length} member${chunk.length === 1 ? '' : 's'} ${method === 'POST' ? 'to' : 'from'} user group ${groupId}`;
      await this.send({ method, path, body: chunk, action, idempotent: true, readAnswer: false, parse: () => undefined }, { action, groupId }, options);
      calls++;
      await onBatch?.(chunk.map((id) => byAccount.get(id) as string));
    }
    return calls;
  }

  /**
   * Follows nextPaginationToken until it is null, absent or empty. Items met twice (a group created
   * while paging shifts later pages) are kept once.
   */
  private async pages<T>(path: string, subject: Subject, read: (raw: unknown, fail: Fail) => T, keyOf: (item: T) => string, options: CallOptions): Promise<T[]> {
    const seen = new Set<string>();
    const items = new Map<string, T>();
    for (let token: string | null = null, page = 1; ; page++) {
      const current: string | null = token;
      const next: { resources: T[]; nextToken: string | null } = await this.send({
        method: 'GET',
        path,
        query: current === null ? undefined : `paginationToken=${encodeURIComponent(current)}`,
        action: page === 1 ? subject.action : `${subject.action} (page ${page})`,
        parse: (json, fail: Fail) => {
          if (!isJson(json)) fail('the list answer is not an object');
          if (!Array.isArray(json.resources)) fail('the list answer has no resources array');
          const following = json.nextPaginationToken;
          if (following !== undefined && following !== null && typeof following !== 'string') fail('nextPaginationToken is not a string');
          const nextToken = typeof following === 'string' && following !== '' ? following : null;
          if (nextToken !== null && seen.has(nextToken)) {
            fail(`page ${page} hands out a pagination token seen before, so the list would never end`);
          }
          if (nextToken !== null && json.resources.length === 0) {
            fail(`page ${page} is empty but says more follow`);
          }
          return { resources: json.resources.map((r) => read(r, fail)), nextToken };
        },
      }, subject, options);
      for (const item of next.resources) if (!items.has(keyOf(item))) items.set(keyOf(item), item);
      if (next.nextToken === null) return [...items.values()];
      seen.add(next.nextToken);
      token = next.nextToken;
    }
  }

  private async send<T>(request: WebApiRequest<T>, subject: Subject, options: CallOptions = {}): Promise<T> {
    try {
      return await this.transport.webApi(request, options);
    } catch (error) {
      throw groupError(error, subject);
    }
  }
}
