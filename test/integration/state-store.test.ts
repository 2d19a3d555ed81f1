import net from 'node:net';
import { inspect } from 'node:util';
import { CredentialUnavailableError, type TokenCredential } from '@azure/identity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateConflictError, StateError } from '../../shared/state/errors';
import { escapeKey } from '../../shared/state/keys';
import { StateStore } from '../../shared/state/store';
import { tableClient, tableEndpoint, tableServiceUriForAccount, type ClientTuning, type PipelinePolicy, type StorageTarget } from '../../shared/state/target';
import { emptyCounts, type CycleRecord, type Link } from '../../shared/domain/model';
import { startAzurite, type Azurite } from '../support/azurite';
import { freePort } from '../support/ports';

const FAST: ClientTuning = { retry: { maxRetries: 1, retryDelayInMs: 10, maxRetryDelayInMs: 20 }, requestTimeoutMs: 5_000 };

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

/** Each test gets its own tables, so tests cannot see each other's rows. */
async function freshStore(tuning: ClientTuning = FAST): Promise<{ store: StateStore; prefix: string }> {
  const prefix = `t${++tables}`;
  return { store: await StateStore.open(target, { tablePrefix: prefix, tuning }), prefix };
}

function link(entraId: string, overrides: Partial<Link> = {}): Link {
  return {
    entraId,
    teamViewerId: `tv-${entraId.length}`,
    userName: 'ada@contoso.example',
    userPrincipalName: 'ada@contoso.example',
    written: { userName: 'ada@contoso.example', displayName: 'Ada', active: true, email: null },
    active: true,
    createdAt: '2026-11-28T21:00:00.000Z',
    updatedAt: '2026-11-28T21:05:00.000Z',
    ...overrides,
  };
}

function cycle(store: StateStore, startedAt: Date, overrides: Partial<CycleRecord> = {}): CycleRecord {
  return {
    id: store.newCycleId(startedAt),
    kind: 'incremental',
    dryRun: false,
    trigger: 'timer',
    startedAt: startedAt.toISOString(),
    finishedAt: null,
    result: 'running',
    counts: emptyCounts(),
    imported: 0,
    planned: 0,
    ...overrides,
  };
}

/** Watches responses of GETs on one table: requests made and entity rows received. */
function rowCounter(table: string): PipelinePolicy & { requests: string[]; rows: number } {
  const counter = {
    name: 'rowCounter',
    requests: [] as string[],
    rows: 0,
    async sendRequest(request: Parameters<PipelinePolicy['sendRequest']>[0], next: Parameters<PipelinePolicy['sendRequest']>[1]) {
      const response = await next(request);
      const url = new URL(request.url);
      if (request.method === 'GET' && url.pathname.includes(table)) {
        counter.requests.push(decodeURIComponent(url.search));
        const body = response.bodyAsText ? (JSON.parse(response.bodyAsText) as { value?: unknown[] }) : {};
        counter.rows += body.value?.length ?? 1;
      }
      return response;
    },
  };
  return counter;
}

