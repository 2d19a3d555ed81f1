/**
 * The benchmark's indexed Azurite (azurite-index-preload.ts) must still be Azurite: the same story
 * of Table Storage calls, through @azure/data-tables, runs against a stock Azurite and the indexed
 * one (with every indexed lookup checked against LokiJS's own scan), and both tell it the same way:
 * the same status codes, error codes, entities, query pages and transaction outcomes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TableClient, TableTransaction, type TableEntity, type TableEntityResult } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../support/azurite';
import { PRELOAD, startIndexedAzurite, type IndexedAzurite } from './azurite-indexed';

type Props = Record<string, unknown>;

/** What one step showed a client: a status and error code, or what it read. Etags and timestamps vary by run and are left out. */
interface Step {
  step: string;
  outcome: string;
  read?: unknown;
}

let stock: Azurite;
let indexed: IndexedAzurite;
let stockStory: Step[];
let indexedStory: Step[];

function clean(entity: TableEntityResult<Props>): Props {
  const { etag: _etag, timestamp: _timestamp, ...rest } = entity;
  return Object.fromEntries(Object.entries(rest).filter(([k]) => !k.startsWith('odata')));
}

function failure(error: unknown): string {
  const e = error as { statusCode?: number; code?: string; details?: { errorCode?: string }; message?: string };
  if (typeof e.statusCode !== 'number') throw error;
  // A failed transaction names the operation that failed ("1:The specified entity…").
  const operation = /^(\d+):/.exec(e.message ?? '')?.[1];
  return `${e.statusCode} ${e.details?.errorCode ?? e.code ?? '?'}${operation === undefined ? '' : ` at operation ${operation}`}`;
}

