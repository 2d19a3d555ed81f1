/**
 * tvsync's state in Azure Table Storage: links, cycles and small meta documents.
 *
 * Invariants:
 * - Tables are `${prefix}Links`, `${prefix}Cycles`, `${prefix}Meta`, one partition each
 *   ('link', 'cycle', 'meta'). Row keys are `escapeKey(id)`, so any id is storable and no two ids
 *   share a row; a row whose key is not a canonical escape is corrupt, never another id.
 * - Beside each link that has a TeamViewer id, in the same partition and written in the same
 *   transaction, an index row `%~<escaped TeamViewer id>` names the Entra id that holds it (no link
 *   key can start with '%~'). It is a pointer, always checked against the link it names, so a stale
 *   one reads as "nobody". Listings of links leave index rows out. A meta row `linkIndex` says every
 *   link has its index row; until a full cycle has written them (state from an older version),
 *   lookups by TeamViewer id read every link instead.
 * - Link writes and deletes go through a group commit (batch-writer.ts): those made at the same time
 *   share entity-group transactions, and each call resolves only once its own rows are committed.
 * - A row we cannot decode is reported as STATE_CORRUPT naming table and row. Nothing is skipped or
 *   defaulted: a link silently dropped from listLinks would make the next cycle create a duplicate
 *   TeamViewer user.
 * - A cycle's RowKey is `<10^15 - startedAt ms, 15 digits>_<id>`, so the table's natural order is
 *   newest first and listCycles reads only the rows it returns. The time comes from the id, which is
 *   why ids must come from newCycleId.
 * - Every write is checked against the service limits (a key over 1 KiB, a string property over
 *   64 KiB) before it is sent, and refused whole with STATE_TOO_LARGE: nothing is truncated.
 * - putMeta's etag contract: a string → replace only that version; null → create only if absent;
 *   undefined → unconditional upsert. A lost condition is StateConflictError. Because the SDK retries
 *   5xx and resets, a conditional write whose first attempt landed but whose answer was lost reports
 *   a conflict for our own write: callers re-read on conflict, they never assume the other side won.
 * - An id set (the guard's held or allowed users; thousands of ids, more than one row holds) lives
 *   in the Meta table's 'idset' partition as rows `<setId>_<chunk>`, each a JSON list of ids with the
 *   set's total and chunk count. A set is written once and never changed; it counts only once a meta
 *   row names it (the writer saves that row after the set), and getIdSet refuses (STATE_CORRUPT) a
 *   set with a missing chunk or a total that does not add up: a lost id is never read as "fewer".
 */
import { randomBytes } from 'node:crypto';
import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { silentLogger, type Logger } from '../log';
import { emptyCounts, type CycleCounts, type CycleRecord, type DriftRepair, type Escrow, type GroupCounts, type GroupFailure, type Link, type LinkDigest, type UserFailure } from '../domain/model';
import { isRestError, serviceCodeOf, StateConflictError, StateError, toStateError, type StateErrorDetails } from './errors';
import { BatchWriter, type RowOp } from './batch-writer';
import { escapeKey, MAX_KEY_LENGTH, unescapeKey } from './keys';
import { tableClient, tableEndpoint, type ClientTuning, type StorageTarget } from './target';

export interface StateStoreOptions {
  /** Letters and digits, starting with a letter; default 'tvsync'. */
  tablePrefix?: string;
  logger?: Logger;
  tuning?: ClientTuning;
}

const LINK_PARTITION = 'link';
/**
 * Row keys of the TeamViewer-id index, beside the links in their partition. An escaped id that
 * starts with '%' continues with a hex digit or 'u' (keys.ts), so no link key starts with '%~',
 * and every index key lies in [INDEX_FROM, INDEX_TO).
 */
const INDEX_PREFIX = '%~';
const INDEX_FROM = INDEX_PREFIX;
const INDEX_TO = '&';
/** Meta row: set once every link written before this version has its index row. */
const LINK_INDEX_KEY = 'linkIndex';
const ESCROW_PARTITION = 'escrow';
const CYCLE_PARTITION = 'cycle';
const META_PARTITION = 'meta';
const ID_SET_PARTITION = 'idset';
/** Set ids from newIdSetId: base-36 time first, so a sweep can tell a set being written from an abandoned one. */
const ID_SET_ID = /^[0-9a-z]{9}[0-9a-f]{8}$/;

