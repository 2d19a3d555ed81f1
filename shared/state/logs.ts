/**
 * Provisioning logs: one row per user change, as Entra's provisioning logs, in Table Storage.
 *
 * Invariants:
 * - A record lives in `${prefix}Logs` with PartitionKey = its UTC day (`yyyymmdd`) and
 *   RowKey = `<10^15 - time ms, 15 digits>_<escapeKey(id)>`, so within a day the table's natural
 *   order is newest first, and a time bound is a RowKey range the service applies itself.
 * - Every day that has (or may have) rows has a row in `${prefix}LogDays` (PartitionKey 'day',
 *   RowKey the day). append writes the day row BEFORE the records, so a crash between the two
 *   leaves at worst an empty indexed day, never rows no index points at.
 * - Nothing here ever scans the whole table. Queries read the day index for the days in range, then
 *   only those partitions, with every filter (cycle, status, user, time) applied by the service and
 *   `$top` set to what is still missing: rows read = rows returned. enforceRetention reads the index
 *   rows of days older than the retention, then only those partitions, keys only, and deletes them;
 *   rows of days it keeps are never read.
 * - Retention removes a day's index row last, conditional on the etag it read, and only after a
 *   re-read of the partition found it empty. An append into that day meanwhile changes the etag
 *   (the index row is rewritten on every append), so the day stays indexed for the next run. The
 *   one window left — an append that rewrote the index before retention read it and then stalled
 *   until retention finished — needs records dated older than the retention, which cycles never
 *   write.
 * - Secrets are never stored: a modified property whose name looks like a password, secret, token
 *   or credential is dropped, and every stored text passes through redactText.
 * - Values are bounded, not refused: reason ≤ 1,000 characters, other texts ≤ 1,024, each modified
 *   value ≤ 1,000, the modifiedProperties JSON ≤ 16,000 (whole entries are dropped from the end and
 *   a `(truncated)` entry says how many). Only keys (the record id) are refused when too long: a
 *   truncated key could land two records on one row.
 * - append upserts, so a retried append (answer lost, SDK retry) rewrites the same rows instead of
 *   failing or duplicating them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { redactText, silentLogger, type Logger } from '../log';
import type { ActionReport } from '../domain/model';
import { isRestError, serviceCodeOf, StateConflictError, StateError, toStateError, type StateErrorDetails } from './errors';
import { escapeKey, MAX_KEY_LENGTH, unescapeKey } from './keys';
import { tableClient, tableEndpoint, type ClientTuning, type StorageTarget } from './target';

export const LOG_ACTIONS = [
  'create', 'update', 'disable', 'enable', 'link', 'skip', 'staged', 'unlink', 'fail',
  // User groups (GROUP_PROVISIONING=assigned): entraId is the Entra group, userPrincipalName its
  // TeamViewer name, teamViewerId the TeamViewer user group.
  'group-create', 'group-link', 'group-rename', 'members-add', 'members-remove', 'role-assign', 'group-delete', 'group-unlink', 'group-fail',
] as const;
export const LOG_STATUSES = ['success', 'failure', 'skipped', 'warning', 'staged'] as const;
export type ProvisioningLogAction = (typeof LOG_ACTIONS)[number];
export type ProvisioningLogStatus = (typeof LOG_STATUSES)[number];
export type ModifiedValue = string | boolean | null;

export interface ProvisioningLogRecord {
  /** Unique; newLogRecordId makes ones that sort chronologically. */
  id: string;
  cycleId: string;
  changeId: string;
  /** ISO 8601; decides the day partition. */
  time: string;
  action: ProvisioningLogAction;
  status: ProvisioningLogStatus;
  entraId: string;
  userPrincipalName: string;
  teamViewerId: string | null;
  modifiedProperties: Array<{ name: string; old: ModifiedValue; new: ModifiedValue }>;
  errorCode: string | null;
  reason: string | null;
  durationMs: number | null;
}

