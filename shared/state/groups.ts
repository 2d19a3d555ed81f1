/**
 * Group state in Azure Table Storage: one link per Entra group, and the members tvsync wrote to
 * each TeamViewer user group.
 *
 * Invariants:
 * - `${prefix}Groups`, partition 'group', RowKey = escapeKey(Entra group id, lower-case): one
 *   GroupLink. `${prefix}GroupMembers`, PartitionKey = escapeKey(Entra group id, lower-case),
 *   RowKey = escapeKey(TeamViewer user id): one row per member tvsync wrote (or found there and took
 *   over). A group of 100,000 members is 100,000 small rows in its own partition, written and
 *   deleted in entity-group transactions of at most 100; no row grows with the group.
 * - Write order, so that a process may die at any line (as for user links, shared/sync/cycle.ts):
 *   before a create is sent, an intent (pending 'create', no TeamViewer id, the name it sends) is
 *   written; the link with the id only after TeamViewer answered. A member row is written after
 *   TeamViewer confirmed the add and deleted after it confirmed the removal, so a crash leaves a
 *   row at most one step behind, which the next cycle repeats (adding or removing twice is
 *   harmless). Callers write member rows only for a group whose link has its TeamViewer id.
 * - deleteGroupLink deletes the member rows first and the link last: a crash in between leaves a
 *   link with fewer rows (the next cycle finishes), never rows no link explains.
 * - A row that cannot be decoded is STATE_CORRUPT naming table and row; nothing is skipped or
 *   defaulted (a member row silently dropped would be a member tvsync forgets it manages).
 * - Group ids are lower-cased on the way in and come back lower-case.
 */
import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { silentLogger, type Logger } from '../log';
import type { GroupLink } from '../domain/group-model';
import { isRestError, serviceCodeOf, StateError, toStateError } from './errors';
import { escapeKey, MAX_KEY_LENGTH, unescapeKey } from './keys';
import { tableClient, tableEndpoint, type ClientTuning, type StorageTarget } from './target';

export interface GroupStateOptions {
  /** Letters and digits, starting with a letter; default 'tvsync' (the state tables' prefix). */
  tablePrefix?: string;
  logger?: Logger;
  tuning?: ClientTuning;
}

const LINK_PARTITION = 'group';
/** Entity-group transactions hold at most 100 operations on one partition. */
const BATCH = 100;
const KEYS_PAGE = 1000;
/** The service counts string properties in UTF-16: 64 KiB is 32 Ki code units. */
const MAX_STRING_PROPERTY = 32 * 1024;
const ORIGINS: readonly string[] = ['created', 'adopted'] satisfies GroupLink['origin'][];

type Entity = { partitionKey: string; rowKey: string } & Record<string, unknown>;
type Row = TableEntityResult<Record<string, unknown>>;

export class GroupStateStore {
  private constructor(
    private readonly links: TableClient,
    private readonly members: TableClient,
    private readonly host: string,
  ) {}

  /** Connects and creates the two tables if they are missing. */
  static async open(target: StorageTarget, opts: GroupStateOptions = {}): Promise<GroupStateStore> {
    const prefix = opts.tablePrefix ?? 'tvsync';
    // Table names have at most 63 characters; "GroupMembers" takes 12 of them.
    if (!/^[A-Za-z][A-Za-z0-9]{0,50}$/.test(prefix)) {
      throw new StateError('STATE_CONFIG', `table prefix "${prefix}" must be 1-51 letters and digits, starting with a letter`);
    }
    const host = tableEndpoint(target).host;
    const store = new GroupStateStore(tableClient(target, `${prefix}Groups`, opts.tuning), tableClient(target, `${prefix}GroupMembers`, opts.tuning), host);
    await Promise.all([store.links, store.members].map((table) => store.call('open', table, {}, () => table.createTable())));
    (opts.logger ?? silentLogger).debug('group state ready', { host, tablePrefix: prefix });
    return store;
  }

  // ---- links ----

  async listGroupLinks(): Promise<GroupLink[]> {
    const rows = await this.rows(this.links, odata`PartitionKey eq ${LINK_PARTITION}`, undefined, 'listGroupLinks');
    return rows.map((row) => decodeLink(row, this.links.tableName));
  }

