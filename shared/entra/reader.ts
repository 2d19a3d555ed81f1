/**
 * Reads who is in scope for the enterprise application, as Entra's provisioning does, plus what
 * Entra cannot do:
 * - scope `assigned` (default): users assigned directly (any app role, including default access)
 *   plus the direct members of assigned groups — nested groups are not expanded and service
 *   principals are ignored, like Entra; `expandNestedGroups` reads transitive members instead.
 * - scope `all`: every user in the tenant, with the assignment facts where there are some (so a
 *   mapping can still ask for the user's app role).
 * - extra attributes by canonical name (shared/sync/attributes.ts), brought back with $select.
 * - which object ids are soft-deleted (in the directory's deleted items).
 * - delta rounds (Graph delta query) of user changes and of assigned groups' membership changes
 *   and names, for incremental cycles.
 * - the assigned groups' display names (`groupNames`), read by id rather than taken from the
 *   assignments' principalDisplayName, which Graph's docs do not promise to follow a rename.
 *
 * Invariant: every read returns the complete answer or throws an EntraReadError — never a partial
 * one. A list missing users would make the cycle disable them in TeamViewer.
 *
 * Cost (assigned scope): one request per page of assignments, then $batch calls of 20 reads: group
 * member lists (users only, attributes through $select) and directly assigned users not already
 * seen in a group, 15 ids per `id in (...)` filter — up to 300 users per HTTP request; with
 * `groupNames`, the assigned groups' names ride in the same $batch calls, 15 groups per read. Scope all:
 * pages of assignments, pages of /users ($top 999), and member lists with only ids. Delta rounds:
 * a round without changes is one request for users and one $batch for up to 1,000 groups.
 *
 * Delta watermarks (deltaLinks) go only to the configured Graph origin, like nextLinks; one that
 * Graph no longer accepts, or that leads elsewhere, is GRAPH_DELTA_EXPIRED: start a new round.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@microsoft/microsoft-graph-client';
import { silentLogger, type Logger } from '../log';
import type { AssignedUser, EntraUser } from '../domain/model';
import type { AssignedGroup } from '../domain/group-model';
import { graphSelectFor, readAttribute, sourceAttribute, UnknownAttributeError } from '../sync/attributes';
import { EntraReadError, isEntraReadError } from './errors';
import { GraphRequester, type CollectionRequest, type DeltaRound, type GraphCallContext } from './graph-client';

export interface EntraReaderOptions {
  client: Client;
  /** Object id of the enterprise application's service principal. */
  servicePrincipalId: string;
  logger?: Logger;
  /** $top for every list (default 999, Graph's maximum). */
  pageSize?: number;
}

export interface ServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
}

/** A user as Graph describes it: the base fields and the extra attributes that were asked for. */
export type EntraUserRecord = EntraUser & {
  /**
   * Raw Graph values of the requested attributes, by canonical name (extensionAttributeN taken
   * out of onPremisesExtensionAttributes); null when Graph has no value.
   */
  attributes: Record<string, unknown>;
};

/**
 * A user read by readAssignedUsers: who they are and how they come to be in scope. With scope
 * `all`, a user no assignment brings in has direct=false and viaGroups=[]. (`assigned` is left
 * unset: the cycle's mapUser reads `assigned === false` as out of scope.)
 */
export type AssignedUserRecord = AssignedUser & EntraUserRecord;

export interface UserRemoval {
  id: string;
  /** `changed`: soft-deleted (restorable for 30 days); `deleted`: hard-deleted. */
  reason: 'changed' | 'deleted';
}

export interface UserChanges {
  /** True for a round started without a deltaLink: `changed` then holds every user. */
  initial: boolean;
  /** Users created, changed or restored since the last round (every user on the initial round), by id. */
  changed: EntraUserRecord[];
  /** Users soft- or hard-deleted since the last round, by id. */
  removed: UserRemoval[];
  /** Where the next round starts; store it as is. */
  deltaLink: string;
  /** HTTP calls this round made. */
  requests: number;
}

export interface GroupMemberChanges {
  /** True for a round started without a watermark: `added` then holds every user member. */
  initial: boolean;
  /** Users who joined a group (group ids lower-case), sorted. */
  added: Array<{ groupId: string; userId: string }>;
  /** Users who left a group — removed, or deleted themselves — sorted. */
  removed: Array<{ groupId: string; userId: string }>;
  /** Groups deleted since the last round (their members are gone with them). */
  removedGroups: string[];
  /** Groups that gained or lost a nested group: with nested groups expanded, re-read them. */
  groupsWithNestedChanges: string[];
  /**
   * Groups whose displayName this round reported, with that name, sorted by id: every group on the
   * initial round; afterwards every renamed group (and possibly others, as Graph may send an
   * unchanged name beside another change). Compare with the name last written to notice a rename.
   * A watermark started before names were selected reports none until its next initial round.
   */
  displayNames: AssignedGroup[];
  /**
   * Where the next round starts: opaque (one Graph deltaLink per 50 groups, space-separated;
   * empty for no groups). Store it as is, with the groups it was started for.
   */
  deltaLink: string;
  requests: number;
}

