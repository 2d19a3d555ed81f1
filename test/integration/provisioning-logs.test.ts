import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSecret } from '../../shared/log';
import { StateError } from '../../shared/state/errors';
import {
  MAX_MODIFIED_PROPERTIES_JSON,
  MAX_REASON_LENGTH,
  ProvisioningLogStore,
  TRUNCATED_PROPERTY,
  TRUNCATION_MARK,
  logRecordFromAction,
  newLogRecordId,
  type ProvisioningLogQuery,
  type ProvisioningLogRecord,
  type ProvisioningLogStoreOptions,
} from '../../shared/state/logs';
import { tableClient, type ClientTuning, type PipelinePolicy, type StorageTarget } from '../../shared/state/target';
import { startAzurite, type Azurite } from '../support/azurite';

const FAST: ClientTuning = { retry: { maxRetries: 1, retryDelayInMs: 10, maxRetryDelayInMs: 20 }, requestTimeoutMs: 5_000 };
const NOW = new Date('2026-02-09T12:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let azurite: Azurite;
let target: StorageTarget;
let tables = 0;

beforeAll(async () => {
  azurite = await startAzurite();
  target = { kind: 'connectionString', connectionString: azurite.connectionString };
});

afterAll(async () => {
  await azurite?.stop();
});

type Traffic = PipelinePolicy & {
  /** Requests on the Logs table (not LogDays): method and decoded query. */
  logRequests: Array<{ method: string; query: string }>;
  /** Entity rows received from GETs on the Logs table. */
  logRowsRead: number;
  /** Entity rows received from GETs on the LogDays table. */
  indexRowsRead: number;
  batches: number;
  reset(): void;
};

/** Watches what goes over the wire: which log partitions are read, and how many rows come back. */
function traffic(prefix: string): Traffic {
  const t: Traffic = {
    name: 'traffic',
    logRequests: [],
    logRowsRead: 0,
    indexRowsRead: 0,
    batches: 0,
    reset() {
      t.logRequests = [];
      t.logRowsRead = 0;
      t.indexRowsRead = 0;
      t.batches = 0;
    },
    async sendRequest(request, next) {
      const response = await next(request);
      const url = new URL(request.url);
      const table = /\/([A-Za-z0-9]+)(\(|$)/.exec(url.pathname.replace(/^\/devstoreaccount1/, ''))?.[1];
      if (url.pathname.endsWith('$batch')) t.batches++;
      const rows = () => (request.method === 'GET' && response.bodyAsText ? ((JSON.parse(response.bodyAsText) as { value?: unknown[] }).value?.length ?? 1) : 0);
      if (table === `${prefix}Logs`) {
        t.logRequests.push({ method: request.method, query: decodeURIComponent(url.search) });
        t.logRowsRead += rows();
      } else if (table === `${prefix}LogDays`) {
        t.indexRowsRead += rows();
      }
      return response;
    },
  };
  return t;
}

/** Each test gets its own tables, so tests cannot see each other's rows. */
async function freshStore(opts: ProvisioningLogStoreOptions = {}): Promise<{ store: ProvisioningLogStore; prefix: string; wire: Traffic }> {
  const prefix = opts.tablePrefix ?? `logs${++tables}`;
  const wire = traffic(prefix);
  const store = await ProvisioningLogStore.open(target, {
    tablePrefix: prefix,
    now: () => NOW,
    ...opts,
    tuning: { ...FAST, ...opts.tuning, policies: [wire, ...(opts.tuning?.policies ?? [])] },
  });
  wire.reset();
  return { store, prefix, wire };
}

let serial = 0;
function record(time: Date, overrides: Partial<ProvisioningLogRecord> = {}): ProvisioningLogRecord {
  serial++;
  return {
    id: newLogRecordId(time),
    cycleId: '20260209T110000.000Z-aaaa',
    changeId: `change-${serial}`,
    time: time.toISOString(),
    action: 'update',
    status: 'success',
    entraId: `6f1c2b7e-0000-4000-8000-${String(serial).padStart(12, '0')}`,
    userPrincipalName: `user${serial}@contoso.example`,
    teamViewerId: `u${serial}`,
    modifiedProperties: [{ name: 'displayName', old: 'Ada', new: 'Ada Lovelace' }],
    errorCode: null,
    reason: null,
    durationMs: 42,
    ...overrides,
  };
}

/** Follows continuation tokens to the end; returns every page. */
async function allPages(store: ProvisioningLogStore, q: ProvisioningLogQuery): Promise<ProvisioningLogRecord[][]> {
  const pages: ProvisioningLogRecord[][] = [];
  let continuationToken: string | undefined;
  do {
    const page = await store.query({ ...q, continuationToken });
    pages.push(page.records);
    continuationToken = page.continuationToken ?? undefined;
    expect(pages.length).toBeLessThan(100);
  } while (continuationToken);
  return pages;
}

const newestFirst = (records: ProvisioningLogRecord[]) => [...records].sort((a, b) => Date.parse(b.time) - Date.parse(a.time));

async function rejection(promise: Promise<unknown>): Promise<StateError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StateError);
  return error as StateError;
}