export interface ProvisioningLogQuery {
  /** A UPN (any case) or an Entra object id. */
  user?: string;
  cycleId?: string;
  status?: ProvisioningLogStatus;
  /** Default: now − retention. */
  since?: Date;
  /** Default: now. */
  until?: Date;
  /** Default 100, at most 1000. */
  limit?: number;
  /** From the previous page; opaque. */
  continuationToken?: string;
}

export interface ProvisioningLogPage {
  /** Newest first. */
  records: ProvisioningLogRecord[];
  /** Null when there is nothing more in range. */
  continuationToken: string | null;
}

export interface ProvisioningLogStoreOptions {
  /** Letters and digits, starting with a letter; default 'tvsync'. */
  tablePrefix?: string;
  /** LOG_RETENTION_DAYS: a whole number of days from 1 to 3650; default 30. */
  retentionDays?: number;
  logger?: Logger;
  tuning?: ClientTuning;
  /** The clock for default query bounds and retention (tests pin it). */
  now?: () => Date;
}

export const DEFAULT_LOG_RETENTION_DAYS = 30;
export const MAX_REASON_LENGTH = 1_000;
export const MAX_TEXT_LENGTH = 1_024;
export const MAX_VALUE_LENGTH = 1_000;
export const MAX_MODIFIED_PROPERTIES_JSON = 16_000;
export const TRUNCATION_MARK = '…[truncated]';
/** The name of the entry that stands for modified properties dropped for size. */
export const TRUNCATED_PROPERTY = '(truncated)';

const DAY_MS = 86_400_000;
const INVERTED_TIME_BASE = 10 ** 15;
const INDEX_PARTITION = 'day';
const BATCH_MAX_ACTIONS = 100;
/** The service takes 4 MiB per batch; the estimate below ignores the multipart headers, so leave room. */
const BATCH_MAX_BYTES = 2 * 1024 * 1024;
const KEY_PAGE = 1_000;
const MAX_LIMIT = 1_000;
const MAX_NAME_LENGTH = 200;
const MAX_INT32 = 2 ** 31 - 1;
const DAY = /^\d{8}$/;
/** Names of properties that must never be kept, whatever their value (defence in depth). */
const SECRET_NAME = /pass(word|phrase|wd)|pwd|secret|token|credential|api_?key|private_?key/i;
/** Times a 15-digit inverted key can hold: 1970 up to the year 9999. */
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

type Entity = { partitionKey: string; rowKey: string } & Record<string, unknown>;
type Row = TableEntityResult<Record<string, unknown>>;
type Position = { day: string; after: string | null };

/** Sortable (ascending = chronological), unique: 20261128T210133.123Z-7f3a09c1. */
export function newLogRecordId(time: Date): string {
  return `${time.toISOString().replace(/[-:]/g, '')}-${randomBytes(4).toString('hex')}`;
}

/**
 * The log record for one action of a cycle, or null for a planned (dry-run) action, which changed
 * nothing and so is not logged. A staged deactivation is logged as action 'staged'.
 */
export function logRecordFromAction(
  report: ActionReport,
  context: { cycleId: string; time: Date; durationMs?: number | null; changeId?: string },
): ProvisioningLogRecord | null {
  if (report.status === 'planned') return null;
  return {
    id: newLogRecordId(context.time),
    cycleId: context.cycleId,
    changeId: context.changeId ?? randomUUID(),
    time: context.time.toISOString(),
    action: report.status === 'staged' ? 'staged' : report.kind,
    status: report.status,
    entraId: report.entraId,
    userPrincipalName: report.userPrincipalName,
    teamViewerId: report.teamViewerId,
    modifiedProperties: report.changes.map((c) => ({ name: c.attribute, old: c.old, new: c.new })),
    errorCode: report.error?.code ?? null,
    reason: report.error?.message ?? report.reason ?? null,
    durationMs: context.durationMs ?? null,
  };
}