/** Per read: what a caller may add to any read. */
export interface ReadOptions {
  /** Stops the read when it aborts (e.g. a cycle's deadline): it rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ReadAssignedUsersOptions extends ReadOptions {
  /** `assigned` (default): assigned users and direct members of assigned groups; `all`: every user. */
  scope?: 'assigned' | 'all';
  /** Members of nested groups count too (Entra cannot do this). Default false. */
  expandNestedGroups?: boolean;
  /**
   * Attributes mappings and scoping filters read, by catalogue name (any alias or case). The
   * computed `appRoleAssignments` fills `appRoleValues` (one more request); other computed
   * attributes are ignored. An unknown name throws UnknownAttributeError before any request.
   */
  attributes?: string[];
  /**
   * Also read each assigned group's displayName (for group provisioning): 15 groups per
   * `id in (...)` read, sent in the same $batch calls as the member lists. Default false.
   */
  groupNames?: boolean;
}

export interface AssignedUsersRead {
  /** Sorted by id. */
  users: AssignedUserRecord[];
  /** Object ids (lower-case, sorted) of the groups assigned to the application. */
  assignedGroupIds: string[];
  /** With `groupNames`: the assigned groups with their current display names, sorted by id. */
  assignedGroups?: AssignedGroup[];
  /**
   * Object ids (lower-case, sorted) of the users assigned directly, as the assignments name them
   * (including any whose user no longer exists).
   */
  directUserIds: string[];
  stats: {
    /** HTTP calls to Graph (pages and batches). */
    requests: number;
    /** App role assignments read (users, groups and service principals). */
    assignments: number;
    /** Distinct assigned groups whose members were read. */
    groups: number;
    ignoredServicePrincipals: number;
  };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const USER_FIELDS = 'id,userPrincipalName,displayName,givenName,surname,mail,accountEnabled';
/** Graph allows 15 values in an `in (...)` filter. */
const IDS_PER_FILTER = 15;
/** The app role every assignment without a specific role carries. */
const DEFAULT_ACCESS_ROLE = '00000000-0000-0000-0000-000000000000';

/** The attributes to read: canonical names, Graph-backed ones apart from the computed ones. */
interface AttributePlan {
  /** Canonical names of the Graph-backed attributes, in first-use order. */
  names: string[];
  /** The $select for users: the base fields plus what `names` needs. */
  select: string;
  /** Whether app role values (for SingleAppRoleAssignment) are wanted. */
  appRoleValues: boolean;
}

/** Resolves attribute names; throws UnknownAttributeError for a name not in the catalogue. */
export function planAttributes(requested: readonly string[] = []): AttributePlan {
  const names: string[] = [];
  let appRoleValues = false;
  for (const name of requested) {
    const attribute = sourceAttribute(name);
    if (!attribute) throw new UnknownAttributeError(name);
    if (attribute.computed) {
      if (attribute.name === 'appRoleAssignments') appRoleValues = true;
      continue;
    }
    if (!names.includes(attribute.name)) names.push(attribute.name);
  }
  const select = [...USER_FIELDS.split(',')];
  for (const property of graphSelectFor(names)) if (!select.includes(property)) select.push(property);
  return { names, select: select.join(','), appRoleValues };
}

/** An OData string literal: quotes around, single quotes inside doubled. */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

interface RawAssignment {
  principalId?: unknown;
  principalType?: unknown;
  appRoleId?: unknown;
}

type RawUser = Record<string, unknown>;
type RawGroup = Record<string, unknown>;

/** Graph's delta query filters at most 50 objects by id. */
const GROUPS_PER_DELTA = 50;

interface Scoped {
  user: EntraUserRecord;
  direct: boolean;
  viaGroups: Set<string>;
  appRoleIds: Set<string>;
}

export class EntraReader {
  private readonly client: Client;
  private readonly servicePrincipalId: string;
  private readonly logger: Logger;
  private readonly pageSize: number;

  constructor(options: EntraReaderOptions) {
    this.client = options.client;
    this.logger = options.logger ?? silentLogger;
    this.servicePrincipalId = options.servicePrincipalId.trim();
    this.pageSize = options.pageSize ?? 999;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || this.pageSize > 999) {
      throw new RangeError(`pageSize must be a whole number from 1 to 999 (got ${options.pageSize})`);
    }
  }