  async getGroupLink(entraGroupId: string): Promise<GroupLink | null> {
    const rowKey = groupKey(entraGroupId);
    try {
      const row = await this.call('getGroupLink', this.links, { rowKey }, () => this.links.getEntity(LINK_PARTITION, rowKey));
      return decodeLink(row as Row, this.links.tableName);
    } catch (error) {
      if (isMissingRow(error)) return null;
      throw error;
    }
  }

  async putGroupLink(link: GroupLink): Promise<void> {
    const entity = checked(this.links.tableName, encodeLink(link));
    await this.call('putGroupLink', this.links, { rowKey: entity.rowKey }, () => this.links.upsertEntity(entity, 'Replace'));
  }

  /** Deletes the group's member rows, then its link. A missing link is fine. */
  async deleteGroupLink(entraGroupId: string): Promise<void> {
    const rowKey = groupKey(entraGroupId);
    await this.clearMembers(entraGroupId);
    try {
      await this.call('deleteGroupLink', this.links, { rowKey }, () => this.links.deleteEntity(LINK_PARTITION, rowKey));
    } catch (error) {
      if (!isMissingRow(error)) throw error;
    }
  }

  // ---- members ----

  /** The TeamViewer user ids tvsync wrote to the group, in key order. */
  async listMembers(entraGroupId: string): Promise<string[]> {
    const partitionKey = groupKey(entraGroupId);
    const rows = await this.rows(this.members, odata`PartitionKey eq ${partitionKey}`, ['PartitionKey', 'RowKey'], 'listMembers');
    return rows.map((row) => memberOf(row, this.members.tableName));
  }

  /** Whether tvsync wrote this TeamViewer user to the group (one point read). */
  async hasMember(entraGroupId: string, teamViewerId: string): Promise<boolean> {
    const partitionKey = groupKey(entraGroupId);
    const rowKey = memberKey(teamViewerId);
    try {
      await this.call('hasMember', this.members, { partitionKey, rowKey }, () => this.members.getEntity(partitionKey, rowKey, { queryOptions: { select: ['PartitionKey'] } }));
      return true;
    } catch (error) {
      if (isMissingRow(error)) return false;
      throw error;
    }
  }

  /** Every group's written members (Entra group id → TeamViewer user ids), in one pass over the table. */
  async listAllMembers(): Promise<Map<string, string[]>> {
    const rows = await this.rows(this.members, undefined, ['PartitionKey', 'RowKey'], 'listAllMembers');
    const byGroup = new Map<string, string[]>();
    for (const row of rows) {
      const group = idOf(row.partitionKey ?? '', row, this.members.tableName, 'PartitionKey');
      const list = byGroup.get(group) ?? [];
      list.push(memberOf(row, this.members.tableName));
      byGroup.set(group, list);
    }
    return byGroup;
  }

  /** Records members TeamViewer confirmed; writing one again is harmless. */
  async addMembers(entraGroupId: string, teamViewerIds: readonly string[], writtenAt: Date = new Date()): Promise<void> {
    const partitionKey = groupKey(entraGroupId);
    const at = writtenAt.toISOString();
    const entities = unique(teamViewerIds).map((id) => checked(this.members.tableName, { partitionKey, rowKey: memberKey(id), writtenAt: at }));
    for (let start = 0; start < entities.length; start += BATCH) {
      const actions: TransactionAction[] = entities.slice(start, start + BATCH).map((entity) => ['upsert', entity, 'Replace']);
      await this.call('addMembers', this.members, { partitionKey }, () => this.members.submitTransaction(actions));
    }
  }

  /** Forgets members TeamViewer confirmed removed (or that tvsync no longer manages); missing rows are fine. */
  async removeMembers(entraGroupId: string, teamViewerIds: readonly string[]): Promise<void> {
    const partitionKey = groupKey(entraGroupId);
    const rowKeys = unique(teamViewerIds).map(memberKey);
    for (let start = 0; start < rowKeys.length; start += BATCH) await this.deleteKeys(partitionKey, rowKeys.slice(start, start + BATCH));
  }

  /** Deletes every member row of the group, reading keys only; returns how many it deleted. */
  async clearMembers(entraGroupId: string): Promise<number> {
    const partitionKey = groupKey(entraGroupId);
    let deleted = 0;
    for (;;) {
      const keys = await this.firstKeys(partitionKey);
      if (keys.length === 0) return deleted;
      for (let start = 0; start < keys.length; start += BATCH) deleted += await this.deleteKeys(partitionKey, keys.slice(start, start + BATCH));
    }
  }