export class ProvisioningLogStore {
  private constructor(
    private readonly logs: TableClient,
    private readonly days: TableClient,
    private readonly host: string,
    readonly retentionDays: number,
    private readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  /** Connects and creates `${prefix}Logs` and `${prefix}LogDays` if they are missing. */
  static async open(target: StorageTarget, opts: ProvisioningLogStoreOptions = {}): Promise<ProvisioningLogStore> {
    const prefix = opts.tablePrefix ?? 'tvsync';
    if (!/^[A-Za-z][A-Za-z0-9]{0,55}$/.test(prefix)) {
      throw new StateError('STATE_CONFIG', `table prefix "${prefix}" must be 1-56 letters and digits, starting with a letter`);
    }
    const retentionDays = opts.retentionDays ?? DEFAULT_LOG_RETENTION_DAYS;
    if (!Number.isInteger(retentionDays) || retentionDays < 1 || retentionDays > 3650) {
      throw new StateError('STATE_CONFIG', `log retention must be a whole number of days from 1 to 3650 (got ${retentionDays})`);
    }
    const host = tableEndpoint(target).host;
    const logger = opts.logger ?? silentLogger;
    const store = new ProvisioningLogStore(
      tableClient(target, `${prefix}Logs`, opts.tuning),
      tableClient(target, `${prefix}LogDays`, opts.tuning),
      host,
      retentionDays,
      logger,
      opts.now ?? (() => new Date()),
    );
    // The SDK already treats 409 TableAlreadyExists as success.
    await Promise.all([store.logs, store.days].map((t) => store.call('open', t, undefined, () => t.createTable())));
    logger.debug('provisioning log store ready', { host, tablePrefix: prefix, retentionDays });
    return store;
  }

  /** Writes the records (every one is checked before anything is sent); an empty list sends nothing. */
  async append(records: ProvisioningLogRecord[]): Promise<void> {
    if (records.length === 0) return;
    const byDay = new Map<string, Entity[]>();
    const seen = new Set<string>();
    for (const record of records) {
      const entity = encodeRecord(record, this.logs.tableName);
      const where = `${entity.partitionKey}/${entity.rowKey}`;
      if (seen.has(where)) {
        throw new StateError('STATE_INVALID_ARGUMENT', `log record id ${record.id} appears twice in one append`, { table: this.logs.tableName });
      }
      seen.add(where);
      const list = byDay.get(entity.partitionKey) ?? [];
      list.push(entity);
      byDay.set(entity.partitionKey, list);
    }
    const stamp = this.clock().toISOString();
    for (const day of [...byDay.keys()].sort()) {
      // Index first: see the invariant at the top.
      const index = { partitionKey: INDEX_PARTITION, rowKey: day, lastAppendAt: stamp };
      await this.call('append', this.days, day, () => this.days.upsertEntity(index, 'Replace'));
      for (const chunk of batches(byDay.get(day)!)) {
        const actions: TransactionAction[] = chunk.map((entity) => ['upsert', entity, 'Replace']);
        await this.call('append', this.logs, undefined, () => this.logs.submitTransaction(actions), {}, day);
      }
    }
    this.logger.debug('provisioning log records written', { records: records.length, days: byDay.size });
  }

  /** Newest first, filtered by the service; pages with an opaque continuation token. */
  async query(q: ProvisioningLogQuery = {}): Promise<ProvisioningLogPage> {
    const limit = q.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new StateError('STATE_INVALID_ARGUMENT', `limit must be a whole number from 1 to ${MAX_LIMIT} (got ${limit})`);
    }
    const now = this.clock();
    const until = checkedDate(q.until ?? now, 'until');
    const since = checkedDate(q.since ?? new Date(now.getTime() - this.retentionDays * DAY_MS), 'since');
    if (since.getTime() > until.getTime()) {
      throw new StateError('STATE_INVALID_ARGUMENT', `since (${since.toISOString()}) is after until (${until.toISOString()})`);
    }
    // time ≤ until ⇔ RowKey ≥ inv(until); time ≥ since ⇔ inv(time) ≤ inv(since) ⇔ RowKey < inv(since) + 1.
    const fixed = [odata`RowKey ge ${invertedTime(until.getTime())}`];
    if (since.getTime() > 0) fixed.push(odata`RowKey lt ${invertedTime(since.getTime() - 1)}`);
    if (q.cycleId !== undefined) fixed.push(odata`cycleId eq ${nonEmpty(q.cycleId, 'cycleId')}`);
    if (q.status !== undefined) {
      if (!(LOG_STATUSES as readonly string[]).includes(q.status)) {
        throw new StateError('STATE_INVALID_ARGUMENT', `status must be one of ${LOG_STATUSES.join(', ')} (got ${JSON.stringify(q.status)})`);
      }
      fixed.push(odata`status eq ${q.status}`);
    }
    if (q.user !== undefined) {
      const user = nonEmpty(typeof q.user === 'string' ? q.user.trim() : q.user, 'user');
      const lower = user.toLowerCase();
      const alternatives = [odata`entraId eq ${user}`, odata`userPrincipalNameLower eq ${lower}`];
      // Graph spells object ids in lower case; accept one pasted in upper case too.
      if (lower !== user) alternatives.push(odata`entraId eq ${lower}`);
      fixed.push(`(${alternatives.join(' or ')})`);
    }
    const position = q.continuationToken === undefined ? null : decodeToken(q.continuationToken);
    const untilDay = dayOf(until.getTime());
    const topDay = position && position.day < untilDay ? position.day : untilDay;
    const days = (await this.indexedDays(dayOf(since.getTime()), topDay)).map((d) => d.day).reverse();

    const records: ProvisioningLogRecord[] = [];
    for (let i = 0; i < days.length; i++) {
      const day = days[i]!;
      const parts = [odata`PartitionKey eq ${day}`, ...fixed];
      if (position && position.day === day && position.after !== null) parts.push(odata`RowKey gt ${position.after}`);
      const filter = parts.join(' and ');
      let sdkToken: string | undefined;
      do {
        const page = await this.page(this.logs, filter, limit - records.length, sdkToken, undefined, 'query', day);
        const taken = page.rows.slice(0, limit - records.length);
        for (const row of taken) records.push(decodeRecord(row, this.logs.tableName));
        sdkToken = page.continuationToken;
        if (records.length >= limit) {
          const lastRowKey = taken[taken.length - 1]?.rowKey;
          const moreThisDay = Boolean(sdkToken) || page.rows.length > taken.length;
          const next: Position | null =
            moreThisDay && lastRowKey !== undefined
              ? { day, after: lastRowKey }
              : i + 1 < days.length
                ? { day: days[i + 1]!, after: null }
                : null;
          return { records, continuationToken: next && encodeToken(next) };
        }
      } while (sdkToken);
    }
    return { records, continuationToken: null };
  }