  async getServicePrincipal(): Promise<ServicePrincipal> {
    const requester = new GraphRequester(this.client, this.logger);
    const context = this.servicePrincipalContext('the service principal');
    const body = await requester.get<Record<string, unknown>>(`/servicePrincipals/${this.checkedServicePrincipalId()}?$select=id,appId,displayName`, context);
    const { id, appId, displayName } = body ?? {};
    if (typeof id !== 'string' || typeof appId !== 'string') {
      throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph answered for service principal ${this.servicePrincipalId} without its id and appId.`, { concerns: context.concerns });
    }
    return { id, appId, displayName: typeof displayName === 'string' ? displayName : '' };
  }

  async readAssignedUsers(options: ReadAssignedUsersOptions = {}): Promise<AssignedUsersRead> {
    const scope = options.scope ?? 'assigned';
    const expand = options.expandNestedGroups ?? false;
    const plan = planAttributes(options.attributes);
    const requester = new GraphRequester(this.client, this.logger, { signal: options.signal });
    const spId = this.checkedServicePrincipalId();

    const { directRoles, groupRoles, assignments, ignoredServicePrincipals } = await this.readAssignmentRoles(requester, spId);
    const roleValues = plan.appRoleValues ? await this.readAppRoleValues(requester, spId) : undefined;

    const scoped = new Map<string, Scoped>();
    const include = (raw: RawUser, concerns: string): Scoped => {
      const user = toEntraUserRecord(raw, concerns, plan.names);
      const key = user.id.toLowerCase();
      let entry = scoped.get(key);
      if (!entry) {
        entry = { user, direct: false, viaGroups: new Set(), appRoleIds: new Set() };
        scoped.set(key, entry);
      }
      return entry;
    };

    if (scope === 'all') {
      const context: GraphCallContext = { concerns: 'the users of the tenant', permission: 'User.Read.All' };
      for await (const page of requester.pages<RawUser>(`/users?$select=${plan.select}&$top=${this.pageSize}`, context)) {
        for (const raw of page) include(raw, context.concerns);
      }
    }

    // With scope all the users are already read: member lists need only their ids.
    const relation = expand ? 'transitiveMembers' : 'members';
    const memberSelect = scope === 'all' ? 'id' : plan.select;
    const memberRequests: CollectionRequest[] = [...groupRoles.keys()].map((groupId) => ({
      key: groupId,
      path: `/groups/${groupId}/${relation}/microsoft.graph.user?$select=${memberSelect}&$top=${this.pageSize}`,
      context: { concerns: `the ${expand ? 'transitive ' : ''}members of assigned group ${groupId}`, permission: 'GroupMember.Read.All' },
    }));
    const nameRequests = options.groupNames ? this.groupsByIdRequests([...groupRoles.keys()]) : [];
    // Members become records page by page (a tenant's worth of raw Graph objects is never held).
    const memberGroups = new Set(memberRequests.map((request) => request.key));
    const takeMembers = (groupId: string, page: RawUser[]): boolean => {
      if (!memberGroups.has(groupId)) return false;
      const concerns = `the members of assigned group ${groupId}`;
      for (const raw of page) {
        let entry: Scoped | undefined;
        if (scope === 'all') {
          const id = raw?.id;
          if (typeof id !== 'string' || id === '') {
            throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned a member without an id while reading ${concerns}.`, { concerns });
          }
          entry = scoped.get(id.toLowerCase());
          if (!entry) {
            // Created after /users was read; the next cycle sees it.
            this.logger.debug('a group member was not in the list of users; left out until the next read', { userId: id, groupId });
            continue;
          }
        } else {
          entry = include(raw, concerns);
        }
        entry.viaGroups.add(groupId);
        for (const role of groupRoles.get(groupId) ?? []) entry.appRoleIds.add(role);
      }
      return true;
    };
    const read = await requester.collections<RawUser>([...memberRequests, ...nameRequests], takeMembers);
    const assignedGroups = options.groupNames ? groupNamesFrom(read, nameRequests, [...groupRoles.keys()]) : undefined;

    // Users already read need no second read.
    const unread = [...directRoles.keys()].filter((id) => !scoped.has(id));
    if (scope !== 'all') {
      await requester.collections<RawUser>(this.usersByIdRequests(unread, plan.select, 'directly assigned users'), (_key, page) => {
        for (const raw of page) include(raw, 'directly assigned users');
        return true;
      });
    }
    for (const [id, roles] of directRoles) {
      const entry = scoped.get(id);
      if (!entry) {
        // Deleted after it was assigned; Entra drops its assignment shortly after.
        this.logger.debug('a directly assigned user no longer exists; left out', { userId: id });
        continue;
      }
      entry.direct = true;
      for (const role of roles) entry.appRoleIds.add(role);
    }

    const users: AssignedUserRecord[] = [...scoped.values()]
      .map((entry) => {
        const appRoleIds = [...entry.appRoleIds].sort();
        const record: AssignedUserRecord = {
          ...entry.user,
          direct: entry.direct,
          viaGroups: [...entry.viaGroups],
          appRoleIds,
        };
        if (roleValues) record.appRoleValues = appRoleValuesOf(appRoleIds, roleValues);
        return record;
      })
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const stats = { requests: requester.requests, assignments, groups: groupRoles.size, ignoredServicePrincipals };
    this.logger.info('read the users in scope from Microsoft Entra', { users: users.length, scope, expandNestedGroups: expand, ...stats });
    return {
      users,
      assignedGroupIds: [...groupRoles.keys()].sort(),
      ...(assignedGroups ? { assignedGroups } : {}),
      directUserIds: [...directRoles.keys()].sort(),
      stats,
    };
  }

  /**
   * Which of `ids` are soft-deleted users (in the directory's deleted items, restorable for 30
   * days). An id that is neither there nor a live user was hard-deleted. Ids that are not object
   * ids are never deleted users and are not sent. Needs User.Read.All.
   */
  /**
   * Every app role assignment of the service principal, as a fingerprint: what an incremental
   * cycle compares to notice an assignment change (Graph has no delta query for assignments).
   */
  async readAssignmentFingerprint(options: ReadOptions = {}): Promise<{ fingerprint: string; groupIds: string[]; directUserIds: string[]; roles: Map<string, Set<string>>; requests: number }> {
    const requester = new GraphRequester(this.client, this.logger, { signal: options.signal });
    const before = requester.requests;
    const { directRoles, groupRoles } = await this.readAssignmentRoles(requester, this.checkedServicePrincipalId());
    const lines: string[] = [];
    for (const [kind, roles] of [['User', directRoles], ['Group', groupRoles]] as const) {
      for (const [id, set] of roles) lines.push(`${kind}:${id}:${[...set].sort().join(',')}`);
    }
    lines.sort();
    return {
      fingerprint: createHash('sha256').update(lines.join('\n')).digest('hex'),
      groupIds: [...groupRoles.keys()].sort(),
      directUserIds: [...directRoles.keys()].sort(),
      // Role ids by principal (user or group id, lower-case): what provision-on-demand needs.
      roles: new Map([...directRoles, ...groupRoles]),
      requests: requester.requests - before,
    };
  }

  /**
   * The groups assigned to the application with their names now, sorted by id (for test-connection
   * and provision on demand, which need the names without reading every member).
   */
  async readAssignedGroups(options: ReadOptions = {}): Promise<AssignedGroup[]> {
    const requester = new GraphRequester(this.client, this.logger, { signal: options.signal });
    const { groupRoles } = await this.readAssignmentRoles(requester, this.checkedServicePrincipalId());
    const ids = [...groupRoles.keys()];
    const requests = this.groupsByIdRequests(ids);
    return groupNamesFrom(await requester.collections<RawGroup>(requests), requests, ids);
  }

  /**
   * One user by object id or UPN, with the attributes mappings and filters need; null when Graph
   * has no such user. For provision-on-demand: a single read, not a cycle. Needs User.Read.All.
   */
  async readUser(idOrUpn: string, attributes: readonly string[] = []): Promise<{ user: EntraUserRecord; appRoleValues?: Map<string, string> } | null> {
    const plan = planAttributes(attributes);
    const requester = new GraphRequester(this.client, this.logger);
    const concerns = 'one user (provision on demand)';
    try {
      const raw = await requester.get<RawUser>(`/users/${encodeURIComponent(idOrUpn)}?$select=${plan.select}`, { concerns, permission: 'User.Read.All', notFound: { code: 'GRAPH_NOT_FOUND', message: 'no such user' } });
      const user = toEntraUserRecord(raw, concerns, plan.names);
      const appRoleValues = plan.appRoleValues ? await this.readAppRoleValues(requester, this.checkedServicePrincipalId()) : undefined;
      return { user, ...(appRoleValues ? { appRoleValues } : {}) };
    } catch (err) {
      if (isEntraReadError(err) && err.code === 'GRAPH_NOT_FOUND') return null;
      throw err;
    }
  }

  /** The groups a user is a member of (direct, or transitive), lower-case ids. Needs GroupMember.Read.All. */
  async readUserGroupIds(userId: string, transitive: boolean): Promise<Set<string>> {
    if (!GUID.test(userId)) throw new EntraReadError('GRAPH_INCOMPLETE', `"${userId}" is not an object id`, { concerns: 'a user\'s groups' });
    const requester = new GraphRequester(this.client, this.logger);
    const groups = new Set<string>();
    const path = `/users/${userId}/${transitive ? 'transitiveMemberOf' : 'memberOf'}/microsoft.graph.group?$select=id&$top=${this.pageSize}`;
    for await (const page of requester.pages<{ id?: string }>(path, { concerns: `the groups of user ${userId}`, permission: 'GroupMember.Read.All' })) {
      for (const g of page) if (typeof g?.id === 'string') groups.add(g.id.toLowerCase());
    }
    return groups;
  }

  private async readAssignmentRoles(requester: GraphRequester, spId: string) {
    // Object ids are compared lower-case: Graph treats them case-insensitively.
    const directRoles = new Map<string, Set<string>>();
    const groupRoles = new Map<string, Set<string>>();
    let assignments = 0;
    let ignoredServicePrincipals = 0;
    const assignmentContext = this.servicePrincipalContext(`the app role assignments of service principal ${spId}`);
    const firstPage = `/servicePrincipals/${spId}/appRoleAssignedTo?$select=principalId,principalType,appRoleId&$top=${this.pageSize}`;
    for await (const page of requester.pages<RawAssignment>(firstPage, assignmentContext)) {
      for (const assignment of page) {
        assignments++;
        const { principalId, principalType, appRoleId } = assignment ?? {};
        if (typeof principalId !== 'string' || !GUID.test(principalId) || typeof appRoleId !== 'string') {
          throw new EntraReadError('GRAPH_INCOMPLETE',
            `Microsoft Graph returned an app role assignment without a valid principalId or appRoleId while reading ${assignmentContext.concerns}.`,
            { concerns: assignmentContext.concerns });
        }
        const key = principalId.toLowerCase();
        if (principalType === 'User') addTo(directRoles, key, appRoleId);
        else if (principalType === 'Group') addTo(groupRoles, key, appRoleId);
        else if (principalType === 'ServicePrincipal') ignoredServicePrincipals++;
        else this.logger.warn('ignoring an app role assignment of an unknown principal type', { principalId, principalType: String(principalType) });
      }
    }
    return { directRoles, groupRoles, assignments, ignoredServicePrincipals };
  }

  async readDeletedUserIds(ids: readonly string[], options: ReadOptions = {}): Promise<Set<string>> {
    const requester = new GraphRequester(this.client, this.logger, { signal: options.signal });
    const byKey = new Map<string, string[]>();
    for (const id of ids) {
      if (!GUID.test(id)) continue;
      const spellings = byKey.get(id.toLowerCase());
      if (spellings) spellings.push(id);
      else byKey.set(id.toLowerCase(), [id]);
    }
    const keys = [...byKey.keys()];
    const requests: CollectionRequest[] = [];
    for (let start = 0; start < keys.length; start += IDS_PER_FILTER) {
      const chunk = keys.slice(start, start + IDS_PER_FILTER);
      const filter = `id in (${chunk.map(odataString).join(',')})`;
      requests.push({
        key: String(requests.length),
        path: `/directory/deletedItems/microsoft.graph.user?$filter=${encodeURIComponent(filter)}&$select=id,deletedDateTime`,
        context: { concerns: `the deleted items (${chunk.length} users)`, permission: 'User.Read.All' },
      });
    }
    const deleted = new Set<string>();
    for (const [, items] of await requester.collections<RawUser>(requests)) {
      for (const item of items) {
        const id = item?.id;
        if (typeof id !== 'string') {
          throw new EntraReadError('GRAPH_INCOMPLETE', 'Microsoft Graph returned a deleted item without an id while reading the deleted items.', { concerns: 'the deleted items' });
        }
        for (const spelling of byKey.get(id.toLowerCase()) ?? []) deleted.add(spelling);
      }
    }
    this.logger.debug('looked up soft-deleted users', { asked: keys.length, deleted: deleted.size, requests: requester.requests });
    return deleted;
  }

  /**
   * One round of user changes (Graph delta query). With `deltaLink` null this is the initial
   * round: every user (all pages), and the deltaLink for the next round; callers may ignore
   * `changed` then. With a deltaLink: only users changed since that round — a round without
   * changes costs one request. `attributes` shapes `attributes` on each user; the properties
   * Graph reports were fixed by the initial round's $select (a changed mapping needs a new one).
   * A watermark Graph no longer accepts throws GRAPH_DELTA_EXPIRED. Needs User.Read.All.
   */
  async readUserChanges(deltaLink: string | null, attributes: readonly string[] = [], options: ReadOptions = {}): Promise<UserChanges> {
    const plan = planAttributes(attributes);
    const requester = new GraphRequester(this.client, this.logger, { signal: options.signal });
    const context: GraphCallContext = {
      concerns: deltaLink === null ? 'all users (initial delta round)' : 'the changes to users since the last delta round',
      permission: 'User.Read.All',
      deltaToken: deltaLink !== null,
    };
    const url = deltaLink === null ? `/users/delta?$select=${plan.select}` : this.checkedDeltaLink(requester, deltaLink, '/users/delta', context);
    const round = await requester.deltaRound<RawUser>(url, context);

    // A user can appear more than once in a round; the last entry is the newest.
    const latest = new Map<string, { record?: EntraUserRecord; removed?: UserRemoval }>();
    for (const item of round.items) {
      const id = item?.id;
      if (typeof id !== 'string' || id === '') {
        throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned an entry without an id while reading ${context.concerns}.`, { concerns: context.concerns });
      }
      const removed = item['@removed'];
      if (removed !== undefined && removed !== null) {
        latest.set(id.toLowerCase(), { removed: { id, reason: removalReason(removed) } });
      } else {
        latest.set(id.toLowerCase(), { record: toEntraUserRecord(item, context.concerns, plan.names) });
      }
    }
    const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const changed = [...latest.values()].flatMap((entry) => (entry.record ? [entry.record] : [])).sort(byId);
    const removed = [...latest.values()].flatMap((entry) => (entry.removed ? [entry.removed] : [])).sort(byId);
    const result = { initial: deltaLink === null, changed, removed, deltaLink: round.deltaLink, requests: requester.requests };
    this.logger.info('read the changes to users from Microsoft Entra', { initial: result.initial, changed: changed.length, removed: removed.length, requests: result.requests });
    return result;
  }

  /**
   * One round of membership changes for `groupIds` (Graph delta query on groups, filtered by id,
   * 50 groups per query, the queries sent together in $batch calls). With `deltaLink` null this is
   * the initial round: `added` holds every current user member. The watermark is bound to the
   * groups it was started for (Graph encodes the filter in it): when the assigned groups change,
   * start a new round with null. Only user members are reported; a nested group added to or
   * removed from a group is named in `groupsWithNestedChanges`. Needs GroupMember.Read.All.
   */
  async readGroupMemberChanges(groupIds: readonly string[], deltaLink: string | null, options: ReadOptions = {}): Promise<GroupMemberChanges> {
    const requester = new GraphRequester(this.client, this.logger, { signal: options.signal });
    const wanted = [...new Set(groupIds.map((id) => id.toLowerCase()))].sort();
    for (const id of wanted) if (!GUID.test(id)) throw new RangeError(`group id "${id.slice(0, 64)}" is not an object id (a GUID)`);
    const chunks: string[][] = [];
    for (let start = 0; start < wanted.length; start += GROUPS_PER_DELTA) chunks.push(wanted.slice(start, start + GROUPS_PER_DELTA));

    const context = (n: number): GraphCallContext => ({
      concerns: deltaLink === null ? `the members of ${n} assigned groups (initial delta round)` : `the membership changes of ${n} assigned groups`,
      permission: 'GroupMember.Read.All',
      deltaToken: deltaLink !== null,
    });
    let requests: CollectionRequest[];
    if (deltaLink === null) {
      requests = chunks.map((chunk, i) => ({
        key: String(i),
        path: `/groups/delta?$select=id,displayName,members&$filter=${encodeURIComponent(chunk.map((id) => `id eq ${odataString(id)}`).join(' or '))}`,
        context: context(chunk.length),
      }));
    } else {
      const links = deltaLink === '' ? [] : deltaLink.split(' ');
      if (links.length !== chunks.length) {
        throw new EntraReadError('GRAPH_DELTA_EXPIRED',
          `The group membership watermark covers ${links.length === 0 ? 'no' : 'other'} groups than the ${wanted.length} assigned now; a new initial round is needed.`,
          { concerns: 'the membership changes of the assigned groups' });
      }
      requests = links.map((link, i) => {
        const ctx = context(chunks[i]?.length ?? 0);
        const path = this.checkedDeltaLink(requester, link, '/groups/delta', ctx);
        return { key: String(i), path: requester.relativeGraphPath(path) as string, context: ctx };
      });
    }
    const rounds = await requester.deltaRounds<RawGroup>(requests);

    const wantedSet = new Set(wanted);
    const memberships = new Map<string, { groupId: string; userId: string; removed: boolean }>();
    const removedGroups = new Set<string>();
    const names = new Map<string, string>();
    const nested = new Set<string>();
    const links: string[] = [];
    for (const request of requests) {
      const round = rounds.get(request.key) as DeltaRound<RawGroup>;
      links.push(round.deltaLink);
      for (const group of round.items) {
        const groupId = typeof group?.id === 'string' ? group.id.toLowerCase() : undefined;
        if (!groupId) {
          throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned a group without an id while reading ${request.context.concerns}.`, { concerns: request.context.concerns });
        }
        if (!wantedSet.has(groupId)) continue;
        if (group['@removed'] !== undefined && group['@removed'] !== null) {
          removedGroups.add(groupId);
          names.delete(groupId);
          continue;
        }
        // Entries can repeat within a round; the last name is the newest.
        if (typeof group.displayName === 'string') names.set(groupId, group.displayName);
        const members = group['members@delta'];
        if (members === undefined || members === null) continue;
        if (!Array.isArray(members)) {
          throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned group ${groupId} with an unreadable members@delta while reading ${request.context.concerns}.`, { concerns: request.context.concerns });
        }
        for (const member of members as RawUser[]) {
          const type = member?.['@odata.type'];
          const memberId = member?.id;
          if (typeof memberId !== 'string' || memberId === '') {
            throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned a member of group ${groupId} without an id while reading ${request.context.concerns}.`, { concerns: request.context.concerns });
          }
          const removed = member['@removed'] !== undefined && member['@removed'] !== null;
          if (type === '#microsoft.graph.user') {
            // Entries can repeat within a round; the last one is the newest.
            memberships.set(`${groupId} ${memberId.toLowerCase()}`, { groupId, userId: memberId, removed });
          } else if (type === '#microsoft.graph.group') {
            nested.add(groupId);
          }
        }
      }
    }
    const order = (a: { groupId: string; userId: string }, b: { groupId: string; userId: string }): number =>
      a.groupId === b.groupId ? (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0) : a.groupId < b.groupId ? -1 : 1;
    const pick = (removed: boolean) => [...memberships.values()].filter((m) => m.removed === removed).map(({ groupId, userId }) => ({ groupId, userId })).sort(order);
    const result: GroupMemberChanges = {
      initial: deltaLink === null,
      added: pick(false),
      removed: pick(true),
      removedGroups: [...removedGroups].sort(),
      groupsWithNestedChanges: [...nested].sort(),
      displayNames: [...names].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, displayName]) => ({ id, displayName })),
      deltaLink: links.join(' '),
      requests: requester.requests,
    };
    this.logger.info('read the membership changes of the assigned groups from Microsoft Entra', {
      initial: result.initial, groups: wanted.length, added: result.added.length, removed: result.removed.length, requests: result.requests,
    });
    return result;
  }

  /**
   * A stored deltaLink, checked before it is sent: it must lead to `resource` on our Graph origin
   * (a token goes with it). Anything else — GRAPH_BASE_URL changed, a damaged watermark — means
   * a new initial round, not a failing cycle.
   */
  private checkedDeltaLink(requester: GraphRequester, link: string, resource: string, context: GraphCallContext): string {
    const relative = requester.relativeGraphPath(link);
    const path = relative?.split('?')[0]?.toLowerCase();
    if (relative === undefined || path !== resource.toLowerCase()) {
      throw new EntraReadError('GRAPH_DELTA_EXPIRED',
        `The stored delta watermark does not lead to ${resource} on the configured Microsoft Graph (was GRAPH_BASE_URL changed?); a new initial round is needed to read ${context.concerns}.`,
        { concerns: context.concerns });
    }
    return link;
  }

  /** $batch-able reads of groups' names by id, 15 per `id in (...)` filter. */
  private groupsByIdRequests(ids: string[]): CollectionRequest[] {
    const requests: CollectionRequest[] = [];
    for (let start = 0; start < ids.length; start += IDS_PER_FILTER) {
      const chunk = ids.slice(start, start + IDS_PER_FILTER);
      const filter = `id in (${chunk.map(odataString).join(',')})`;
      requests.push({
        // Member lists are keyed by group id (a GUID), so these keys cannot collide with them.
        key: `names ${requests.length}`,
        path: `/groups?$filter=${encodeURIComponent(filter)}&$select=id,displayName`,
        context: { concerns: `the names of ${chunk.length} assigned groups`, permission: 'GroupMember.Read.All' },
      });
    }
    return requests;
  }

  /** $batch-able reads of users by id, 15 per `id in (...)` filter. */
  private usersByIdRequests(ids: string[], select: string, what: string): CollectionRequest[] {
    const requests: CollectionRequest[] = [];
    for (let start = 0; start < ids.length; start += IDS_PER_FILTER) {
      const chunk = ids.slice(start, start + IDS_PER_FILTER);
      const filter = `id in (${chunk.map(odataString).join(',')})`;
      requests.push({
        key: String(requests.length),
        path: `/users?$filter=${encodeURIComponent(filter)}&$select=${select}`,
        context: { concerns: `${chunk.length} ${what}`, permission: 'User.Read.All' },
      });
    }
    return requests;
  }

  /** App role id (lower-case) → its value, from the service principal's appRoles. */
  private async readAppRoleValues(requester: GraphRequester, spId: string): Promise<Map<string, string>> {
    const context = this.servicePrincipalContext(`the app roles of service principal ${spId}`);
    const body = await requester.get<Record<string, unknown>>(`/servicePrincipals/${spId}?$select=id,appRoles`, context);
    const roles = body?.appRoles;
    if (!Array.isArray(roles)) {
      throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph answered for service principal ${spId} without its appRoles.`, { concerns: context.concerns });
    }
    const values = new Map<string, string>();
    for (const role of roles as Array<Record<string, unknown>>) {
      const id = role?.id;
      // Entra's SingleAppRoleAssignment shows a role's value; a role without one by its display name.
      const value = typeof role?.value === 'string' && role.value !== '' ? role.value : role?.displayName;
      if (typeof id === 'string' && typeof value === 'string') values.set(id.toLowerCase(), value);
    }
    return values;
  }

  private checkedServicePrincipalId(): string {
    if (!GUID.test(this.servicePrincipalId)) {
      throw new EntraReadError('GRAPH_NOT_FOUND',
        `The service principal id "${this.servicePrincipalId.slice(0, 64)}" is not an object id (a GUID); set ENTRA_SERVICE_PRINCIPAL_ID to the Object ID of the TeamViewer enterprise application.`,
        { concerns: 'the service principal' });
    }
    return this.servicePrincipalId.toLowerCase();
  }

  private servicePrincipalContext(concerns: string): GraphCallContext {
    return {
      concerns,
      permission: 'Application.Read.All',
      notFound: {
        code: 'GRAPH_NOT_FOUND',
        message: `Service principal ${this.servicePrincipalId} does not exist in this tenant: ENTRA_SERVICE_PRINCIPAL_ID must be the Object ID of the TeamViewer enterprise application (Enterprise applications → TeamViewer → Object ID), not its Application (client) ID`,
      },
    };
  }
}

/**
 * The assigned groups with their names, sorted by id. A group Graph did not return (deleted while
 * it was being read) fails the read: a group without a name could be neither named nor told apart
 * from one that is gone.
 */
function groupNamesFrom(read: Map<string, RawGroup[]>, requests: CollectionRequest[], ids: string[]): AssignedGroup[] {
  const concerns = 'the names of the assigned groups';
  const names = new Map<string, string>();
  for (const request of requests) {
    for (const raw of read.get(request.key) ?? []) {
      const { id, displayName } = raw ?? {};
      if (typeof id !== 'string' || typeof displayName !== 'string') {
        throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned a group without an id or displayName while reading ${concerns}.`, { concerns });
      }
      names.set(id.toLowerCase(), displayName);
    }
  }
  return [...ids].sort().map((id) => {
    const displayName = names.get(id);
    if (displayName === undefined) {
      throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph did not return assigned group ${id} while reading ${concerns} (deleted meanwhile?); the next read will know.`, { concerns });
    }
    return { id, displayName };
  });
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

const optionalString = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * Graph's @removed reasons: "changed" — soft-deleted, restorable from the deleted items;
 * "deleted" — gone for good. Anything else is read as gone for good (both deactivate).
 */
function removalReason(removed: unknown): 'changed' | 'deleted' {
  return (removed as { reason?: unknown }).reason === 'changed' ? 'changed' : 'deleted';
}

/** Role ids → their values; default access and roles the application no longer defines have none. */
function appRoleValuesOf(roleIds: string[], values: Map<string, string>): string[] {
  const out: string[] = [];
  for (const id of roleIds) {
    if (id === DEFAULT_ACCESS_ROLE) continue;
    const value = values.get(id.toLowerCase());
    if (value !== undefined && !out.includes(value)) out.push(value);
  }
  return out;
}

/** A user as Graph sent it, with the attributes asked for; missing values are null. */
function toEntraUserRecord(raw: RawUser, concerns: string, attributeNames: readonly string[]): EntraUserRecord {
  const user = toEntraUser(raw, concerns);
  const attributes: Record<string, unknown> = {};
  for (const name of attributeNames) {
    const value = readAttribute(raw, name);
    attributes[name] = value === undefined ? null : value;
  }
  return { ...user, attributes };
}

/** A user as Graph sent it → EntraUser; a user we cannot provision correctly makes the read fail. */
function toEntraUser(raw: RawUser, concerns: string): EntraUser {
  const { id, userPrincipalName, accountEnabled } = raw ?? {};
  if (typeof id !== 'string' || id === '' || typeof userPrincipalName !== 'string' || userPrincipalName === '') {
    throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned a user without an id or userPrincipalName while reading ${concerns}.`, { concerns });
  }
  if (typeof accountEnabled !== 'boolean') {
    // Guessing would enable a disabled account or disable an enabled one.
    throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph returned user ${id} without accountEnabled while reading ${concerns}.`, { concerns });
  }
  return {
    id,
    userPrincipalName,
    displayName: optionalString(raw.displayName),
    givenName: optionalString(raw.givenName),
    surname: optionalString(raw.surname),
    mail: optionalString(raw.mail),
    accountEnabled,
  };
}
