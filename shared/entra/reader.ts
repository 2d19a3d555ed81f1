/**
 * Reads who is in scope for the enterprise application, as Entra's "Sync only assigned users and
 * groups" does: users assigned directly (any app role, including default access) plus the direct
 * members of assigned groups. Nested groups are not expanded and service principals are ignored,
 * like Entra.
 *
 * Invariant: readAssignedUsers returns the complete list or throws an EntraReadError — never a
 * partial one. A list missing users would make the cycle disable them in TeamViewer.
 *
 * Cost: one request per page of assignments, then $batch calls of 20 reads: group member lists
 * (users only, attributes through $select) and directly assigned users not already seen in a
 * group, 15 ids per `id in (...)` filter — up to 300 users per HTTP request.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { silentLogger, type Logger } from '../log';
import type { AssignedUser, EntraUser } from '../sync/model';
import { EntraReadError } from './errors';
import { GraphRequester, type CollectionRequest, type GraphCallContext } from './graph-client';

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

export interface AssignedUsersRead {
  users: AssignedUser[];
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

interface Scoped {
  user: EntraUser;
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

  async readAssignedUsers(): Promise<AssignedUsersRead> {
    const requester = new GraphRequester(this.client, this.logger);
    const spId = this.checkedServicePrincipalId();

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

    const scoped = new Map<string, Scoped>();
    const include = (raw: RawUser, concerns: string): Scoped => {
      const user = toEntraUser(raw, concerns);
      const key = user.id.toLowerCase();
      let entry = scoped.get(key);
      if (!entry) {
        entry = { user, direct: false, viaGroups: new Set(), appRoleIds: new Set() };
        scoped.set(key, entry);
      }
      return entry;
    };

    const memberRequests: CollectionRequest[] = [...groupRoles.keys()].map((groupId) => ({
      key: groupId,
      path: `/groups/${groupId}/members/microsoft.graph.user?$select=${USER_FIELDS}&$top=${this.pageSize}`,
      context: { concerns: `the members of assigned group ${groupId}`, permission: 'GroupMember.Read.All' },
    }));
    const members = await requester.collections<RawUser>(memberRequests);
    for (const [groupId, users] of members) {
      for (const raw of users) {
        const entry = include(raw, `the members of assigned group ${groupId}`);
        entry.viaGroups.add(groupId);
        for (const role of groupRoles.get(groupId) ?? []) entry.appRoleIds.add(role);
      }
    }

    // Users already read as group members need no second read.
    const unread = [...directRoles.keys()].filter((id) => !scoped.has(id));
    const userRequests: CollectionRequest[] = [];
    for (let start = 0; start < unread.length; start += IDS_PER_FILTER) {
      const ids = unread.slice(start, start + IDS_PER_FILTER);
      const filter = `id in (${ids.map(odataString).join(',')})`;
      userRequests.push({
        key: String(userRequests.length),
        path: `/users?$filter=${encodeURIComponent(filter)}&$select=${USER_FIELDS}`,
        context: { concerns: `${ids.length} directly assigned users`, permission: 'User.Read.All' },
      });
    }
    const fetched = await requester.collections<RawUser>(userRequests);
    for (const [, users] of fetched) {
      for (const raw of users) include(raw, 'directly assigned users');
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

    const users: AssignedUser[] = [...scoped.values()]
      .map((entry) => ({
        ...entry.user,
        direct: entry.direct,
        viaGroups: [...entry.viaGroups],
        appRoleIds: [...entry.appRoleIds].sort(),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const stats = { requests: requester.requests, assignments, groups: groupRoles.size, ignoredServicePrincipals };
    this.logger.info('read the assigned users from Microsoft Entra', { users: users.length, ...stats });
    return { users, stats };
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

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}

const optionalString = (value: unknown): string | null => (typeof value === 'string' ? value : null);

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