describe('append and query', () => {
  it('When records are appended, then query returns them exactly, newest first', async () => {
    const { store } = await freshStore();
    const records = [
      record(new Date(NOW.getTime() - 3 * HOUR)),
      record(new Date(NOW.getTime() - 1 * HOUR), {
        action: 'create',
        teamViewerId: null,
        modifiedProperties: [
          { name: 'active', old: null, new: true },
          { name: 'email', old: null, new: null },
        ],
        durationMs: null,
      }),
      record(new Date(NOW.getTime() - 2 * HOUR), {
        id: 'odd/id#with?%chars',
        action: 'fail',
        status: 'failure',
        errorCode: 'TEAMVIEWER_CONFLICT',
        reason: 'userName is taken by another TeamViewer user',
        modifiedProperties: [],
      }),
    ];
    await store.append(records);

    const page = await store.query();
    expect(page.records).toEqual(newestFirst(records));
    expect(page.continuationToken).toBeNull();
  });

  it('When the same records are appended twice (a retried write), then each is stored once', async () => {
    const { store } = await freshStore();
    const records = [record(new Date(NOW.getTime() - HOUR)), record(new Date(NOW.getTime() - 2 * HOUR))];
    await store.append(records);
    await store.append(records);
    expect((await store.query()).records).toEqual(newestFirst(records));
  });

  it('When a cycle action report is turned into a record, then it round-trips; a dry-run action is not logged', async () => {
    const { store } = await freshStore();
    const time = new Date(NOW.getTime() - HOUR);
    const report = {
      kind: 'disable' as const,
      status: 'staged' as const,
      entraId: 'e-1',
      userPrincipalName: 'Grace@Contoso.example',
      teamViewerId: 'u9',
      changes: [{ attribute: 'active', old: true, new: false }],
      reason: 'held back by the deactivation threshold',
    };
    const made = logRecordFromAction(report, { cycleId: 'c-1', time, durationMs: 3 })!;
    expect(made).toMatchObject({ action: 'staged', status: 'staged', cycleId: 'c-1', time: time.toISOString(), durationMs: 3 });
    expect(made.modifiedProperties).toEqual([{ name: 'active', old: true, new: false }]);
    expect(logRecordFromAction({ ...report, status: 'planned' }, { cycleId: 'c-1', time })).toBeNull();
    await store.append([made]);
    expect((await store.query({ user: 'grace@contoso.example' })).records).toEqual([made]);
  });

  it('When the day has records in several partitions, then query reads only days in range and returns newest first', async () => {
    const { store, wire } = await freshStore();
    const records = [0, 1, 2, 3, 5].flatMap((days) => [record(new Date(NOW.getTime() - days * DAY - HOUR)), record(new Date(NOW.getTime() - days * DAY - 2 * HOUR))]);
    await store.append(records.slice().reverse());
    wire.reset();

    const { records: got } = await store.query({ since: new Date(NOW.getTime() - 2 * DAY - 12 * HOUR), until: new Date(NOW.getTime() - DAY) });
    // 1 day back (−1 h is before until) and 2 days back; today, day 3 and day 5 are out of range.
    expect(got).toEqual(newestFirst(records).filter((r) => {
      const t = Date.parse(r.time);
      return t <= NOW.getTime() - DAY && t >= NOW.getTime() - 2 * DAY - 12 * HOUR;
    }));
    expect(got).toHaveLength(4);
    expect(wire.logRowsRead).toBe(4);
    const partitions = wire.logRequests.map((r) => /PartitionKey eq '(\d{8})'/.exec(r.query)?.[1]);
    expect(partitions).toEqual(['20260208', '20260207']);
  });
});