  /**
   * Deletes every day that ended more than `retentionDays` before `now` (so nothing younger than
   * the retention is ever deleted, and at most one extra day is kept). Reads only the index rows of
   * those days and the keys of their rows.
   */
  async enforceRetention(now?: Date): Promise<{ deletedDays: string[]; deletedRecords: number }> {
    const at = checkedDate(now ?? this.clock(), 'now');
    const firstKept = dayOf(at.getTime() - this.retentionDays * DAY_MS);
    const expired = await this.indexedDays(null, firstKept, true);
    const deletedDays: string[] = [];
    let deletedRecords = 0;
    for (const { day, etag } of expired) {
      deletedRecords += await this.deleteDayRows(day);
      try {
        await this.call('enforceRetention', this.days, day, () => this.days.deleteEntity(INDEX_PARTITION, day, { etag }), {
          412: `day ${day} received records while it was being deleted`,
        });
        deletedDays.push(day);
      } catch (error) {
        if (error instanceof StateError && error.status === 404 && error.serviceCode !== 'TableNotFound') {
          deletedDays.push(day); // another instance finished it
        } else if (error instanceof StateConflictError) {
          this.logger.warn('a day being deleted for retention got new records; it is kept for the next run', { day });
        } else {
          throw error;
        }
      }
    }
    if (deletedDays.length > 0) {
      this.logger.info('provisioning log retention applied', { deletedDays: deletedDays.length, deletedRecords, retentionDays: this.retentionDays });
    }
    return { deletedDays, deletedRecords };
  }