  // ---- plumbing ----

  /** Deletes in one transaction; when a row is already gone (which fails the whole batch), one by one. */
  private async deleteKeys(partitionKey: string, rowKeys: string[]): Promise<number> {
    const actions: TransactionAction[] = rowKeys.map((rowKey) => ['delete', { partitionKey, rowKey }]);
    try {
      await this.call('removeMembers', this.members, { partitionKey }, () => this.members.submitTransaction(actions));
      return rowKeys.length;
    } catch (error) {
      if (!isMissingRow(error)) throw error;
    }
    let deleted = 0;
    for (const rowKey of rowKeys) {
      try {
        await this.call('removeMembers', this.members, { partitionKey, rowKey }, () => this.members.deleteEntity(partitionKey, rowKey));
        deleted++;
      } catch (error) {
        if (!isMissingRow(error)) throw error;
      }
    }
    return deleted;
  }

  /** Up to a page of row keys of one partition, following the empty pages the service may return. */
  private async firstKeys(partitionKey: string): Promise<string[]> {
    let continuationToken: string | undefined;
    do {
      const page = await this.call('clearMembers', this.members, { partitionKey }, async () => {
        const pages = this.members
          .listEntities({ queryOptions: { filter: odata`PartitionKey eq ${partitionKey}`, select: ['PartitionKey', 'RowKey'] } })
          .byPage({ maxPageSize: KEYS_PAGE, continuationToken });
        const { value } = await pages.next();
        return (value ?? []) as Row[] & { continuationToken?: string };
      });
      if (page.length > 0) return page.map((row) => row.rowKey ?? '');
      continuationToken = page.continuationToken || undefined;
    } while (continuationToken);
    return [];
  }

  private rows(client: TableClient, filter: string | undefined, select: string[] | undefined, operation: string): Promise<Row[]> {
    return this.call(operation, client, {}, async () => {
      const rows: Row[] = [];
      const queryOptions = { ...(filter ? { filter } : {}), ...(select ? { select } : {}) };
      for await (const row of client.listEntities({ queryOptions })) rows.push(row);
      return rows;
    });
  }

  /** Runs one request and turns whatever it throws into a StateError (the mapping every state table uses). */
  private async call<T>(operation: string, client: TableClient, where: { partitionKey?: string; rowKey?: string }, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const rest = isRestError(error) ? error : undefined;
      throw toStateError(error, {
        operation,
        host: this.host,
        table: client.tableName,
        ...where,
        status: rest?.statusCode ?? (error instanceof StateError ? error.status : undefined),
        serviceCode: rest ? serviceCodeOf(rest) : error instanceof StateError ? error.serviceCode : undefined,
      });
    }
  }
}

/** The row (or a row of the batch) is not there — as opposed to the whole table. */
function isMissingRow(error: unknown): boolean {
  return error instanceof StateError && error.status === 404 && error.serviceCode !== 'TableNotFound';
}

function key(id: string, what: string): string {
  if (typeof id !== 'string' || id === '') throw new StateError('STATE_INVALID_ARGUMENT', `${what} must be a non-empty string`);
  const escaped = escapeKey(id);
  if (escaped.length > MAX_KEY_LENGTH) {
    throw new StateError('STATE_TOO_LARGE', `${what} is ${escaped.length} characters once escaped; Table Storage keys hold ${MAX_KEY_LENGTH}`);
  }
  return escaped;
}

const groupKey = (entraGroupId: string): string => key(typeof entraGroupId === 'string' ? entraGroupId.toLowerCase() : entraGroupId, 'Entra group id');
const memberKey = (teamViewerId: string): string => key(teamViewerId, 'TeamViewer user id');
const unique = (ids: readonly string[]): string[] => [...new Set(ids)];

function checked<E extends Entity>(table: string, entity: E): E {
  for (const [name, value] of Object.entries(entity)) {
    if (typeof value === 'string' && value.length > MAX_STRING_PROPERTY) {
      throw new StateError('STATE_TOO_LARGE', `property ${name} of ${table}/${entity.rowKey} is ${value.length} UTF-16 units; Table Storage allows ${MAX_STRING_PROPERTY} (64 KiB)`, {
        table, partitionKey: entity.partitionKey, rowKey: entity.rowKey,
      });
    }
  }
  return entity;
}