/** The story both Azurites are told; every step's outcome goes into the transcript. */
async function tell(connectionString: string): Promise<Step[]> {
  const steps: Step[] = [];
  const table = 'bench-index-story'.replace(/-/g, '');
  const client = TableClient.fromConnectionString(connectionString, table, { allowInsecureConnection: true });
  const step = async (name: string, action: () => Promise<unknown>): Promise<void> => {
    try {
      const read = await action();
      steps.push({ step: name, outcome: 'ok', ...(read === undefined ? {} : { read }) });
    } catch (error) {
      steps.push({ step: name, outcome: failure(error) });
    }
  };
  const get = (pk: string, rk: string) => step(`get ${pk}/${rk}`, async () => clean(await client.getEntity<Props>(pk, rk)));
  const etagOf = async (pk: string, rk: string) => (await client.getEntity(pk, rk)).etag;

  await step('create table', () => client.createTable().then(() => undefined));
  await get('p', 'a');
  await step('create p/a', () => client.createEntity({ partitionKey: 'p', rowKey: 'a', n: 1, s: 'one' }).then(() => undefined));
  await step('create p/a again', () => client.createEntity({ partitionKey: 'p', rowKey: 'a', n: 9 }).then(() => undefined));
  await get('p', 'a');
  await step('upsert Replace p/a', () => client.upsertEntity({ partitionKey: 'p', rowKey: 'a', m: 2 }, 'Replace').then(() => undefined));
  await get('p', 'a');
  await step('upsert Merge p/a', () => client.upsertEntity({ partitionKey: 'p', rowKey: 'a', n: 3 }, 'Merge').then(() => undefined));
  await get('p', 'a');
  await step('upsert Replace new p/b', () => client.upsertEntity({ partitionKey: 'p', rowKey: 'b', n: 4 }, 'Replace').then(() => undefined));
  await step('upsert Merge new p/c', () => client.upsertEntity({ partitionKey: 'p', rowKey: 'c', n: 5 }, 'Merge').then(() => undefined));
  // Same row key, other partition; keys LokiJS's index compares as numbers ("10" = "010").
  await step('create q/a', () => client.createEntity({ partitionKey: 'q', rowKey: 'a', n: 6 }).then(() => undefined));
  await step('create 10/1', () => client.createEntity({ partitionKey: '10', rowKey: '1', n: 7 }).then(() => undefined));
  await step('create 010/01', () => client.createEntity({ partitionKey: '010', rowKey: '01', n: 8 }).then(() => undefined));
  await step('create 10/01', () => client.createEntity({ partitionKey: '10', rowKey: '01', n: 9 }).then(() => undefined));
  for (const [pk, rk] of [['p', 'b'], ['p', 'c'], ['q', 'a'], ['10', '1'], ['010', '01'], ['10', '01'], ['010', '1'], ['1e1', '1']] as const) await get(pk, rk);

  // Conditional writes: the current etag passes, a stale one is refused, nothing changes then.
  const stale = await etagOf('p', 'a');
  await step('update Merge p/a with its etag', () => client.updateEntity({ partitionKey: 'p', rowKey: 'a', s: 'two' }, 'Merge', { etag: stale }).then(() => undefined));
  await step('update Merge p/a with a stale etag', () => client.updateEntity({ partitionKey: 'p', rowKey: 'a', s: 'three' }, 'Merge', { etag: stale }).then(() => undefined));
  await step('update Replace p/a with a stale etag', () => client.updateEntity({ partitionKey: 'p', rowKey: 'a', s: 'four' }, 'Replace', { etag: stale }).then(() => undefined));
  await get('p', 'a');
  await step('update Replace p/a with the current etag', async () => client.updateEntity({ partitionKey: 'p', rowKey: 'a', s: 'six' }, 'Replace', { etag: await etagOf('p', 'a') }).then(() => undefined));
  await get('p', 'a');
  await step('update Merge missing p/zz', () => client.updateEntity({ partitionKey: 'p', rowKey: 'zz', n: 1 }, 'Merge').then(() => undefined));
  await step('update Replace missing p/zz', () => client.updateEntity({ partitionKey: 'p', rowKey: 'zz', n: 1 }, 'Replace').then(() => undefined));
  await step('delete p/b with a stale etag', async () => {
    const old = await etagOf('p', 'b');
    await client.upsertEntity({ partitionKey: 'p', rowKey: 'b', n: 44 }, 'Replace');
    await client.deleteEntity('p', 'b', { etag: old });
  });
  await get('p', 'b');
  await step('delete p/b with its etag', async () => client.deleteEntity('p', 'b', { etag: await etagOf('p', 'b') }).then(() => undefined));
  await get('p', 'b');
  await step('delete p/b again', () => client.deleteEntity('p', 'b').then(() => undefined));
  await step('re-create p/b', () => client.createEntity({ partitionKey: 'p', rowKey: 'b', n: 45 }).then(() => undefined));
  await get('p', 'b');

  // A query by partition with a filter, in pages.
  for (let i = 0; i < 30; i++) {
    await client.upsertEntity({ partitionKey: 'page', rowKey: `r${String(i).padStart(2, '0')}`, n: i, even: i % 2 === 0 }, i % 3 ? 'Merge' : 'Replace');
  }
  await step('query page, n ge 5 and even, 4 a page', async () => {
    const pages: string[][] = [];
    const iterator = client.listEntities<Props>({ queryOptions: { filter: "PartitionKey eq 'page' and n ge 5 and even eq true" } }).byPage({ maxPageSize: 4 });
    for await (const page of iterator) pages.push(page.map((e) => `${e.rowKey}:${String(e.n)}`));
    return pages;
  });
  await step('query p and q, 2 a page, select n', async () => {
    const pages: Props[][] = [];
    const iterator = client.listEntities<Props>({ queryOptions: { filter: "PartitionKey eq 'p' or PartitionKey eq 'q'", select: ['n'] } }).byPage({ maxPageSize: 2 });
    for await (const page of iterator) pages.push(page.map((e) => ({ pk: e.partitionKey, rk: e.rowKey, n: e.n })));
    return pages;
  });

  // Entity-group transactions: one that succeeds, one that fails at its last operation and so
  // leaves nothing of the others behind.
  await step('transaction: creates, upsert Replace, upsert Merge, update, delete', async () => {
    const tx = new TableTransaction();
    tx.createEntity({ partitionKey: 'tx', rowKey: 'new', n: 1 });
    tx.createEntity({ partitionKey: 'tx', rowKey: 'other', n: 0 });
    tx.upsertEntity({ partitionKey: 'tx', rowKey: 'replaced', n: 2 }, 'Replace');
    tx.upsertEntity({ partitionKey: 'tx', rowKey: 'merged', n: 3 }, 'Merge');
    await client.createEntity({ partitionKey: 'tx', rowKey: 'updated', n: 4, keep: 'yes' });
    await client.createEntity({ partitionKey: 'tx', rowKey: 'deleted', n: 5 });
    tx.updateEntity({ partitionKey: 'tx', rowKey: 'updated', n: 40 }, 'Merge');
    tx.deleteEntity('tx', 'deleted');
    const response = await client.submitTransaction(tx.actions);
    return response.status;
  });
  for (const rk of ['new', 'replaced', 'merged', 'updated', 'deleted']) await get('tx', rk);
  await step('transaction failing at a create that exists: rolled back', async () => {
    const tx = new TableTransaction();
    tx.createEntity({ partitionKey: 'tx', rowKey: 'fresh', n: 6 });
    tx.upsertEntity({ partitionKey: 'tx', rowKey: 'replaced', changed: true }, 'Replace');
    tx.upsertEntity({ partitionKey: 'tx', rowKey: 'merged', n: 30 }, 'Merge');
    tx.updateEntity({ partitionKey: 'tx', rowKey: 'updated', n: 400 }, 'Replace');
    tx.deleteEntity('tx', 'new');
    tx.createEntity({ partitionKey: 'tx', rowKey: 'other', n: 7 });
    await client.submitTransaction(tx.actions);
  });
  for (const rk of ['fresh', 'new', 'replaced', 'merged', 'updated']) await get('tx', rk);
  await step('transaction failing at a stale etag: rolled back', async () => {
    const old = await etagOf('tx', 'merged');
    await client.updateEntity({ partitionKey: 'tx', rowKey: 'merged', n: 31 }, 'Merge');
    const tx = new TableTransaction();
    tx.deleteEntity('tx', 'replaced');
    tx.createEntity({ partitionKey: 'tx', rowKey: 'fresh2', n: 8 });
    tx.updateEntity({ partitionKey: 'tx', rowKey: 'merged', n: 32 }, 'Merge', { etag: old });
    await client.submitTransaction(tx.actions);
  });
  for (const rk of ['fresh2', 'replaced', 'merged']) await get('tx', rk);
  await step('transaction failing at a missing entity: rolled back', async () => {
    const tx = new TableTransaction();
    tx.upsertEntity({ partitionKey: 'tx', rowKey: 'fresh3', n: 9 }, 'Merge');
    tx.updateEntity({ partitionKey: 'tx', rowKey: 'absent', n: 10 }, 'Merge');
    await client.submitTransaction(tx.actions);
  });
  await get('tx', 'fresh3');
  // After rollbacks, writes to the same keys still find what is there.
  await step('create tx/fresh after the rollback', () => client.createEntity({ partitionKey: 'tx', rowKey: 'fresh', n: 11 }).then(() => undefined));
  await step('create tx/new after the rollback (it exists)', () => client.createEntity({ partitionKey: 'tx', rowKey: 'new', n: 12 }).then(() => undefined));
  await get('tx', 'fresh');

  await step('everything, in order', async () => {
    const all: Props[] = [];
    for await (const e of client.listEntities<Props>()) all.push(clean(e as TableEntityResult<Props>));
    return all;
  });
  const pagesOf = async (filter: string | undefined, size: number) => {
    const pages: string[][] = [];
    const iterator = client.listEntities<Props>({ queryOptions: filter === undefined ? {} : { filter } }).byPage({ maxPageSize: size });
    for await (const page of iterator) pages.push(page.map((e) => `${e.partitionKey}/${e.rowKey}`));
    return pages;
  };
  await step('everything, 5 a page', () => pagesOf(undefined, 5));
  await step('a RowKey range in one partition, 3 a page', () => pagesOf("PartitionKey eq 'page' and RowKey ge 'r10' and RowKey lt 'r20'", 3));
  await step('across partitions by a property, 4 a page', () => pagesOf('n lt 10', 4));
  await step('partitions from 10 on, 2 a page', () => pagesOf("PartitionKey ge '10'", 2));
  await step('a filter nothing matches', () => pagesOf('n eq 12345', 2));

  // A table dropped and made again starts empty, whatever its old rows were.
  await step('delete and re-create the table', async () => {
    await client.deleteTable();
    // Azurite may keep the name a moment; try a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.createTable();
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  });
  await get('p', 'a');
  await step('create p/a in the new table', () => client.createEntity({ partitionKey: 'p', rowKey: 'a', n: 13 } as TableEntity).then(() => undefined));
  await get('p', 'a');
  return steps;
}