  // ---- plumbing ----

  /**
   * Index rows of days in [from, to] (from null = the oldest), ascending; with `before`, `to` is
   * excluded.
   */
  private async indexedDays(from: string | null, to: string, before = false): Promise<Array<{ day: string; etag: string }>> {
    const parts = [odata`PartitionKey eq ${INDEX_PARTITION}`, before ? odata`RowKey lt ${to}` : odata`RowKey le ${to}`];
    if (from !== null) parts.push(odata`RowKey ge ${from}`);
    const rows: Row[] = [];
    let token: string | undefined;
    do {
      const page = await this.page(this.days, parts.join(' and '), KEY_PAGE, token, undefined, 'readDayIndex');
      rows.push(...page.rows);
      token = page.continuationToken;
    } while (token);
    const days = rows.map((row) => {
      const day = row.rowKey ?? '';
      if (!DAY.test(day)) throw corrupt(this.days.tableName, row, 'the RowKey is not a day (yyyymmdd)');
      return { day, etag: row.etag };
    });
    return days.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  }

  /** Deletes a day's rows, reading keys only; ends with a read that found the partition empty. */
  private async deleteDayRows(day: string): Promise<number> {
    const filter = odata`PartitionKey eq ${day}`;
    let deleted = 0;
    for (;;) {
      // Read the first keys left, following empty pages the service may return.
      let keys: Row[] = [];
      let token: string | undefined;
      do {
        const page = await this.page(this.logs, filter, KEY_PAGE, token, ['PartitionKey', 'RowKey'], 'enforceRetention', day);
        keys = page.rows;
        token = page.continuationToken;
      } while (keys.length === 0 && token);
      if (keys.length === 0) return deleted;
      for (let i = 0; i < keys.length; i += BATCH_MAX_ACTIONS) {
        deleted += await this.deleteKeys(day, keys.slice(i, i + BATCH_MAX_ACTIONS).map((row) => row.rowKey ?? ''));
      }
    }
  }

  private async deleteKeys(day: string, rowKeys: string[]): Promise<number> {
    const actions: TransactionAction[] = rowKeys.map((rowKey) => ['delete', { partitionKey: day, rowKey }]);
    try {
      await this.call('enforceRetention', this.logs, undefined, () => this.logs.submitTransaction(actions), {}, day);
      return rowKeys.length;
    } catch (error) {
      // One row already gone (another instance at work) fails the whole batch: go one by one.
      if (!(error instanceof StateError && error.status === 404 && error.serviceCode !== 'TableNotFound')) throw error;
    }
    let deleted = 0;
    for (const rowKey of rowKeys) {
      try {
        await this.call('enforceRetention', this.logs, rowKey, () => this.logs.deleteEntity(day, rowKey), {}, day);
        deleted++;
      } catch (error) {
        if (!(error instanceof StateError && error.status === 404 && error.serviceCode !== 'TableNotFound')) throw error;
      }
    }
    return deleted;
  }