describe('filters', () => {
  async function seeded() {
    const ctx = await freshStore();
    const t = (hours: number) => new Date(NOW.getTime() - hours * HOUR);
    const ada = { entraId: '0a1b2c3d-1111-4111-8111-000000000001', userPrincipalName: "Ada.O'Brien@Contoso.example" };
    const bob = { entraId: '0a1b2c3d-2222-4222-8222-000000000002', userPrincipalName: 'bob@contoso.example' };
    const records = {
      adaCreate: record(t(30), { ...ada, cycleId: 'cycle-1', action: 'create' }),
      bobFail: record(t(29), { ...bob, cycleId: 'cycle-1', action: 'fail', status: 'failure', errorCode: 'TEAMVIEWER_CONFLICT', reason: 'taken' }),
      adaUpdate: record(t(5), { ...ada, cycleId: 'cycle-2' }),
      bobSkip: record(t(4), { ...bob, cycleId: 'cycle-2', action: 'skip', status: 'skipped', reason: 'out of scope' }),
      adaFail: record(t(1), { ...ada, cycleId: 'cycle-3', action: 'fail', status: 'failure', errorCode: 'TEAMVIEWER_THROTTLED', reason: 'try later' }),
    };
    await ctx.store.append(Object.values(records));
    ctx.wire.reset();
    return { ...ctx, records, ada, bob, t };
  }

  it('When filtering by user, then a UPN in any case or the object id finds exactly that user', async () => {
    const { store, records, ada, wire } = await seeded();
    const expected = [records.adaFail, records.adaUpdate, records.adaCreate];
    expect((await store.query({ user: "ada.o'brien@contoso.example" })).records).toEqual(expected);
    expect((await store.query({ user: "ADA.O'BRIEN@CONTOSO.EXAMPLE" })).records).toEqual(expected);
    expect((await store.query({ user: ada.entraId })).records).toEqual(expected);
    expect((await store.query({ user: ada.entraId.toUpperCase() })).records).toEqual(expected);
    expect((await store.query({ user: 'nobody@contoso.example' })).records).toEqual([]);
    // An OData injection attempt is a value, not a clause.
    expect((await store.query({ user: "x' or PartitionKey ne '" })).records).toEqual([]);
    // The service filtered: rows read are the rows returned.
    expect(wire.logRowsRead).toBe(12);
  });

  it('When filtering by cycle and status, then only matching records come back, and only they are read', async () => {
    const { store, records, wire } = await seeded();
    expect((await store.query({ cycleId: 'cycle-1' })).records).toEqual([records.bobFail, records.adaCreate]);
    expect((await store.query({ status: 'failure' })).records).toEqual([records.adaFail, records.bobFail]);
    expect((await store.query({ status: 'failure', cycleId: 'cycle-3' })).records).toEqual([records.adaFail]);
    expect((await store.query({ status: 'skipped', user: 'BOB@contoso.example' })).records).toEqual([records.bobSkip]);
    expect(wire.logRowsRead).toBe(2 + 2 + 1 + 1);
  });

  it('When filtering by time, then since and until are inclusive bounds, and the default is the retention window', async () => {
    const { store, records, t } = await seeded();
    expect((await store.query({ since: t(5) })).records).toEqual([records.adaFail, records.bobSkip, records.adaUpdate]);
    expect((await store.query({ since: t(29), until: t(4) })).records).toEqual([records.bobSkip, records.adaUpdate, records.bobFail]);
    expect((await store.query({ until: new Date(t(29).getTime() - 1) })).records).toEqual([records.adaCreate]);

    const old = record(new Date(NOW.getTime() - 31 * DAY));
    await store.append([old]);
    expect((await store.query()).records).not.toContainEqual(old);
    expect((await store.query({ since: new Date(NOW.getTime() - 40 * DAY), cycleId: old.cycleId })).records).toEqual([old]);
  });

  it('When a query is malformed, then it is refused with STATE_INVALID_ARGUMENT before anything is read', async () => {
    const { store, wire } = await seeded();
    for (const q of [
      { limit: 0 },
      { limit: 1001 },
      { limit: 2.5 },
      { status: 'planned' as never },
      { since: NOW, until: new Date(NOW.getTime() - 1) },
      { since: new Date('nope') },
      { user: '' },
      { continuationToken: 'not a token' },
      { continuationToken: Buffer.from('{"v":1,"d":"x"}').toString('base64url') },
    ]) {
      expect((await rejection(store.query(q))).code, JSON.stringify(q)).toBe('STATE_INVALID_ARGUMENT');
    }
    expect(wire.logRequests).toEqual([]);
    expect(wire.indexRowsRead).toBe(0);
  });
});