/** The service counts string properties in UTF-16: 64 KiB is 32 Ki code units. */
const MAX_STRING_PROPERTY = 32 * 1024;
const MAX_INT32 = 2 ** 31 - 1;
const INVERTED_TIME_BASE = 10 ** 15;
const CYCLE_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-[0-9a-f]{4}$/;
const COUNT_NAMES = Object.keys(emptyCounts()).filter((name) => name !== 'groups') as Array<Exclude<keyof CycleCounts, 'groups'>>;
/** The user-group counts, one flat column each (a row holds numbers, not objects). */
const GROUP_COUNT_COLUMNS: ReadonlyArray<[keyof GroupCounts, string]> = [
  ['created', 'groupsCreated'], ['linked', 'groupsLinked'], ['updated', 'groupsUpdated'], ['deleted', 'groupsDeleted'],
  ['unlinked', 'groupsUnlinked'], ['membersAdded', 'groupMembersAdded'], ['membersRemoved', 'groupMembersRemoved'],
  ['staged', 'groupsStaged'], ['failed', 'groupsFailed'],
];
const LATER_COUNTS: ReadonlySet<string> = new Set(['staged', 'drift', ...GROUP_COUNT_COLUMNS.map(([, column]) => column)]);
const CYCLE_KINDS: readonly string[] = ['initial', 'incremental'] satisfies CycleRecord['kind'][];
const CYCLE_RESULTS: readonly string[] = ['running', 'succeeded', 'partial', 'failed'] satisfies CycleRecord['result'][];
const TRIGGERS: readonly string[] = ['timer', 'cli', 'http', 'demo'] satisfies CycleRecord['trigger'][];

type Entity = { partitionKey: string; rowKey: string } & Record<string, unknown>;
type Row = TableEntityResult<Record<string, unknown>>;

export class StateStore {
  /** Link writes, committed in entity-group transactions (batch-writer.ts). */
  private readonly linkWriter: BatchWriter;
  /** Whether the TeamViewer-id index is known to cover every link (it never stops covering them). */
  private indexComplete = false;

  private constructor(
    private readonly links: TableClient,
    private readonly cycles: TableClient,
    private readonly meta: TableClient,
    private readonly host: string,
  ) {
    this.linkWriter = new BatchWriter((ops) => this.sendLinkOps(ops));
  }

  /** Connects and creates the three tables if they are missing. */
  static async open(target: StorageTarget, opts: StateStoreOptions = {}): Promise<StateStore> {
    const prefix = opts.tablePrefix ?? 'tvsync';
    if (!/^[A-Za-z][A-Za-z0-9]{0,56}$/.test(prefix)) {
      throw new StateError('STATE_CONFIG', `table prefix "${prefix}" must be 1-57 letters and digits, starting with a letter`);
    }
    const host = tableEndpoint(target).host;
    const client = (suffix: string) => tableClient(target, `${prefix}${suffix}`, opts.tuning);
    const store = new StateStore(client('Links'), client('Cycles'), client('Meta'), host);
    // The SDK already treats 409 TableAlreadyExists as success.
    await Promise.all([store.links, store.cycles, store.meta].map((table) => store.call('open', table, undefined, () => table.createTable())));
    (opts.logger ?? silentLogger).debug('state store ready', { host, tablePrefix: prefix });
    return store;
  }

  // ---- links ----
  // Beside each link with a TeamViewer id lies an index row (TeamViewer id → Entra id), written in
  // the same transaction, so "who holds TeamViewer user X" is two point reads, not a read of every
  // link. An index row is a pointer, checked against the link it names: a link that moved to
  // another TeamViewer user (or was deleted) leaves a stale row that reads as "nobody".

  async listLinks(): Promise<Link[]> {
    const rows = await this.listAll(this.links, LINK_PARTITION, undefined, true);
    return rows.map((row) => decodeLink(row, this.links.tableName));
  }

  /**
   * Every link with only what the drift check compares: the service returns just those columns,
   * so a quiet cycle reads a fraction of each row.
   */
  async listLinkDigests(): Promise<LinkDigest[]> {
    const rows = await this.listAll(this.links, LINK_PARTITION, ['RowKey', 'teamViewerId', 'written', 'pending', 'rematch'], true);
    return rows.map((row) => {
      const read = new RowReader(row, this.links.tableName);
      const digest: LinkDigest = { entraId: read.id(), teamViewerId: read.optionalString('teamViewerId'), written: decodeWritten(row, this.links.tableName) };
      if (row.pending !== undefined) digest.pending = read.oneOf<'create'>('pending', ['create']);
      if (row.rematch !== undefined && read.boolean('rematch')) digest.rematch = true;
      return digest;
    });
  }

  async getLink(entraId: string): Promise<Link | null> {
    const row = await this.getRow(this.links, LINK_PARTITION, this.rowKey(entraId, 'entraId'));
    return row && decodeLink(row, this.links.tableName);
  }