  private async page(
    client: TableClient,
    filter: string,
    top: number,
    continuationToken: string | undefined,
    select: string[] | undefined,
    operation: string,
    partitionKey?: string,
  ): Promise<{ rows: Row[]; continuationToken: string | undefined }> {
    return this.call(
      operation,
      client,
      undefined,
      async () => {
        const pages = client
          .listEntities({ queryOptions: select ? { filter, select } : { filter } })
          .byPage({ maxPageSize: top, continuationToken });
        const { value } = await pages.next();
        const rows = (value ?? []) as Row[] & { continuationToken?: string };
        return { rows: [...rows], continuationToken: rows.continuationToken || undefined };
      },
      {},
      partitionKey,
    );
  }

  /** Runs one request and turns whatever it throws into a StateError (the same mapping as StateStore). */
  private async call<T>(
    operation: string,
    client: TableClient,
    rowKey: string | undefined,
    request: () => Promise<T>,
    conflicts: Partial<Record<409 | 412, string>> = {},
    partitionKey?: string,
  ): Promise<T> {
    try {
      return await request();
    } catch (error) {
      const rest = isRestError(error) ? error : undefined;
      const details: StateErrorDetails = {
        operation,
        host: this.host,
        table: client.tableName,
        partitionKey,
        rowKey,
        status: rest?.statusCode ?? (error instanceof StateError ? error.status : undefined),
        serviceCode: rest ? serviceCodeOf(rest) : error instanceof StateError ? error.serviceCode : undefined,
      };
      const conflict = conflicts[details.status as 409 | 412];
      if (conflict) throw new StateConflictError(conflict, details);
      throw toStateError(error, details);
    }
  }
}

// ---- keys, days and tokens ----

/** `yyyymmdd` of a time, in UTC. */
export function dayOf(time: number): string {
  return new Date(time).toISOString().slice(0, 10).replace(/-/g, '');
}

function invertedTime(time: number): string {
  return String(INVERTED_TIME_BASE - time).padStart(15, '0');
}

function rowKeyFor(time: number, id: string): string {
  return `${invertedTime(time)}_${escapeKey(id)}`;
}

function encodeToken(position: Position): string {
  return Buffer.from(JSON.stringify({ v: 1, d: position.day, k: position.after }), 'utf8').toString('base64url');
}

function decodeToken(token: string): Position {
  const refuse = () =>
    new StateError('STATE_INVALID_ARGUMENT', 'the continuation token is not one this log store issued; start again without it');
  if (typeof token !== 'string' || token.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(token)) throw refuse();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  const p = parsed as { v?: unknown; d?: unknown; k?: unknown };
  if (typeof parsed !== 'object' || parsed === null || p.v !== 1 || typeof p.d !== 'string' || !DAY.test(p.d)) throw refuse();
  if (p.k !== null && (typeof p.k !== 'string' || !/^\d{15}_/.test(p.k))) throw refuse();
  return { day: p.d, after: p.k };
}

function checkedDate(value: Date, what: string): Date {
  if (!(value instanceof Date) || !Number.isFinite(value.getTime()) || value.getTime() < 0 || value.getTime() > MAX_TIME) {
    throw new StateError('STATE_INVALID_ARGUMENT', `${what} must be a valid date between 1970 and 9999`);
  }
  return value;
}