describe('paging', () => {
  it('When records span several days and pages, then following the token returns each record once, newest first', async () => {
    const { store, wire } = await freshStore();
    // 3 days × 7 records, plus a failure every third record.
    const records = [0, 1, 2].flatMap((d) =>
      Array.from({ length: 7 }, (_, i) => record(new Date(NOW.getTime() - d * DAY - (i + 1) * HOUR), i % 3 === 0 ? { status: 'failure', action: 'fail' } : {})),
    );
    await store.append(records);
    wire.reset();

    const pages = await allPages(store, { limit: 5 });
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 1]);
    expect(pages.flat()).toEqual(newestFirst(records));
    // Never more rows read than returned.
    expect(wire.logRowsRead).toBe(21);

    wire.reset();
    const failures = await allPages(store, { limit: 2, status: 'failure' });
    expect(failures.flat()).toEqual(newestFirst(records).filter((r) => r.status === 'failure'));
    expect(failures.flat()).toHaveLength(9);
    expect(wire.logRowsRead).toBe(9);
  });

  it('When a page ends exactly at the last record in range, then there is no further token', async () => {
    const { store } = await freshStore();
    const records = [record(new Date(NOW.getTime() - HOUR)), record(new Date(NOW.getTime() - DAY - HOUR))];
    await store.append(records);
    const page = await store.query({ limit: 2 });
    expect(page.records).toHaveLength(2);
    expect(page.continuationToken).toBeNull();
  });

  it('When newer records arrive between pages, then the next page continues where the last stopped', async () => {
    const { store } = await freshStore();
    const first = Array.from({ length: 4 }, (_, i) => record(new Date(NOW.getTime() - (i + 2) * HOUR)));
    await store.append(first);
    const page1 = await store.query({ limit: 2 });
    await store.append([record(new Date(NOW.getTime() - HOUR))]);
    const page2 = await store.query({ limit: 2, continuationToken: page1.continuationToken! });
    expect([...page1.records, ...page2.records]).toEqual(newestFirst(first));
  });
});