  /**
   * Writes the link (and its index row) in a transaction shared with the link writes made at the
   * same time; resolves once it is committed.
   */
  async putLink(link: Link): Promise<void> {
    const rowKey = this.rowKey(link.entraId, 'entraId');
    const ops: RowOp[] = [{ kind: 'upsert', rowKey, entity: this.checked(this.links, encodeLink(link, rowKey)) }];
    if (link.teamViewerId) ops.push(this.indexOp(link.teamViewerId, link.entraId));
    await this.linkWriter.write(rowKey, ops);
  }

  async deleteLink(entraId: string): Promise<void> {
    const rowKey = this.rowKey(entraId, 'entraId');
    await this.linkWriter.write(rowKey, [{ kind: 'delete', rowKey }]);
  }

  /** The link that holds TeamViewer user `teamViewerId`, or null. */
  async findLinkByTeamViewerId(teamViewerId: string): Promise<Link | null> {
    if (!(await this.linkIndexComplete())) {
      // Links written by an older version may have no index row yet (the next full cycle adds them).
      return (await this.listLinks()).find((l) => l.teamViewerId === teamViewerId) ?? null;
    }
    const row = await this.getRow(this.links, LINK_PARTITION, this.indexKey(teamViewerId));
    if (!row) return null;
    const entraId = new RowReader(row, this.links.tableName).string('entraId');
    const link = await this.getLink(entraId);
    return link?.teamViewerId === teamViewerId ? link : null;
  }

  /**
   * Gives every link in `links` (all links, as a full read found them) its index row, once: after
   * that, every link write keeps the index. Returns how many rows were written (0 when done before).
   */
  async completeLinkIndex(links: readonly Link[]): Promise<number> {
    if (await this.linkIndexComplete()) return 0;
    const indexed = links.filter((l) => l.teamViewerId);
    await Promise.all(indexed.map((l) => { const op = this.indexOp(l.teamViewerId!, l.entraId); return this.linkWriter.write(op.rowKey, [op]); }));
    await this.putMeta(LINK_INDEX_KEY, { complete: true, links: indexed.length, at: new Date().toISOString() });
    this.indexComplete = true;
    return indexed.length;
  }

  private async linkIndexComplete(): Promise<boolean> {
    if (!this.indexComplete) this.indexComplete = (await this.getMeta<{ complete?: boolean }>(LINK_INDEX_KEY))?.value.complete === true;
    return this.indexComplete;
  }

  private indexKey(teamViewerId: string): string {
    return INDEX_PREFIX + this.rowKey(teamViewerId, 'teamViewerId');
  }

  private indexOp(teamViewerId: string, entraId: string): RowOp {
    const rowKey = this.indexKey(teamViewerId);
    return { kind: 'upsert', rowKey, entity: { partitionKey: LINK_PARTITION, rowKey, entraId } };
  }

  /** One transaction of link-partition rows; a lone operation goes as a plain request. */
  private async sendLinkOps(ops: readonly RowOp[]): Promise<void> {
    if (ops.length === 1) {
      const [op] = ops;
      if (op.kind === 'delete') await this.deleteRow('deleteLink', this.links, LINK_PARTITION, op.rowKey);
      else await this.call('putLink', this.links, op.rowKey, () => this.links.upsertEntity({ ...op.entity, partitionKey: LINK_PARTITION, rowKey: op.rowKey }, 'Replace'));
      return;
    }
    const actions: TransactionAction[] = ops.map((op) =>
      op.kind === 'delete' ? ['delete', { partitionKey: LINK_PARTITION, rowKey: op.rowKey }] : ['upsert', { ...op.entity, partitionKey: LINK_PARTITION, rowKey: op.rowKey }, 'Replace'],
    );
    await this.call('putLinks', this.links, undefined, () => this.links.submitTransaction(actions));
  }

  // ---- escrows (users whose change keeps failing), in the small Meta table's own partition ----
  // (not beside the links: every quiet cycle lists them, and that must not cost a large table read)

  async listEscrows(): Promise<Escrow[]> {
    const rows = await this.listAll(this.meta, ESCROW_PARTITION);
    return rows.map((row) => {
      try {
        return JSON.parse(String(row.value)) as Escrow;
      } catch {
        throw corrupt(this.meta.tableName, row, 'the escrow is not JSON');
      }
    });
  }

  async putEscrow(escrow: Escrow): Promise<void> {
    const entity = this.checked(this.meta, { partitionKey: ESCROW_PARTITION, rowKey: this.rowKey(escrow.entraId, 'entraId'), value: JSON.stringify(escrow) });
    await this.call('putEscrow', this.meta, entity.rowKey, () => this.meta.upsertEntity(entity, 'Replace'));
  }