function corrupt(table: string, row: Row, problem: string): StateError {
  return new StateError('STATE_CORRUPT', `state row ${table}/${row.partitionKey}/${row.rowKey} is corrupt: ${problem}`, {
    table, partitionKey: row.partitionKey, rowKey: row.rowKey,
  });
}

function idOf(escaped: string, row: Row, table: string, which: 'PartitionKey' | 'RowKey'): string {
  try {
    return unescapeKey(escaped);
  } catch {
    throw corrupt(table, row, `the ${which} is not an escaped id`);
  }
}

const memberOf = (row: Row, table: string): string => idOf(row.rowKey ?? '', row, table, 'RowKey');

function encodeLink(link: GroupLink): Entity {
  if (link.teamViewerGroupId !== null && !/^\d+$/.test(link.teamViewerGroupId)) {
    throw new StateError('STATE_INVALID_ARGUMENT', `group link ${link.entraGroupId}: TeamViewer group id "${String(link.teamViewerGroupId).slice(0, 40)}" is not digits`);
  }
  if (link.teamViewerGroupId === null && link.pending !== 'create') {
    throw new StateError('STATE_INVALID_ARGUMENT', `group link ${link.entraGroupId}: only a pending create has no TeamViewer group id`);
  }
  const entity: Entity = {
    partitionKey: LINK_PARTITION,
    rowKey: groupKey(link.entraGroupId),
    name: link.name,
    origin: link.origin,
    createdAt: link.createdAt,
    updatedAt: link.updatedAt,
  };
  if (link.teamViewerGroupId !== null) entity.teamViewerGroupId = link.teamViewerGroupId;
  if (link.role) {
    entity.roleId = link.role.id;
    entity.roleName = link.role.name;
  }
  if (link.pending) entity.pending = link.pending;
  if (link.members !== undefined) {
    if (!Number.isSafeInteger(link.members) || link.members < 0) throw new StateError('STATE_INVALID_ARGUMENT', `group link ${link.entraGroupId}: members must be a count`);
    entity.members = link.members;
  }
  return entity;
}

function decodeLink(row: Row, table: string): GroupLink {
  const text = (name: string, optional = false): string | null => {
    const value = row[name];
    if (typeof value === 'string') return value;
    if (optional && (value === undefined || value === null)) return null;
    throw corrupt(table, row, `${name} should be a string, is ${value === undefined ? 'missing' : `a ${typeof value}`}`);
  };
  const origin = text('origin') as string;
  if (!ORIGINS.includes(origin)) throw corrupt(table, row, `origin should be one of ${ORIGINS.join(', ')}, is "${origin.slice(0, 20)}"`);
  const teamViewerGroupId = text('teamViewerGroupId', true);
  if (teamViewerGroupId !== null && !/^\d+$/.test(teamViewerGroupId)) throw corrupt(table, row, 'teamViewerGroupId should be digits');
  const roleId = text('roleId', true);
  const roleName = text('roleName', true);
  if ((roleId === null) !== (roleName === null)) throw corrupt(table, row, 'roleId and roleName come together');
  const pending = row.pending;
  if (pending !== undefined && pending !== 'create') throw corrupt(table, row, 'pending should be "create"');
  if (teamViewerGroupId === null && pending !== 'create') throw corrupt(table, row, 'a link without teamViewerGroupId must be a pending create');
  const link: GroupLink = {
    entraGroupId: idOf(row.rowKey ?? '', row, table, 'RowKey'),
    teamViewerGroupId,
    name: text('name') as string,
    origin: origin as GroupLink['origin'],
    role: roleId !== null && roleName !== null ? { id: roleId, name: roleName } : null,
    createdAt: text('createdAt') as string,
    updatedAt: text('updatedAt') as string,
  };
  if (pending === 'create') link.pending = 'create';
  const members = row.members;
  if (members !== undefined && members !== null) {
    if (typeof members !== 'number' || !Number.isSafeInteger(members) || members < 0) throw corrupt(table, row, 'members should be a count');
    link.members = members;
  }
  return link;
}