describe('retention', () => {
  it('When 40 days are kept with a 30-day retention, then exactly the 9 expired days go, and no kept row is read', async () => {
    const { store, wire } = await freshStore({ retentionDays: 30 });
    // Days 2026-01-01 .. 2026-02-09, 3 records each; now is 2026-02-09T12:00Z.
    const days = Array.from({ length: 40 }, (_, i) => new Date(Date.UTC(2026, 0, 1 + i, 6)));
    const records = days.flatMap((d) => [0, 1, 2].map((k) => record(new Date(d.getTime() + k * HOUR))));
    await store.append(records);
    wire.reset();

    const result = await store.enforceRetention(NOW);
    const expired = ['20260101', '20260102', '20260103', '20260104', '20260105', '20260106', '20260107', '20260108', '20260109'];
    expect(result).toEqual({ deletedDays: expired, deletedRecords: 27 });
    // Rows read from the log table are the 27 deleted ones (keys only); every request named an expired day.
    expect(wire.logRowsRead).toBe(27);
    for (const r of wire.logRequests.filter((x) => x.method === 'GET')) {
      const day = /PartitionKey eq '(\d{8})'/.exec(r.query)?.[1];
      expect(expired, r.query).toContain(day);
      expect(r.query).toContain('$select=PartitionKey,RowKey');
    }
    // The index of 40 days is all that is read besides them.
    expect(wire.indexRowsRead).toBe(9);

    // Nothing younger than 30 days went: day 2026-01-10 ends after now − 30 days.
    const left = (await store.query({ since: new Date(Date.UTC(2025, 11, 1)), limit: 1000 })).records;
    expect(left).toEqual(newestFirst(records).filter((r) => r.time >= '2026-01-10'));
    expect(left).toHaveLength(93);

    wire.reset();
    expect(await store.enforceRetention(NOW)).toEqual({ deletedDays: [], deletedRecords: 0 });
    expect(wire.logRequests).toEqual([]);
  });

  it('When a day gets a record while retention deletes it, then the day stays indexed and the next run deletes it', async () => {
    const prefix = `logs${++tables}`;
    const other = await ProvisioningLogStore.open(target, { tablePrefix: prefix, tuning: FAST, now: () => NOW });
    const late = record(new Date(Date.UTC(2026, 0, 2, 7)));
    let raced = false;
    // Just before retention removes the index row of 2026-01-02, another instance appends into that day.
    const racer: PipelinePolicy = {
      name: 'racer',
      async sendRequest(request, next) {
        if (!raced && request.method === 'DELETE' && request.url.includes(`${prefix}LogDays`) && request.url.includes("'20260102'")) {
          raced = true;
          await other.append([late]);
        }
        return next(request);
      },
    };
    const { store } = await freshStore({ tablePrefix: prefix, tuning: { policies: [racer] } });
    await store.append([record(new Date(Date.UTC(2026, 0, 2, 6))), record(new Date(Date.UTC(2026, 0, 20, 6)))]);

    const first = await store.enforceRetention(NOW);
    expect(raced).toBe(true);
    expect(first).toEqual({ deletedDays: [], deletedRecords: 1 });
    expect((await store.query({ since: new Date(Date.UTC(2026, 0, 1)), until: new Date(Date.UTC(2026, 0, 3)) })).records).toEqual([late]);

    expect(await store.enforceRetention(NOW)).toEqual({ deletedDays: ['20260102'], deletedRecords: 1 });
    expect((await store.query({ since: new Date(Date.UTC(2026, 0, 1)), limit: 1000 })).records).toHaveLength(1);
  });

  it('When the retention setting is not a whole number of days, then open refuses it', async () => {
    for (const retentionDays of [0, -1, 1.5, 4000]) {
      expect((await rejection(ProvisioningLogStore.open(target, { retentionDays, tuning: FAST }))).code).toBe('STATE_CONFIG');
    }
  });
});