  async deleteEscrow(entraId: string): Promise<void> {
    await this.deleteRow('deleteEscrow', this.meta, ESCROW_PARTITION, this.rowKey(entraId, 'entraId'));
  }

  // ---- id sets (see the invariants above) ----

  newIdSetId(at: Date = new Date()): string {
    return `${at.getTime().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
  }

  /** Writes a new set; refuses (STATE_CONFLICT) a set id already used. */
  async putIdSet(setId: string, ids: readonly string[]): Promise<void> {
    const key = this.idSetId(setId);
    const chunks = chunkIds(ids);
    for (const [index, chunk] of chunks.entries()) {
      const entity = this.checked(this.meta, { partitionKey: ID_SET_PARTITION, rowKey: `${key}_${String(index).padStart(6, '0')}`, ids: JSON.stringify(chunk), total: ids.length, chunks: chunks.length });
      await this.call('putIdSet', this.meta, entity.rowKey, () => this.meta.createEntity(entity), { 409: `id set ${setId} already exists` });
    }
  }

  /** The ids of a set, whole; STATE_NOT_FOUND when there is no such set, STATE_CORRUPT when part of it is missing. */
  async getIdSet(setId: string): Promise<string[]> {
    const key = this.idSetId(setId);
    const rows = await this.call('getIdSet', this.meta, undefined, async () => {
      const found: Row[] = [];
      const filter = odata`PartitionKey eq ${ID_SET_PARTITION} and RowKey ge ${`${key}_`} and RowKey lt ${`${key}\``}`;
      for await (const row of this.meta.listEntities({ queryOptions: { filter } })) found.push(row);
      return found;
    });
    if (rows.length === 0) throw new StateError('STATE_NOT_FOUND', `id set ${setId} does not exist`, { table: this.meta.tableName, partitionKey: ID_SET_PARTITION });
    const ids: string[] = [];
    for (const [index, row] of rows.entries()) {
      const read = new RowReader(row, this.meta.tableName);
      if (row.rowKey !== `${key}_${String(index).padStart(6, '0')}` || read.count('chunks') !== rows.length) throw corrupt(this.meta.tableName, row, `id set ${setId} is missing a chunk`);
      const chunk = read.json('ids');
      if (!Array.isArray(chunk) || !chunk.every((id) => typeof id === 'string')) throw corrupt(this.meta.tableName, row, 'ids should be a JSON list of strings');
      ids.push(...(chunk as string[]));
      if (index === rows.length - 1 && read.count('total') !== ids.length) throw corrupt(this.meta.tableName, row, `id set ${setId} should hold ${read.count('total')} ids, holds ${ids.length}`);
    }
    return ids;
  }

  /** Ids of the sets stored (named or not). */
  async listIdSets(): Promise<string[]> {
    const rows = await this.call('listIdSets', this.meta, undefined, async () => {
      const found: string[] = [];
      const pages = this.meta.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${ID_SET_PARTITION}`, select: ['RowKey'] } });
      for await (const row of pages) found.push(row.rowKey ?? '');
      return found;
    });
    return [...new Set(rows.map((rowKey) => rowKey.slice(0, rowKey.indexOf('_'))).filter((id) => ID_SET_ID.test(id)))];
  }

  /** When a set was started (from its id). */
  idSetCreatedAt(setId: string): Date {
    return new Date(parseInt(this.idSetId(setId).slice(0, 9), 36));
  }

  async deleteIdSet(setId: string): Promise<void> {
    const key = this.idSetId(setId);
    const rows = await this.call('deleteIdSet', this.meta, undefined, async () => {
      const found: string[] = [];
      const filter = odata`PartitionKey eq ${ID_SET_PARTITION} and RowKey ge ${`${key}_`} and RowKey lt ${`${key}\``}`;
      for await (const row of this.meta.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) found.push(row.rowKey ?? '');
      return found;
    });
    // Highest chunk first: a delete cut short leaves a set that reads as corrupt, never as a shorter one.
    for (const rowKey of rows.sort().reverse()) await this.deleteRow('deleteIdSet', this.meta, ID_SET_PARTITION, rowKey);
  }

  private idSetId(setId: string): string {
    if (!ID_SET_ID.test(setId)) throw new StateError('STATE_INVALID_ARGUMENT', `"${setId}" is not an id set id from newIdSetId`);
    return setId;
  }

  // ---- cycles ----

  /** Sortable (ascending = chronological), readable, unique: 20261128T210133.123Z-7f3a. */
  newCycleId(startedAt: Date): string {
    return `${cycleStamp(startedAt.getTime())}-${randomBytes(2).toString('hex')}`;
  }

  /** Refuses (STATE_CONFLICT) when a cycle with this id already exists. */
  async createCycle(c: CycleRecord): Promise<void> {
    const entity = this.checked(this.cycles, encodeCycle(c, this.requireCycleRowKey(c.id)));
    await this.call('createCycle', this.cycles, entity.rowKey, () => this.cycles.createEntity(entity), {
      409: `cycle ${c.id} already exists`,
    });
  }

  /** Replaces a cycle written by createCycle; STATE_NOT_FOUND when there is none. */
  async updateCycle(c: CycleRecord): Promise<void> {
    const entity = this.checked(this.cycles, encodeCycle(c, this.requireCycleRowKey(c.id)));
    try {
      await this.call('updateCycle', this.cycles, entity.rowKey, () =>
        this.cycles.updateEntity(entity, 'Replace', { etag: '*' }),
      );
    } catch (error) {
      if (isMissingRow(error)) {
        throw new StateError('STATE_NOT_FOUND', `cycle ${c.id} was never created`, this.details('updateCycle', this.cycles, entity.rowKey, error));
      }
      throw error;
    }
  }

  async getCycle(id: string): Promise<CycleRecord | null> {
    const rowKey = cycleRowKey(id);
    if (rowKey === null) return null; // not an id newCycleId makes, so no such row can exist
    const row = await this.getRow(this.cycles, CYCLE_PARTITION, rowKey);
    return row && decodeCycle(row, this.cycles.tableName);
  }

  /** The `limit` newest cycles, newest first; reads only those rows. */
  async listCycles(limit = 20): Promise<CycleRecord[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new StateError('STATE_INVALID_ARGUMENT', `listCycles limit must be an integer from 1 to 1000 (got ${limit})`);
    }
    const rows: Row[] = [];
    let continuationToken: string | undefined;
    // The service may return a short page with a continuation token, so ask again for what is missing.
    do {
      const page = await this.call('listCycles', this.cycles, undefined, async () => {
        const pages = this.cycles
          .listEntities({ queryOptions: { filter: odata`PartitionKey eq ${CYCLE_PARTITION}` } })
          .byPage({ maxPageSize: limit - rows.length, continuationToken });
        const { value } = await pages.next();
        return value as (Row[] & { continuationToken?: string }) | undefined;
      });
      if (!page) break;
      rows.push(...page.slice(0, limit - rows.length));
      continuationToken = page.continuationToken;
    } while (continuationToken && rows.length < limit);
    return rows.map((row) => decodeCycle(row, this.cycles.tableName));
  }

  // ---- meta ----

  async getMeta<T>(key: string): Promise<{ value: T; etag: string } | null> {
    const row = await this.getRow(this.meta, META_PARTITION, this.rowKey(key, 'meta key'));
    if (!row) return null;
    const reader = new RowReader(row, this.meta.tableName);
    return { value: reader.json('json') as T, etag: row.etag };
  }

  /**
   * etag: a string → replace only that version; null → create only if absent; undefined →
   * unconditional upsert. Returns the new etag; a lost condition is StateConflictError.
   */
  async putMeta<T>(key: string, value: T, etag?: string | null): Promise<string> {
    const json = JSON.stringify(value);
    if (json === undefined) {
      throw new StateError('STATE_INVALID_ARGUMENT', `meta "${key}" has no JSON form (undefined or a function)`);
    }
    const entity = this.checked(this.meta, { partitionKey: META_PARTITION, rowKey: this.rowKey(key, 'meta key'), json });
    const response = await this.call(
      'putMeta',
      this.meta,
      entity.rowKey,
      () =>
        etag === undefined
          ? this.meta.upsertEntity(entity, 'Replace')
          : etag === null
            ? this.meta.createEntity(entity)
            : this.meta.updateEntity(entity, 'Replace', { etag }),
      {
        404: `meta "${key}" was deleted since it was read`,
        409: `meta "${key}" already exists`,
        412: `meta "${key}" changed since it was read`,
      },
    );
    if (!response.etag) {
      throw new StateError('STATE_REQUEST_FAILED', `the service returned no etag for meta "${key}"`, this.details('putMeta', this.meta, entity.rowKey));
    }
    return response.etag;
  }

  /** A missing row is fine; with an etag, a row that changed since is StateConflictError. */
  async deleteMeta(key: string, etag?: string): Promise<void> {
    await this.deleteRow('deleteMeta', this.meta, META_PARTITION, this.rowKey(key, 'meta key'), etag);
  }

  // ---- plumbing ----

  private rowKey(id: string, what: string): string {
    if (typeof id !== 'string' || id === '') {
      throw new StateError('STATE_INVALID_ARGUMENT', `${what} must be a non-empty string`);
    }
    const key = escapeKey(id);
    if (key.length > MAX_KEY_LENGTH) {
      throw new StateError('STATE_TOO_LARGE', `${what} is ${key.length} characters once escaped; Table Storage keys hold ${MAX_KEY_LENGTH}`);
    }
    return key;
  }

  private requireCycleRowKey(id: string): string {
    const key = cycleRowKey(id);
    if (key === null) {
      throw new StateError('STATE_INVALID_ARGUMENT', `"${id}" is not a cycle id from newCycleId`, { table: this.cycles.tableName });
    }
    return key;
  }

  private checked<E extends Entity>(client: TableClient, entity: E): E {
    for (const [name, value] of Object.entries(entity)) {
      if (typeof value === 'string' && value.length > MAX_STRING_PROPERTY) {
        throw new StateError(
          'STATE_TOO_LARGE',
          `property ${name} of ${client.tableName}/${entity.rowKey} is ${value.length} UTF-16 units; Table Storage allows ${MAX_STRING_PROPERTY} (64 KiB)`,
          { table: client.tableName, partitionKey: entity.partitionKey, rowKey: entity.rowKey },
        );
      }
    }
    return entity;
  }

  private async getRow(client: TableClient, partitionKey: string, rowKey: string): Promise<Row | null> {
    try {
      return await this.call('get', client, rowKey, () => client.getEntity(partitionKey, rowKey));
    } catch (error) {
      if (isMissingRow(error)) return null;
      throw error;
    }
  }

  /** Every row of a partition; `linksOnly`: without the TeamViewer-id index rows. */
  private async listAll(client: TableClient, partitionKey: string, select?: string[], linksOnly = false): Promise<Row[]> {
    const filter = linksOnly
      ? odata`PartitionKey eq ${partitionKey} and (RowKey lt ${INDEX_FROM} or RowKey ge ${INDEX_TO})`
      : odata`PartitionKey eq ${partitionKey}`;
    return this.call('list', client, undefined, async () => {
      const rows: Row[] = [];
      for await (const row of client.listEntities({ queryOptions: { filter, ...(select ? { select } : {}) } })) {
        rows.push(row);
      }
      return rows;
    });
  }

  private async deleteRow(operation: string, client: TableClient, partitionKey: string, rowKey: string, etag?: string): Promise<void> {
    try {
      await this.call(operation, client, rowKey, () => client.deleteEntity(partitionKey, rowKey, etag ? { etag } : {}), {
        412: `${client.tableName}/${rowKey} changed since it was read`,
      });
    } catch (error) {
      if (isMissingRow(error)) return;
      throw error;
    }
  }

  /** Runs one request and turns whatever it throws into a StateError. */
  private async call<T>(
    operation: string,
    client: TableClient,
    rowKey: string | undefined,
    request: () => Promise<T>,
    conflicts: Partial<Record<404 | 409 | 412, string>> = {},
  ): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const details = this.details(operation, client, rowKey, error);
      const { status, serviceCode } = details;
      // A 404 is about the row only when the table itself is there.
      const conflict = status === 404 && serviceCode === 'TableNotFound' ? undefined : conflicts[status as 404 | 409 | 412];
      if (conflict) throw new StateConflictError(conflict, details);
      throw toStateError(error, details);
    }
  }

  private details(operation: string, client: TableClient, rowKey: string | undefined, error?: unknown): StateErrorDetails {
    const rest = isRestError(error) ? error : undefined;
    return {
      operation,
      host: this.host,
      table: client.tableName,
      rowKey,
      status: rest?.statusCode ?? (error instanceof StateError ? error.status : undefined),
      serviceCode: rest ? serviceCodeOf(rest) : error instanceof StateError ? error.serviceCode : undefined,
    };
  }
}

// ---- mapping SDK failures ----

/** The row is not there (as opposed to the whole table, which is a broken deployment). */
function isMissingRow(error: unknown): boolean {
  return error instanceof StateError && error.status === 404 && error.serviceCode !== 'TableNotFound';
}


// ---- rows ----

/** Splits ids into lists whose JSON fits one string property. */
function chunkIds(ids: readonly string[]): string[][] {
  const chunks: string[][] = [[]];
  let length = 2;
  for (const id of ids) {
    const size = JSON.stringify(id).length + 1;
    if (length + size > MAX_STRING_PROPERTY && chunks[chunks.length - 1].length > 0) {
      chunks.push([]);
      length = 2;
    }
    chunks[chunks.length - 1].push(id);
    length += size;
  }
  return chunks;
}

function corrupt(table: string, row: Row | Entity, problem: string): StateError {
  return new StateError('STATE_CORRUPT', `state row ${table}/${row.partitionKey}/${row.rowKey} is corrupt: ${problem}`, {
    table,
    partitionKey: row.partitionKey,
    rowKey: row.rowKey,
  });
}

/** Typed reads of one row; any mismatch is STATE_CORRUPT naming the row and the property. */
class RowReader {
  constructor(
    private readonly row: Row,
    private readonly table: string,
  ) {}

  private fail(name: string, expected: string): never {
    const actual = this.row[name] === undefined ? 'missing' : `a ${typeof this.row[name]}`;
    throw corrupt(this.table, this.row, `${name} should be ${expected}, is ${actual}`);
  }

  string(name: string): string {
    const value = this.row[name];
    return typeof value === 'string' ? value : this.fail(name, 'a string');
  }

  /** Table Storage does not keep null properties: absent reads as null. */
  optionalString(name: string): string | null {
    const value = this.row[name];
    return value === undefined || value === null ? null : typeof value === 'string' ? value : this.fail(name, 'a string');
  }

  oneOf<T extends string>(name: string, allowed: readonly string[]): T {
    const value = this.string(name);
    return allowed.includes(value) ? (value as T) : this.fail(name, `one of ${allowed.join(', ')}`);
  }

  boolean(name: string): boolean {
    const value = this.row[name];
    return typeof value === 'boolean' ? value : this.fail(name, 'a boolean');
  }

  count(name: string): number {
    const value = this.row[name];
    return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : this.fail(name, 'a non-negative integer');
  }

  json(name: string): unknown {
    const text = this.string(name);
    try {
      return JSON.parse(text);
    } catch {
      throw corrupt(this.table, this.row, `${name} is not JSON`);
    }
  }

  /** The id a row key was escaped from. */
  id(): string {
    try {
      return unescapeKey(this.row.rowKey ?? '');
    } catch {
      throw corrupt(this.table, this.row, 'the RowKey is not an escaped id');
    }
  }
}

function encodeLink(link: Link, rowKey: string): Entity {
  const entity: Entity = {
    partitionKey: LINK_PARTITION,
    rowKey,
    userName: link.userName,
    userPrincipalName: link.userPrincipalName,
    active: link.active,
    written: JSON.stringify(link.written),
    createdAt: link.createdAt,
    updatedAt: link.updatedAt,
  };
  if (link.teamViewerId !== null) entity.teamViewerId = link.teamViewerId;
  if (link.pending) entity.pending = link.pending;
  if (link.rematch) entity.rematch = true;
  return entity;
}

function decodeWritten(row: Row, table: string): Link['written'] {
  const written = new RowReader(row, table).json('written');
  const isWritten =
    typeof written === 'object' &&
    written !== null &&
    !Array.isArray(written) &&
    Object.values(written).every((v) => v === null || typeof v === 'string' || typeof v === 'boolean');
  if (!isWritten) throw corrupt(table, row, 'written should map attribute names to strings, booleans or null');
  return written as Link['written'];
}

function decodeLink(row: Row, table: string): Link {
  const read = new RowReader(row, table);
  const link: Link = {
    entraId: read.id(),
    teamViewerId: read.optionalString('teamViewerId'),
    userName: read.string('userName'),
    userPrincipalName: read.string('userPrincipalName'),
    written: decodeWritten(row, table),
    active: read.boolean('active'),
    createdAt: read.string('createdAt'),
    updatedAt: read.string('updatedAt'),
  };
  if (row.pending !== undefined) link.pending = read.oneOf<'create'>('pending', ['create']);
  if (row.rematch !== undefined && read.boolean('rematch')) link.rematch = true;
  return link;
}

/** ISO 8601 basic format with milliseconds: 20261128T210133.123Z. */
function cycleStamp(time: number): string {
  return new Date(time).toISOString().replace(/[-:]/g, '');
}

/** `<inverted ms>_<id>`, or null when `id` is not one newCycleId makes. */
function cycleRowKey(id: string): string | null {
  const m = CYCLE_ID.exec(id);
  if (!m) return null;
  const [year, month, day, hour, minute, second, ms] = m.slice(1, 8).map(Number) as number[];
  const time = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!, ms!);
  // Date.UTC rolls 2026-02-31 over into March; a real id never does.
  if (!Number.isFinite(time) || !id.startsWith(`${cycleStamp(time)}-`)) return null;
  return `${String(INVERTED_TIME_BASE - time).padStart(15, '0')}_${id}`;
}

function encodeCycle(c: CycleRecord, rowKey: string): Entity {
  const numbers: Record<string, number> = { imported: c.imported, planned: c.planned };
  for (const name of COUNT_NAMES) numbers[name] = c.counts[name];
  for (const [name, column] of GROUP_COUNT_COLUMNS) numbers[column] = c.counts.groups?.[name] ?? 0;
  for (const [name, value] of Object.entries(numbers)) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_INT32) {
      throw new StateError('STATE_INVALID_ARGUMENT', `cycle ${c.id}: ${name} must be an integer from 0 to ${MAX_INT32} (got ${value})`);
    }
  }
  const entity: Entity = {
    partitionKey: CYCLE_PARTITION,
    rowKey,
    kind: c.kind,
    dryRun: c.dryRun,
    trigger: c.trigger,
    startedAt: c.startedAt,
    result: c.result,
    ...numbers,
  };
  if (c.finishedAt !== null) entity.finishedAt = c.finishedAt;
  if (c.heartbeatAt) entity.heartbeatAt = c.heartbeatAt;
  if (c.done !== undefined) entity.done = c.done;
  if (c.phase) entity.phase = c.phase;
  if (c.configHash) entity.configHash = c.configHash;
  if (c.budgetReached) entity.budgetReached = true;
  if (c.continues) entity.continues = c.continues;
  if (c.failures && c.failures.length > 0) entity.failures = JSON.stringify(c.failures);
  if (c.driftRepairs && c.driftRepairs.length > 0) entity.driftRepairs = JSON.stringify(c.driftRepairs);
  if (c.groupFailures && c.groupFailures.length > 0) entity.groupFailures = JSON.stringify(c.groupFailures);
  if (c.groupWarnings && c.groupWarnings.length > 0) entity.groupWarnings = JSON.stringify(c.groupWarnings);
  if (c.error) {
    entity.errorCode = c.error.code;
    entity.errorMessage = c.error.message;
  }
  return entity;
}

function decodeCycle(row: Row, table: string): CycleRecord {
  const read = new RowReader(row, table);
  const rowKey = row.rowKey ?? '';
  const id = rowKey.slice(rowKey.indexOf('_') + 1);
  if (cycleRowKey(id) !== rowKey) throw corrupt(table, row, 'the RowKey is not <inverted time>_<cycle id>');
  const counts = emptyCounts();
  // Counts added after rows were first written read as 0 on older rows.
  for (const name of COUNT_NAMES) counts[name] = LATER_COUNTS.has(name) && row[name] === undefined ? 0 : read.count(name);
  for (const [name, column] of GROUP_COUNT_COLUMNS) counts.groups[name] = row[column] === undefined ? 0 : read.count(column);
  const cycle: CycleRecord = {
    id,
    kind: read.oneOf('kind', CYCLE_KINDS),
    dryRun: read.boolean('dryRun'),
    trigger: read.oneOf('trigger', TRIGGERS),
    startedAt: read.string('startedAt'),
    finishedAt: read.optionalString('finishedAt'),
    result: read.oneOf('result', CYCLE_RESULTS),
    counts,
    imported: read.count('imported'),
    planned: read.count('planned'),
  };
  if (row.errorCode !== undefined || row.errorMessage !== undefined) {
    cycle.error = { code: read.string('errorCode'), message: read.string('errorMessage') };
  }
  const heartbeatAt = read.optionalString('heartbeatAt');
  if (heartbeatAt !== null) cycle.heartbeatAt = heartbeatAt;
  if (row.done !== undefined) cycle.done = read.count('done');
  const phase = read.optionalString('phase');
  if (phase !== null) cycle.phase = phase;
  const configHash = read.optionalString('configHash');
  if (configHash !== null) cycle.configHash = configHash;
  if (row.budgetReached === true) cycle.budgetReached = true;
  const continues = read.optionalString('continues');
  if (continues !== null) cycle.continues = continues;
  const failures = jsonList<UserFailure>(row, table, 'failures');
  if (failures) cycle.failures = failures;
  const driftRepairs = jsonList<DriftRepair>(row, table, 'driftRepairs');
  if (driftRepairs) cycle.driftRepairs = driftRepairs;
  const groupFailures = jsonList<GroupFailure>(row, table, 'groupFailures');
  if (groupFailures) cycle.groupFailures = groupFailures;
  const groupWarnings = jsonList<string>(row, table, 'groupWarnings');
  if (groupWarnings) cycle.groupWarnings = groupWarnings;
  return cycle;
}

/** An optional property holding a JSON list; anything else there is corrupt. */
function jsonList<T>(row: Row, table: string, name: string): T[] | null {
  const text = new RowReader(row, table).optionalString(name);
  if (text === null) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) throw new Error('not a list');
    return parsed as T[];
  } catch {
    throw corrupt(table, row, `${name} is not a JSON list`);
  }
}