function nonEmpty(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new StateError('STATE_INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return value;
}

/** Batches of at most 100 actions and about BATCH_MAX_BYTES of JSON. */
function batches(entities: Entity[]): Entity[][] {
  const out: Entity[][] = [];
  let current: Entity[] = [];
  let bytes = 0;
  for (const entity of entities) {
    const size = Buffer.byteLength(JSON.stringify(entity), 'utf8');
    if (current.length > 0 && (current.length === BATCH_MAX_ACTIONS || bytes + size > BATCH_MAX_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entity);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

// ---- bounding values ----

/** At most `max` UTF-16 units, the cut marked; never splits a surrogate pair. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - TRUNCATION_MARK.length);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return text.slice(0, end) + TRUNCATION_MARK;
}

function storedText(value: string, max: number): string {
  return truncateText(redactText(value), max);
}

function storedValue(value: ModifiedValue): ModifiedValue {
  return typeof value === 'string' ? storedText(value, MAX_VALUE_LENGTH) : value;
}

/** Drops secret-looking properties, bounds each value, then drops entries from the end to fit. */
function storedProperties(properties: ProvisioningLogRecord['modifiedProperties']): string {
  const kept = properties
    .filter((p) => !SECRET_NAME.test(p.name))
    .map((p) => ({ name: storedText(p.name, MAX_NAME_LENGTH), old: storedValue(p.old), new: storedValue(p.new) }));
  const json = JSON.stringify(kept);
  if (json.length <= MAX_MODIFIED_PROPERTIES_JSON) return json;
  // `[a,b,...]` is 2 + Σ|entry| + commas; keep the longest prefix that leaves room for the marker.
  const marker = (dropped: number) =>
    JSON.stringify({ name: TRUNCATED_PROPERTY, old: null, new: `${dropped} more modified properties not kept (size limit)` });
  const sizes = kept.map((p) => JSON.stringify(p).length);
  let n = 0;
  let length = 2 + marker(kept.length).length;
  while (n < kept.length && length + sizes[n]! + 1 <= MAX_MODIFIED_PROPERTIES_JSON) length += sizes[n++]! + 1;
  return `[${[...kept.slice(0, n).map((p) => JSON.stringify(p)), marker(kept.length - n)].join(',')}]`;
}

// ---- rows ----

function invalid(message: string): StateError {
  return new StateError('STATE_INVALID_ARGUMENT', message);
}

function isModifiedValue(value: unknown): value is ModifiedValue {
  return value === null || typeof value === 'string' || typeof value === 'boolean';
}

function encodeRecord(record: ProvisioningLogRecord, table: string): Entity {
  if (typeof record !== 'object' || record === null) throw invalid('a log record must be an object');
  const id = nonEmpty(record.id, 'log record id');
  const time = typeof record.time === 'string' ? Date.parse(record.time) : NaN;
  if (!Number.isFinite(time) || time < 0 || time > MAX_TIME) {
    throw invalid(`log record ${id}: time must be an ISO date between 1970 and 9999 (got ${JSON.stringify(record.time)})`);
  }
  const rowKey = rowKeyFor(time, id);
  if (rowKey.length > MAX_KEY_LENGTH) {
    throw new StateError('STATE_TOO_LARGE', `log record id is ${escapeKey(id).length} characters once escaped; at most ${MAX_KEY_LENGTH - 16} fit in a key`, { table });
  }
  if (!(LOG_ACTIONS as readonly string[]).includes(record.action)) {
    throw invalid(`log record ${id}: action must be one of ${LOG_ACTIONS.join(', ')} (got ${JSON.stringify(record.action)})`);
  }
  if (!(LOG_STATUSES as readonly string[]).includes(record.status)) {
    throw invalid(`log record ${id}: status must be one of ${LOG_STATUSES.join(', ')} (got ${JSON.stringify(record.status)})`);
  }
  for (const name of ['cycleId', 'changeId', 'entraId', 'userPrincipalName'] as const) {
    if (typeof record[name] !== 'string') throw invalid(`log record ${id}: ${name} must be a string`);
  }
  for (const name of ['teamViewerId', 'errorCode', 'reason'] as const) {
    if (record[name] !== null && typeof record[name] !== 'string') throw invalid(`log record ${id}: ${name} must be a string or null`);
  }
  const properties = record.modifiedProperties;
  if (!Array.isArray(properties) || !properties.every((p) => typeof p?.name === 'string' && isModifiedValue(p.old) && isModifiedValue(p.new))) {
    throw invalid(`log record ${id}: modifiedProperties must be a list of { name, old, new } with string, boolean or null values`);
  }
  const duration = record.durationMs;
  if (duration !== null && (typeof duration !== 'number' || !Number.isFinite(duration) || duration < 0)) {
    throw invalid(`log record ${id}: durationMs must be a non-negative number or null`);
  }

  const upn = storedText(record.userPrincipalName, MAX_TEXT_LENGTH);
  const entity: Entity = {
    partitionKey: dayOf(time),
    rowKey,
    cycleId: storedText(record.cycleId, MAX_TEXT_LENGTH),
    changeId: storedText(record.changeId, MAX_TEXT_LENGTH),
    time: new Date(time).toISOString(),
    action: record.action,
    status: record.status,
    entraId: storedText(record.entraId, MAX_TEXT_LENGTH),
    userPrincipalName: upn,
    userPrincipalNameLower: upn.toLowerCase(),
    modifiedProperties: storedProperties(properties),
  };
  if (record.teamViewerId !== null) entity.teamViewerId = storedText(record.teamViewerId, MAX_TEXT_LENGTH);
  if (record.errorCode !== null) entity.errorCode = storedText(record.errorCode, MAX_TEXT_LENGTH);
  if (record.reason !== null) entity.reason = storedText(record.reason, MAX_REASON_LENGTH);
  if (duration !== null) entity.durationMs = Math.min(Math.round(duration), MAX_INT32);
  return entity;
}

function corrupt(table: string, row: Row, problem: string): StateError {
  return new StateError('STATE_CORRUPT', `log row ${table}/${row.partitionKey}/${row.rowKey} is corrupt: ${problem}`, {
    table,
    partitionKey: row.partitionKey,
    rowKey: row.rowKey,
  });
}

function decodeRecord(row: Row, table: string): ProvisioningLogRecord {
  const fail = (problem: string): never => {
    throw corrupt(table, row, problem);
  };
  const string = (name: string): string => {
    const value = row[name];
    return typeof value === 'string' ? value : fail(`${name} should be a string`);
  };
  // Table Storage does not keep null properties: absent reads as null.
  const optional = (name: string): string | null => (row[name] === undefined || row[name] === null ? null : string(name));
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T => {
    const value = string(name);
    return (allowed as readonly string[]).includes(value) ? (value as T) : fail(`${name} should be one of ${allowed.join(', ')}`);
  };

  const time = Date.parse(string('time'));
  const rowKey = row.rowKey ?? '';
  let id = '';
  try {
    id = unescapeKey(rowKey.slice(16));
  } catch {
    fail('the RowKey is not <inverted time>_<escaped id>');
  }
  if (!Number.isFinite(time) || rowKeyFor(time, id) !== rowKey || dayOf(time) !== row.partitionKey) {
    fail('the keys do not match the time (PartitionKey = day, RowKey = <inverted time>_<id>)');
  }
  let properties: unknown;
  try {
    properties = JSON.parse(string('modifiedProperties'));
  } catch {
    fail('modifiedProperties is not JSON');
  }
  const isList =
    Array.isArray(properties) &&
    properties.every((p: { name?: unknown; old?: unknown; new?: unknown }) => typeof p?.name === 'string' && isModifiedValue(p.old) && isModifiedValue(p.new));
  if (!isList) fail('modifiedProperties should be a list of { name, old, new }');
  const duration = row.durationMs;
  if (duration !== undefined && duration !== null && (typeof duration !== 'number' || duration < 0)) fail('durationMs should be a non-negative number');

  return {
    id,
    cycleId: string('cycleId'),
    changeId: string('changeId'),
    time: string('time'),
    action: oneOf('action', LOG_ACTIONS),
    status: oneOf('status', LOG_STATUSES),
    entraId: string('entraId'),
    userPrincipalName: string('userPrincipalName'),
    teamViewerId: optional('teamViewerId'),
    modifiedProperties: properties as ProvisioningLogRecord['modifiedProperties'],
    errorCode: optional('errorCode'),
    reason: optional('reason'),
    durationMs: typeof duration === 'number' ? duration : null,
  };
}

// ---- mapping SDK failures (as StateStore does) ----