describe('what is stored', () => {
  it('When values are larger than the store keeps, then they are truncated, marked and written, not refused', async () => {
    const { store } = await freshStore();
    const huge = '€'.repeat(40_000); // 120 KB of UTF-8, over the 64 KiB property limit on its own
    const many = Array.from({ length: 200 }, (_, i) => ({ name: `extension_${i}`, old: null, new: '山'.repeat(900) }));
    // 100 such records in one append: more than one 4 MiB batch can hold.
    const records = Array.from({ length: 100 }, (_, i) =>
      record(new Date(NOW.getTime() - (i + 1) * 60_000), {
        reason: 'r'.repeat(5_000),
        userPrincipalName: `${'x'.repeat(3_000)}@contoso.example`,
        modifiedProperties: i === 0 ? [{ name: 'displayName', old: 'Ada', new: huge }] : many,
      }),
    );
    await store.append(records);

    const stored = (await store.query({ limit: 1000 })).records;
    expect(stored).toHaveLength(100);
    const [first, second] = stored as [ProvisioningLogRecord, ProvisioningLogRecord];
    expect(first.reason).toHaveLength(MAX_REASON_LENGTH);
    expect(first.reason!.endsWith(TRUNCATION_MARK)).toBe(true);
    expect(first.userPrincipalName.endsWith(TRUNCATION_MARK)).toBe(true);
    const value = first.modifiedProperties[0]!.new as string;
    expect(value.length).toBeLessThanOrEqual(1_000);
    expect(value.endsWith(TRUNCATION_MARK)).toBe(true);

    expect(JSON.stringify(second.modifiedProperties).length).toBeLessThanOrEqual(MAX_MODIFIED_PROPERTIES_JSON);
    const marker = second.modifiedProperties[second.modifiedProperties.length - 1]!;
    expect(marker.name).toBe(TRUNCATED_PROPERTY);
    const kept = second.modifiedProperties.length - 1;
    expect(kept).toBeGreaterThan(5);
    expect(marker.new).toBe(`${200 - kept} more modified properties not kept (size limit)`);
    expect(second.modifiedProperties.slice(0, kept)).toEqual(many.slice(0, kept));
  });

  it('When a change names a password, secret or token, then it is never stored; known secrets in text are redacted', async () => {
    const { store, prefix } = await freshStore();
    registerSecret('tv-token-logs-7c1d0e9f');
    const written = record(new Date(NOW.getTime() - HOUR), {
      modifiedProperties: [
        { name: 'displayName', old: 'A', new: 'B' },
        { name: 'password', old: null, new: 'Hunter2-Pa55!' },
        { name: 'urn:ietf:params:scim:schemas:core:2.0:User:Password', old: null, new: 'Hunter2-Pa55!' },
        { name: 'clientSecret', old: null, new: 'Hunter2-Pa55!' },
        { name: 'apiToken', old: 'Hunter2-Pa55!', new: null },
      ],
      errorCode: 'TEAMVIEWER_UNAUTHORIZED',
      reason: 'TeamViewer refused token tv-token-logs-7c1d0e9f (Bearer abcdefghijklmnop)',
    });
    await store.append([written]);

    const [got] = (await store.query()).records;
    expect(got!.modifiedProperties).toEqual([{ name: 'displayName', old: 'A', new: 'B' }]);
    expect(got!.reason).toBe('TeamViewer refused token [redacted] (Bearer [redacted])');
    // Not in any column of the raw row either.
    const raw = tableClient(target, `${prefix}Logs`, FAST);
    const rows = [];
    for await (const row of raw.listEntities()) rows.push(row);
    expect(rows).toHaveLength(1);
    const text = JSON.stringify(rows);
    expect(text).not.toContain('Hunter2');
    expect(text).not.toContain('tv-token-logs-7c1d0e9f');
    expect(text).not.toMatch(/password|secret/i);
  });

  it('When a record is malformed, then append refuses the whole list and writes nothing', async () => {
    const { store, wire } = await freshStore();
    const good = record(new Date(NOW.getTime() - HOUR));
    const bad: Array<[Partial<ProvisioningLogRecord>, string]> = [
      [{ time: 'yesterday' }, 'STATE_INVALID_ARGUMENT'],
      [{ action: 'delete' as never }, 'STATE_INVALID_ARGUMENT'],
      [{ status: 'planned' as never }, 'STATE_INVALID_ARGUMENT'],
      [{ id: '' }, 'STATE_INVALID_ARGUMENT'],
      [{ id: 'x'.repeat(600) }, 'STATE_TOO_LARGE'],
      [{ durationMs: -1 }, 'STATE_INVALID_ARGUMENT'],
      [{ modifiedProperties: [{ name: 'x', old: 1 as never, new: null }] }, 'STATE_INVALID_ARGUMENT'],
    ];
    for (const [overrides, code] of bad) {
      const error = await rejection(store.append([good, record(new Date(NOW.getTime() - HOUR), overrides)]));
      expect(error.code, JSON.stringify(overrides)).toBe(code);
    }
    expect((await rejection(store.append([good, good]))).code).toBe('STATE_INVALID_ARGUMENT');
    expect(wire.batches).toBe(0);
    expect((await store.query()).records).toEqual([]);
  });
});