const outcomeOf = (story: Step[], name: string): Step => {
  const found = story.find((s) => s.step === name);
  if (!found) throw new Error(`no step ${name}`);
  return found;
};

beforeAll(async () => {
  [stock, indexed] = await Promise.all([startAzurite(), startIndexedAzurite({ verify: true })]);
  stockStory = await tell(stock.connectionString);
  indexedStory = await tell(indexed.connectionString);
}, 120_000);

afterAll(async () => {
  await Promise.all([stock?.stop(), indexed?.stop()]);
});

describe("the benchmark's indexed Azurite", () => {
  it('When the same Table Storage story is told to stock and indexed Azurite, then every step comes out the same', () => {
    expect(indexedStory.length).toBeGreaterThan(60);
    expect(indexedStory).toEqual(stockStory);
  });

  it('When the story runs on the indexed Azurite, then it behaves as Table Storage does: 409, 412, 404, merged and replaced entities, pages, rolled-back transactions', () => {
    const s = (name: string) => outcomeOf(indexedStory, name);
    expect(s('create p/a again').outcome).toMatch(/^409 EntityAlreadyExists/);
    expect(s('update Merge p/a with a stale etag').outcome).toMatch(/^412 /);
    expect(s('update Replace p/a with a stale etag').outcome).toMatch(/^412 /);
    expect(s('delete p/b with a stale etag').outcome).toMatch(/^412 /);
    expect(s('update Merge missing p/zz').outcome).toMatch(/^404 /);
    expect(s('delete p/b again').outcome).toMatch(/^404 /);
    expect(s('create 10/01').outcome).toBe('ok');
    const reads = indexedStory.filter((x) => x.step.startsWith('get '));
    const read = (key: string, nth = 0) => reads.filter((x) => x.step === `get ${key}`)[nth];
    expect(read('p/a', 0)!.outcome).toMatch(/^404 /);
    expect(read('p/a', 2)!.read).toEqual({ partitionKey: 'p', rowKey: 'a', m: 2 });
    expect(read('p/a', 3)!.read).toEqual({ partitionKey: 'p', rowKey: 'a', m: 2, n: 3 });
    // Stale etags changed nothing; the current one replaced the whole entity.
    expect(read('p/a', 4)!.read).toEqual({ partitionKey: 'p', rowKey: 'a', m: 2, n: 3, s: 'two' });
    expect(read('p/a', 5)!.read).toEqual({ partitionKey: 'p', rowKey: 'a', s: 'six' });
    expect(read('10/1')!.read).toMatchObject({ n: 7 });
    expect(read('010/01')!.read).toMatchObject({ n: 8 });
    expect(read('10/01')!.read).toMatchObject({ n: 9 });
    expect(read('010/1')!.outcome).toMatch(/^404 /);
    expect(s('query page, n ge 5 and even, 4 a page').read).toEqual([
      ['r06:6', 'r08:8', 'r10:10', 'r12:12'],
      ['r14:14', 'r16:16', 'r18:18', 'r20:20'],
      ['r22:22', 'r24:24', 'r26:26', 'r28:28'],
    ]);
    expect(s('transaction: creates, upsert Replace, upsert Merge, update, delete').read).toBe(202);
    expect(read('tx/updated', 0)!.read).toEqual({ partitionKey: 'tx', rowKey: 'updated', n: 40, keep: 'yes' });
    expect(read('tx/deleted')!.outcome).toMatch(/^404 /);
    expect(s('transaction failing at a create that exists: rolled back').outcome).toBe('409 EntityAlreadyExists at operation 5');
    expect(read('tx/fresh', 0)!.outcome).toMatch(/^404 /);
    expect(read('tx/new', 1)!.read).toEqual({ partitionKey: 'tx', rowKey: 'new', n: 1 });
    expect(read('tx/replaced', 1)!.read).toEqual({ partitionKey: 'tx', rowKey: 'replaced', n: 2 });
    expect(read('tx/merged', 1)!.read).toEqual({ partitionKey: 'tx', rowKey: 'merged', n: 3 });
    expect(read('tx/updated', 1)!.read).toEqual({ partitionKey: 'tx', rowKey: 'updated', n: 40, keep: 'yes' });
    expect(s('transaction failing at a stale etag: rolled back').outcome).toMatch(/^412 /);
    expect(read('tx/fresh2')!.outcome).toMatch(/^404 /);
    expect(read('tx/replaced', 2)!.read).toEqual({ partitionKey: 'tx', rowKey: 'replaced', n: 2 });
    expect(read('tx/merged', 2)!.read).toEqual({ partitionKey: 'tx', rowKey: 'merged', n: 31 });
    expect(s('transaction failing at a missing entity: rolled back').outcome).toMatch(/^404 /);
    expect(read('tx/fresh3')!.outcome).toMatch(/^404 /);
    expect(s('create tx/fresh after the rollback').outcome).toBe('ok');
    expect(s('create tx/new after the rollback (it exists)').outcome).toMatch(/^409 /);
    expect(s('a RowKey range in one partition, 3 a page').read).toEqual([
      ['page/r10', 'page/r11', 'page/r12'],
      ['page/r13', 'page/r14', 'page/r15'],
      ['page/r16', 'page/r17', 'page/r18'],
      ['page/r19'],
    ]);
    expect(s('a filter nothing matches').read).toEqual([[]]);
    expect((s('everything, 5 a page').read as string[][]).flat()).toEqual((s('everything, in order').read as Props[]).map((e) => `${String(e.partitionKey)}/${String(e.rowKey)}`));
    expect(read('p/a', 6)!.outcome).toMatch(/^404 /);
    expect(read('p/a', 7)!.read).toEqual({ partitionKey: 'p', rowKey: 'a', n: 13 });
  });

  it('When the story ran, then the index answered its point lookups and query pages, and each answer matched LokiJS scanning', async () => {
    const stats = await indexed.indexStats();
    expect(stats.indexedLookups).toBeGreaterThan(100);
    expect(stats.indexedQueries).toBeGreaterThan(40);
    expect(stats.otherQueries).toBe(0);
    expect(stats.verified).toBe(stats.indexedLookups + stats.indexedQueries);
    // The first table, the re-created one and the probe's.
    expect(stats.collections).toBeGreaterThanOrEqual(3);
  });

  it('When the preload finds no Azurite store to patch, then the process fails at start and says why', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-index-'));
    const script = path.join(dir, 'main.js');
    fs.writeFileSync(script, "console.log('ran unindexed');");
    const run = spawnSync(process.execPath, ['--require', PRELOAD, script], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(run.status).not.toBe(0);
    expect(run.stdout).not.toContain('ran unindexed');
    expect(run.stderr).toContain("cannot index Azurite's entity collections");
    expect(run.stderr).toContain('LokiTableMetadataStore.js does not exist');
  });
});