/** Records every request as "METHOD path?query". */
function requestLog(into: string[]): PipelinePolicy {
  return {
    name: 'requestLog',
    async sendRequest(request, next) {
      const url = new URL(request.url);
      into.push(`${request.method} ${decodeURIComponent(url.pathname + url.search)}`);
      return next(request);
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<StateError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StateError);
  return error as StateError;
}

describe('startAzurite', () => {
  it('When its port is taken by another process, then it retries on a fresh port and serves there', async () => {
    const offered = [azurite.port]; // taken by the suite's own Azurite
    const second = await startAzurite({ attempts: 2, choosePort: async () => offered.shift() ?? freePort() });
    try {
      expect(offered).toEqual([]);
      expect(second.port).not.toBe(azurite.port);
      const store = await StateStore.open({ kind: 'connectionString', connectionString: second.connectionString }, { tuning: FAST });
      await store.putMeta('where', 'second');
      expect((await store.getMeta('where'))?.value).toBe('second');
    } finally {
      await second.stop();
    }
  });
});

describe('links', () => {
  it('When links with awkward ids are put, then getLink and listLinks return them exactly', async () => {
    const { store } = await freshStore();
    const ids = ['6f1c2b7e-3d4a-4c4e-9a51-0b2f7f6c1d2e', 'a/b\\c#d?e%f', 'Zoë 山田 🚀', "o'brien", 'ctl\u0001\u007f', '%2F'];
    const links = ids.map((id, i) => link(id, i === 1 ? { teamViewerId: null, pending: 'create', active: false } : {}));
    for (const l of links) await store.putLink(l);

    for (const l of links) expect(await store.getLink(l.entraId)).toEqual(l);
    const listed = await store.listLinks();
    expect(listed.sort((a, b) => a.entraId.localeCompare(b.entraId))).toEqual(
      [...links].sort((a, b) => a.entraId.localeCompare(b.entraId)),
    );
    expect(await store.getLink('a/b')).toBeNull();
    // The drift check's digests: the same links, with only what it compares.
    const digests = await store.listLinkDigests();
    expect(digests.sort((a, b) => a.entraId.localeCompare(b.entraId))).toEqual(
      [...links].sort((a, b) => a.entraId.localeCompare(b.entraId)).map(({ entraId, teamViewerId, written, pending }) => ({ entraId, teamViewerId, written, ...(pending ? { pending } : {}) })),
    );
  });

  it('When a link is put again, then the new version replaces the old one whole', async () => {
    const { store } = await freshStore();
    await store.putLink(link('u1', { teamViewerId: null, pending: 'create' }));
    const settled = link('u1', { teamViewerId: 'tv-42', written: { userName: 'b@x' } });
    await store.putLink(settled);
    expect(await store.getLink('u1')).toEqual(settled); // no leftover `pending`
  });

  it('When there are more links than one page holds, then listLinks returns all of them', async () => {
    const counter = rowCounter('Links');
    const { store, prefix } = await freshStore({ ...FAST, policies: [counter] });
    const ids = Array.from({ length: 1005 }, (_, i) => `user-${String(i).padStart(4, '0')}`);
    // One putLink per row costs ~5 ms in Azurite; batches of 100 keep this test fast. The row
    // layout is checked against putLink's below.
    await store.putLink(link(ids[0]!));
    const raw = tableClient(target, `${prefix}Links`, FAST);
    const template: Record<string, unknown> = await raw.getEntity('link', ids[0]!);
    const { etag: _etag, timestamp: _timestamp, ...layout } = template;
    for (let i = 1; i < ids.length; i += 100) {
      await raw.submitTransaction(ids.slice(i, i + 100).map((id) => ['create', { ...layout, partitionKey: 'link', rowKey: id }]));
    }
    counter.requests.length = 0;

    const listed = await store.listLinks();
    expect(listed.map((l) => l.entraId).sort()).toEqual(ids);
    expect(listed[ids.length - 1]).toEqual(link(listed[ids.length - 1]!.entraId));
    expect(counter.requests.length).toBeGreaterThanOrEqual(2); // the service pages at 1000
  });

  it('When a link is deleted twice, or was never there, then nothing fails and it is gone', async () => {
    const { store } = await freshStore();
    await store.putLink(link('gone/soon'));
    await store.deleteLink('gone/soon');
    await store.deleteLink('gone/soon');
    await store.deleteLink('never-existed');
    expect(await store.getLink('gone/soon')).toBeNull();
    expect(await store.listLinks()).toEqual([]);
  });

  it('When 250 links are written at once, then they share a few transactions and every one is stored', async () => {
    const requests: string[] = [];
    const { store } = await freshStore({ ...FAST, policies: [requestLog(requests)] });
    const ids = Array.from({ length: 250 }, (_, i) => `batch-${String(i).padStart(3, '0')}`);
    requests.length = 0;
    await Promise.all(ids.map((id, i) => store.putLink(link(id, { teamViewerId: `u${i}` }))));
    // 250 links and their 250 index rows: 500 rows in transactions of 100 (one per link would be 250 requests).
    expect(requests.filter((r) => r.includes('$batch'))).toHaveLength(5);
    expect(requests).toHaveLength(5);
    expect((await store.listLinks()).map((l) => l.entraId).sort()).toEqual(ids);
  });

  it('When a write in a shared transaction is refused, then only that write fails and the others land', async () => {
    const { store } = await freshStore();
    await store.putLink(link('kept'));
    const results = await Promise.allSettled([
      store.putLink(link('a', { teamViewerId: 'u-a' })),
      store.deleteLink('never-existed'), // a delete of a missing row spoils a transaction, alone it is fine
      store.putLink(link('b', { teamViewerId: 'u-b' })),
      store.deleteLink('kept'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((await store.listLinks()).map((l) => l.entraId).sort()).toEqual(['a', 'b']);
  });

  it('When a link is written twice before its transaction leaves, then the later version is the one stored', async () => {
    const { store } = await freshStore();
    await Promise.all([store.putLink(link('twice', { userName: 'first@contoso.example' })), store.putLink(link('twice', { userName: 'second@contoso.example' }))]);
    expect((await store.getLink('twice'))?.userName).toBe('second@contoso.example');
  });

  it('When the TeamViewer-id index is complete, then the holder of a TeamViewer user is found by two point reads; a moved or deleted link is nobody', async () => {
    const requests: string[] = [];
    const { store } = await freshStore({ ...FAST, policies: [requestLog(requests)] });
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.putLink(link(`user-${i}`, { teamViewerId: `u${i}` }))));
    expect(await store.completeLinkIndex(await store.listLinks())).toBe(30); // state of an older version: no marker yet
    expect(await store.completeLinkIndex(await store.listLinks())).toBe(0);

    requests.length = 0;
    expect((await store.findLinkByTeamViewerId('u7'))?.entraId).toBe('user-7');
    expect(requests.filter((r) => r.startsWith('GET'))).toHaveLength(2);
    expect(requests.some((r) => r.includes('filter') || r.includes('$filter'))).toBe(false);

    await store.putLink(link('user-7', { teamViewerId: 'u99' }));
    expect(await store.findLinkByTeamViewerId('u7')).toBeNull();
    expect((await store.findLinkByTeamViewerId('u99'))?.entraId).toBe('user-7');
    await store.deleteLink('user-8');
    expect(await store.findLinkByTeamViewerId('u8')).toBeNull();
    expect(await store.findLinkByTeamViewerId('nobody')).toBeNull();
    // Index rows are never listed as links, nor as digests.
    expect(await store.listLinks()).toHaveLength(29);
    expect(await store.listLinkDigests()).toHaveLength(29);
  });

  it('When links were written by a version without the index, then lookups by TeamViewer id still find them until a full cycle indexes them', async () => {
    const { store, prefix } = await freshStore();
    const raw = tableClient(target, `${prefix}Links`, FAST);
    await store.putLink(link('template', { teamViewerId: null }));
    const template: Record<string, unknown> = await raw.getEntity('link', 'template');
    const { etag: _etag, timestamp: _timestamp, ...layout } = template;
    await raw.createEntity({ ...layout, rowKey: 'old-user', teamViewerId: 'u-old' });
    expect((await store.findLinkByTeamViewerId('u-old'))?.entraId).toBe('old-user');
    await store.completeLinkIndex(await store.listLinks());
    const fresh = await StateStore.open(target, { tablePrefix: prefix, tuning: FAST });
    expect((await fresh.findLinkByTeamViewerId('u-old'))?.entraId).toBe('old-user');
  });
});

describe('cycles', () => {
  it('When 30 cycles exist, then listCycles(5) returns the 5 newest, newest first, reading only 5 rows', async () => {
    const counter = rowCounter('Cycles');
    const { store } = await freshStore({ ...FAST, policies: [counter] });
    const base = Date.UTC(2026, 10, 28, 21, 0, 0);
    // Written out of order, so only the keys can produce the order.
    const records = Array.from({ length: 30 }, (_, i) => cycle(store, new Date(base + ((i * 7) % 30) * 60_000)));
    for (const r of records) await store.createCycle(r);
    const newestFirst = [...records].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    counter.requests.length = 0;
    counter.rows = 0;

    const five = await store.listCycles(5);
    expect(five.map((c) => c.id)).toEqual(newestFirst.slice(0, 5).map((c) => c.id));
    expect(counter.rows).toBe(5);
    expect(counter.requests).toEqual([expect.stringContaining('$top=5')]);

    expect((await store.listCycles()).map((c) => c.id)).toEqual(newestFirst.slice(0, 20).map((c) => c.id));
  });

  it('When a cycle is created, updated and read back, then every field survives, counts included', async () => {
    const { store } = await freshStore();
    const started = cycle(store, new Date('2026-11-28T21:01:33.123Z'), { trigger: 'cli', dryRun: true, kind: 'initial' });
    expect(started.id).toMatch(/^20261128T210133\.123Z-[0-9a-f]{4}$/);
    await store.createCycle(started);
    expect(await store.getCycle(started.id)).toEqual(started);

    const finished: CycleRecord = {
      ...started,
      finishedAt: '2026-11-28T21:02:00.000Z',
      result: 'partial',
      counts: { created: 3, updated: 2, disabled: 1, enabled: 0, linked: 4, unchanged: 120, skipped: 5, failed: 1, staged: 2, drift: 1, groups: { created: 2, linked: 1, updated: 3, deleted: 1, unlinked: 1, membersAdded: 250, membersRemoved: 7, staged: 1, failed: 1 } },
      imported: 136,
      planned: 11,
      error: { code: 'TEAMVIEWER_THROTTLED', message: 'TeamViewer kept answering 429' },
      heartbeatAt: '2026-11-28T21:01:58.000Z',
      done: 11,
      configHash: '0123456789abcdef',
      failures: [{ entraId: 'e1', userPrincipalName: 'ann@contoso.com', action: 'create', code: 'TEAMVIEWER_CONFLICT', message: 'email in use', at: '2026-11-28T21:01:50.000Z' }],
      driftRepairs: [{ entraId: 'e2', userPrincipalName: 'bob@contoso.com', teamViewerId: 'u7', action: 'disable', status: 'success', deactivates: true, reason: 'changed in TeamViewer by hand (active): put back', foundAt: '2026-11-28T21:01:33.123Z' }],
      groupFailures: [{ entraGroupId: 'g1', name: 'Helpdesk', action: 'group-create', code: 'GROUP_NAME_TAKEN', message: 'taken', at: '2026-11-28T21:01:51.000Z' }],
      groupWarnings: ['GROUP_ROLES entry 1: the TeamViewer company has no role named "Wizard"'],
    };
    await store.updateCycle(finished);
    expect(await store.getCycle(started.id)).toEqual(finished);
    expect(await store.getCycle('20261128T210133.123Z-0000')).toBeNull();
    expect(await store.getCycle('not-a-cycle-id')).toBeNull();
  });

  it('When a cycle row was written before the user-group counts existed, then they read as 0', async () => {
    const { store, prefix } = await freshStore();
    const c = cycle(store, new Date('2026-11-28T21:01:33.123Z'));
    await store.createCycle({ ...c, counts: { ...c.counts, created: 4, groups: { ...c.counts.groups, created: 2 } } });
    const raw = tableClient(target, `${prefix}Cycles`, FAST);
    const [row] = await raw.listEntities().byPage({ maxPageSize: 1 }).next().then((r) => r.value as Array<Record<string, unknown>>);
    expect(row).toMatchObject({ groupsCreated: 2, groupMembersAdded: 0 });
    const older = Object.fromEntries(Object.entries(row!).filter(([name]) => !/^group/.test(name) && !['odata', 'etag', 'timestamp'].includes(name)));
    await raw.upsertEntity(older as { partitionKey: string; rowKey: string }, 'Replace');
    expect((await store.getCycle(c.id))?.counts).toEqual({ ...c.counts, created: 4 });
  });

  it('When a cycle row was written before the staged and drift counts existed, then they read as 0; any other missing count is corrupt', async () => {
    const { store, prefix } = await freshStore();
    const c = cycle(store, new Date('2026-11-28T21:01:33.123Z'));
    await store.createCycle({ ...c, counts: { ...c.counts, created: 4 } });
    const raw = tableClient(target, `${prefix}Cycles`, FAST);
    const [row] = await raw.listEntities().byPage({ maxPageSize: 1 }).next().then((r) => r.value as Array<Record<string, unknown>>);
    const { staged: _staged, drift: _drift, odata: _odata, etag: _etag, timestamp: _timestamp, ...older } = row!;
    await raw.upsertEntity(older as { partitionKey: string; rowKey: string }, 'Replace');
    expect((await store.getCycle(c.id))?.counts).toEqual({ ...c.counts, created: 4, staged: 0, drift: 0 });
    const { created: _created, ...broken } = older;
    await raw.upsertEntity(broken as { partitionKey: string; rowKey: string }, 'Replace');
    expect(await rejection(store.getCycle(c.id))).toMatchObject({ code: 'STATE_CORRUPT' });
  });

  it('When a cycle id is reused or an unknown cycle updated, then the store refuses', async () => {
    const { store } = await freshStore();
    const c = cycle(store, new Date());
    await store.createCycle(c);
    const duplicate = await rejection(store.createCycle({ ...c, trigger: 'http' }));
    expect(duplicate).toBeInstanceOf(StateConflictError);
    expect((await store.getCycle(c.id))?.trigger).toBe('timer');

    expect((await rejection(store.updateCycle(cycle(store, new Date())))).code).toBe('STATE_NOT_FOUND');
    expect((await rejection(store.createCycle({ ...c, id: 'hand-made' }))).code).toBe('STATE_INVALID_ARGUMENT');
    expect((await rejection(store.createCycle({ ...cycle(store, new Date()), imported: -1 }))).code).toBe('STATE_INVALID_ARGUMENT');
  });

  it('When ids are made in the same millisecond, then they differ and sort by time', async () => {
    const { store } = await freshStore();
    const at = new Date('2026-11-28T21:01:33.123Z');
    const ids = new Set(Array.from({ length: 50 }, () => store.newCycleId(at)));
    expect(ids.size).toBeGreaterThan(45); // 16 random bits; a clash is refused by createCycle anyway
    expect(store.newCycleId(new Date('2026-11-28T21:01:33.999Z')) > store.newCycleId(at)).toBe(true);
  });
});

describe('meta', () => {
  it('When two writers replace the same version, then exactly one wins and the other gets STATE_CONFLICT', async () => {
    const { store } = await freshStore();
    const etag = await store.putMeta('lease', { owner: 'nobody' }, null);
    const outcomes = await Promise.allSettled([
      store.putMeta('lease', { owner: 'timer' }, etag),
      store.putMeta('lease', { owner: 'cli' }, etag),
    ]);
    const won = outcomes.filter((o): o is PromiseFulfilledResult<string> => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(StateConflictError);
    expect((lost[0]!.reason as StateError).code).toBe('STATE_CONFLICT');

    const current = await store.getMeta<{ owner: string }>('lease');
    expect(current?.etag).toBe(won[0]!.value);
    expect(['timer', 'cli']).toContain(current?.value.owner);
  });

  it('When a meta document is created only if absent, then a second create is a conflict and keeps the first', async () => {
    const { store } = await freshStore();
    await store.putMeta('gate', { open: true }, null);
    const error = await rejection(store.putMeta('gate', { open: false }, null));
    expect(error.code).toBe('STATE_CONFLICT');
    expect((await store.getMeta('gate'))?.value).toEqual({ open: true });
  });

  it('When meta is upserted, deleted with a stale or current etag, or missing, then each behaves as documented', async () => {
    const { store } = await freshStore();
    expect(await store.getMeta('watermark')).toBeNull();
    const first = await store.putMeta('watermark', 'delta-1');
    const second = await store.putMeta('watermark', 'delta-2'); // unconditional
    expect(second).not.toBe(first);
    expect(await store.getMeta('watermark')).toEqual({ value: 'delta-2', etag: second });

    expect((await rejection(store.deleteMeta('watermark', first))).code).toBe('STATE_CONFLICT');
    await store.deleteMeta('watermark', second);
    expect(await store.getMeta('watermark')).toBeNull();
    await store.deleteMeta('watermark');
    await store.deleteMeta('watermark', second);
    expect((await rejection(store.putMeta('watermark', 'delta-3', second))).code).toBe('STATE_CONFLICT');
    expect(await store.getMeta('watermark')).toBeNull();
  });

  it('When a value is over the 64 KiB property limit, then nothing is written and STATE_TOO_LARGE names it', async () => {
    const { store } = await freshStore();
    const error = await rejection(store.putMeta('quarantine', { users: 'x'.repeat(40_000) }));
    expect(error.code).toBe('STATE_TOO_LARGE');
    expect(error.message).toContain('quarantine');
    expect(await store.getMeta('quarantine')).toBeNull();

    const big = link('big', { written: { displayName: 'y'.repeat(33_000) } });
    expect((await rejection(store.putLink(big))).code).toBe('STATE_TOO_LARGE');
    expect(await store.getLink('big')).toBeNull();
    expect((await rejection(store.getLink('k'.repeat(600)))).code).toBe('STATE_TOO_LARGE');
  });
});

describe('corrupt rows', () => {
  it('When one link row cannot be decoded, then listLinks and getLink fail naming it instead of dropping it', async () => {
    const { store, prefix } = await freshStore();
    await store.putLink(link('good'));
    const raw = tableClient(target, `${prefix}Links`, FAST);
    await raw.createEntity({ partitionKey: 'link', rowKey: 'broken-json', userName: 'u', userPrincipalName: 'u', active: true, written: '{not json', createdAt: 'x', updatedAt: 'x' });

    const listed = await rejection(store.listLinks());
    expect(listed.code).toBe('STATE_CORRUPT');
    expect(listed.message).toContain('broken-json');
    expect(listed.rowKey).toBe('broken-json');
    expect(await rejection(store.listLinkDigests())).toMatchObject({ code: 'STATE_CORRUPT', rowKey: 'broken-json' });
    expect((await rejection(store.getLink('broken-json'))).code).toBe('STATE_CORRUPT');
    expect(await store.getLink('good')).not.toBeNull();
  });

  it('When a row is missing a field, has a wrong type or a key that is not an escape, then it is STATE_CORRUPT', async () => {
    const { store, prefix } = await freshStore();
    const links = tableClient(target, `${prefix}Links`, FAST);
    const base = { partitionKey: 'link', userName: 'u', userPrincipalName: 'u', active: true, written: '{}', createdAt: 'x', updatedAt: 'x' };
    await links.createEntity({ ...base, rowKey: 'bad%zzkey' });
    expect((await rejection(store.listLinks())).message).toContain('bad%zzkey');
    await links.deleteEntity('link', 'bad%zzkey');
    await links.createEntity({ ...base, rowKey: 'no-upn', userPrincipalName: undefined });
    const missing = await rejection(store.getLink('no-upn'));
    expect(missing.code).toBe('STATE_CORRUPT');
    expect(missing.message).toContain('userPrincipalName');

    const c = cycle(store, new Date());
    await store.createCycle(c);
    const cycles = tableClient(target, `${prefix}Cycles`, FAST);
    const [row] = await cycles.listEntities().byPage({ maxPageSize: 1 }).next().then((r) => r.value as Array<Record<string, unknown>>);
    await cycles.updateEntity({ partitionKey: 'cycle', rowKey: row!.rowKey as string, created: 'three' }, 'Merge');
    expect((await rejection(store.listCycles())).code).toBe('STATE_CORRUPT');
    expect((await rejection(store.getCycle(c.id))).message).toContain('created');

    await tableClient(target, `${prefix}Meta`, FAST).createEntity({ partitionKey: 'meta', rowKey: escapeKey('lease'), json: '{' });
    expect((await rejection(store.getMeta('lease'))).code).toBe('STATE_CORRUPT');
  });
});

describe('a table that vanished', () => {
  it('When a state table is deleted under a running store, then reads and writes fail instead of reading as "no row"', async () => {
    const { store, prefix } = await freshStore();
    await store.putLink(link('u1'));
    await store.putMeta('gate', { open: true });
    await tableClient(target, `${prefix}Links`, FAST).deleteTable();
    await tableClient(target, `${prefix}Meta`, FAST).deleteTable();

    // getLink → null here would make the next cycle create a duplicate TeamViewer user.
    const read = await rejection(store.getLink('u1'));
    expect(read.code).toBe('STATE_REQUEST_FAILED');
    expect(read.serviceCode).toBe('TableNotFound');
    expect(read.message).toContain(`${prefix}Links`);
    expect((await rejection(store.getMeta('gate'))).code).toBe('STATE_REQUEST_FAILED');
    expect((await rejection(store.deleteLink('u1'))).code).toBe('STATE_REQUEST_FAILED');
    expect((await rejection(store.putMeta('gate', { open: false }, null))).code).toBe('STATE_REQUEST_FAILED');
    expect((await rejection(store.putMeta('gate', { open: false }, 'W/"stale"'))).code).toBe('STATE_REQUEST_FAILED');
  });
});

describe('endpoints and failures', () => {
  const SECRET_KEY = Buffer.from('tvsync-not-the-real-key-but-secret-enough-0123456789').toString('base64');

  function expectNoKey(error: StateError): void {
    for (const text of [error.message, error.stack ?? '', inspect(error, { depth: 5 }), JSON.stringify(error)]) {
      expect(text).not.toContain(SECRET_KEY);
    }
  }

  it('When nothing listens on the endpoint, then open fails fast with STATE_UNAVAILABLE naming the host', async () => {
    const port = await freePort();
    const started = Date.now();
    const error = await rejection(
      StateStore.open(
        { kind: 'connectionString', connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${SECRET_KEY};TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1` },
        { tuning: FAST },
      ),
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(error.code).toBe('STATE_UNAVAILABLE');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expectNoKey(error);
  });

  it('When the endpoint accepts but never answers, then the request timeout turns it into STATE_UNAVAILABLE', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const started = Date.now();
      const error = await rejection(
        StateStore.open(
          { kind: 'connectionString', connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${SECRET_KEY};TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1` },
          { tuning: { ...FAST, requestTimeoutMs: 300 } },
        ),
      );
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(error.code).toBe('STATE_UNAVAILABLE');
      expect(error.message).toContain(`127.0.0.1:${port}`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('When the account key is wrong, then STATE_AUTH is reported without the key', async () => {
    const wrong = azurite.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${SECRET_KEY}`);
    const error = await rejection(StateStore.open({ kind: 'connectionString', connectionString: wrong }, { tablePrefix: 'wrongkey', tuning: FAST }));
    expect(error.code).toBe('STATE_AUTH');
    expect(error.status).toBe(403);
    expectNoKey(error);
  });

  it('When the managed identity yields no token, then STATE_AUTH names the endpoint', async () => {
    const port = await freePort(); // nothing listens: only a token failure can make this STATE_AUTH
    const credential: TokenCredential = {
      getToken: () => Promise.reject(new CredentialUnavailableError('ManagedIdentityCredential: no endpoint')),
    };
    const error = await rejection(
      StateStore.open({ kind: 'identity', tableServiceUri: `https://127.0.0.1:${port}`, credential }, { tuning: FAST }),
    );
    expect(error.code).toBe('STATE_AUTH');
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('When the endpoint is plain http to another host, then it is refused before any request, without the key', () => {
    const cases: StorageTarget[] = [
      { kind: 'connectionString', connectionString: `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${SECRET_KEY};TableEndpoint=http://storage.example.com/acct` },
      { kind: 'connectionString', connectionString: `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${SECRET_KEY};EndpointSuffix=core.windows.net` },
      { kind: 'connectionString', connectionString: `TableEndpoint=http://10.0.0.5:10002/acct;SharedAccessSignature=sv=2024&sig=${SECRET_KEY}` },
      { kind: 'identity', tableServiceUri: 'http://acct.table.core.windows.net', credential: {} as TokenCredential },
    ];
    for (const t of cases) {
      let caught: unknown;
      try {
        tableClient(t, 'tvsyncLinks');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(StateError);
      expect((caught as StateError).code).toBe('STATE_INSECURE_ENDPOINT');
      expect((caught as StateError).message).toMatch(/storage\.example\.com|10\.0\.0\.5|acct\.table\.core\.windows\.net/);
      expectNoKey(caught as StateError);
    }
  });

  it('When the endpoint is https or loopback http, then a client is built; a broken connection string is STATE_CONFIG', () => {
    expect(tableEndpoint({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' }).href).toBe(
      'http://127.0.0.1:10002/devstoreaccount1',
    );
    expect(tableEndpoint({ kind: 'connectionString', connectionString: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${SECRET_KEY};EndpointSuffix=core.windows.net` }).host).toBe(
      'acct.table.core.windows.net',
    );
    expect(tableServiceUriForAccount('tvsyncstate01')).toBe('https://tvsyncstate01.table.core.windows.net');
    expect(() => tableServiceUriForAccount('Not/An.Account')).toThrow(StateError);
    for (const uri of ['https://acct.table.core.windows.net', 'http://localhost:10002/devstoreaccount1', 'http://[::1]:10002/devstoreaccount1', 'http://127.1.2.3:10002/x']) {
      expect(tableClient({ kind: 'identity', tableServiceUri: uri, credential: {} as TokenCredential }, 'tvsyncLinks').tableName).toBe('tvsyncLinks');
    }

    let caught: unknown;
    try {
      tableEndpoint({ kind: 'connectionString', connectionString: `AccountKey=${SECRET_KEY};TableEndpoint=https://acct.table.core.windows.net` });
    } catch (error) {
      caught = error;
    }
    expect((caught as StateError).code).toBe('STATE_CONFIG');
    expectNoKey(caught as StateError);
  });

  it('When the table prefix is not alphanumeric, then open refuses it', async () => {
    expect((await rejection(StateStore.open(target, { tablePrefix: 'tv-sync' }))).code).toBe('STATE_CONFIG');
    expect((await rejection(StateStore.open(target, { tablePrefix: '1tv' }))).code).toBe('STATE_CONFIG');
  });
});
