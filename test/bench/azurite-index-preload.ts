/**
 * Loaded into the benchmark's Azurite with `node --require` (never into the test suite's Azurite):
 * every table's entity collection gets an index on (PartitionKey, RowKey), as Azure Table Storage
 * has, so a point read, insert, upsert, merge, replace or delete costs the same at any table size.
 *
 * Why: Azurite's LokiJS store (dist/src/table/persistence/LokiTableMetadataStore.js) finds an
 * entity with `findOne({ PartitionKey, RowKey })`. LokiJS answers that from its binary index on
 * PartitionKey and then scans the whole partition for the RowKey, and its remove (every upsert and
 * replace is a remove and an insert) scans the partition's index entries again. With tvsync's state
 * in one partition, each operation costs milliseconds at 10,000 rows and more at 100,000, and the
 * benchmark measured Azurite rather than tvsync.
 *
 * Queries suffer the same way: Azurite filters the whole table for every page of a query and
 * sorts all that is after the continuation (reading 100,000 links in pages of 1,000 cost it about
 * 10 s of CPU). Here a page comes from a key order kept next to the Map: walk from the
 * continuation, keep what Azurite's own filter accepts, stop after the page and one more row
 * (which gives the continuation).
 *
 * Invariants:
 * - Same answers as stock Azurite. `findOne` with exactly two string properties, PartitionKey and
 *   RowKey, is answered from a Map to the entity's LokiJS id: LokiJS's own semantics (its $eq is
 *   ===, and the store keeps one entity per key); every other findOne goes to LokiJS. A query page
 *   holds the entities Azurite's would, in its order (PartitionKey, then RowKey, by < and >), with
 *   the same continuation; a continuation with one key only goes to Azurite. (One difference: a
 *   filter that throws on some row fails every page in Azurite, here only a page that reaches it.)
 *   The binary indices of entity collections are dropped: only that findOne used them (queries
 *   filter with a function, which never reads an index), and keeping them up costs a scan of the
 *   partition per remove.
 * - The Map and the key order follow every way an entity enters, changes or leaves a collection:
 *   `insertOne`, `update` and `remove` keep them in step one entity at a time; every other mutating
 *   method rebuilds them. A lookup or page that finds an id gone throws instead of answering.
 * - Never silently unindexed: when the internals it patches (for lookups or queries) are not
 *   there, loading throws (Azurite exits before it is ready and startAzurite says why); the harness
 *   asks over IPC how many lookups the index answered (test/bench/azurite-indexed.ts) and refuses
 *   to run when it answered none.
 *
 * TVSYNC_BENCH_AZURITE_VERIFY=1: each indexed lookup and page is also computed by stock LokiJS and
 * Azurite, and a difference throws (test/bench/azurite-index.test.ts runs so). The IPC message INDEX_OFF puts stock
 * LokiJS back (its methods, binary indices rebuilt) on every collection, for azurite-index-timing.ts
 * to time stock lookups in a table it filled quickly through the index.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** What the index did, for the harness (over IPC). */
export interface IndexStats {
  azuriteVersion: string;
  /** Entity collections that got the index. */
  collections: number;
  /** findOne({ PartitionKey, RowKey }) answered from the index. */
  indexedLookups: number;
  /** Other findOne queries on entity collections, left to LokiJS. */
  otherLookups: number;
  /** Full rebuilds of a collection's Map (first use, bulk mutations). */
  rebuilds: number;
  /** Query pages answered from the key order. */
  indexedQueries: number;
  /** Query pages left to Azurite's own scan (a continuation with one key only, non-string keys). */
  otherQueries: number;
  /** Indexed lookups and query pages checked against LokiJS (TVSYNC_BENCH_AZURITE_VERIFY=1). */
  verified: number;
  /** False after INDEX_OFF. */
  on: boolean;
}

/** The IPC message asking for the stats; azurite-indexed.ts sends the same string. */
export const STATS_REQUEST = 'tvsync-bench-azurite-index-stats';
/** The IPC message turning the index off (answered with the stats); azurite-indexed.ts sends the same string. */
export const INDEX_OFF = 'tvsync-bench-azurite-index-off';

interface Entity {
  $loki?: number;
  PartitionKey?: unknown;
  RowKey?: unknown;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

interface Collection {
  name: string;
  data: Entity[];
  binaryIndices: Record<string, unknown>;
  findOne(query: unknown): Entity | null;
  insertOne(doc: Entity, bulk?: boolean): Entity | undefined;
  update(doc: Entity | Entity[]): unknown;
  remove(doc: Entity | Entity[] | number): unknown;
  get(id: number): Entity | null;
}

const VERIFY = process.env.TVSYNC_BENCH_AZURITE_VERIFY === '1';
/** Mutating LokiJS methods that do not go through insertOne/update/remove one entity at a time. */
const BULK_MUTATORS = ['clear', 'removeBatch', 'removeBatchByPositions', 'removeWhere', 'findAndRemove', 'removeDataOnly', 'updateWhere', 'findAndUpdate'];
const INDEXED = Symbol('tvsync-bench-index');

class IndexUnavailable extends Error {
  constructor(why: string) {
    super(`tvsync bench: cannot index Azurite's entity collections: ${why}. The benchmark will not run on an unindexed Azurite; see test/bench/azurite-index-preload.ts.`);
  }
}

const stats: IndexStats = { azuriteVersion: 'unknown', collections: 0, indexedLookups: 0, otherLookups: 0, rebuilds: 0, indexedQueries: 0, otherQueries: 0, verified: 0, on: true };
/** How to put stock LokiJS back on each indexed collection (INDEX_OFF). */
const restores: Array<() => void> = [];

/** Unambiguous for any two strings (the partition key's length comes first). */
const keyOf = (partitionKey: string, rowKey: string): string => `${partitionKey.length}:${partitionKey}${rowKey}`;

function entityKey(entity: Entity): string | null {
  return typeof entity.PartitionKey === 'string' && typeof entity.RowKey === 'string' ? keyOf(entity.PartitionKey, entity.RowKey) : null;
}

/** { PartitionKey: string, RowKey: string } and nothing else, or null. */
function pointQuery(query: unknown): { partitionKey: string; rowKey: string } | null {
  if (query === null || typeof query !== 'object') return null;
  const q = query as Record<string, unknown>;
  let properties = 0;
  for (const _ in q) properties++;
  if (properties !== 2 || typeof q.PartitionKey !== 'string' || typeof q.RowKey !== 'string') return null;
  return { partitionKey: q.PartitionKey, rowKey: q.RowKey };
}

/** One entity's keys and LokiJS id, in the Map and in the key order. */
interface Slot {
  id: number;
  partitionKey: string;
  rowKey: string;
}

/** Azurite's own sort of query results (LokiTableMetadataStore.queryTableEntities): PartitionKey, then RowKey, by < and >. */
function compareKeys(pkA: string, rkA: string, pkB: string, rkB: string): number {
  if (pkA > pkB) return 1;
  if (pkA === pkB) return rkA > rkB ? 1 : rkA === rkB ? 0 : -1;
  return -1;
}

/** A query page from the key order: up to `limit` entities from (pk, rk) on that `where` accepts; null when the index cannot answer. */
type Pager = (partitionKey: string | undefined, rowKey: string | undefined, where: (entity: Entity) => unknown, limit: number) => Entity[] | null;
const pagers = new WeakMap<object, Pager>();

function indexCollection(collection: Collection): void {
  if ((collection as unknown as Record<symbol, unknown>)[INDEXED]) return;
  const ids = new Map<string, Slot>();
  /** Every slot, sorted as Azurite sorts query results. */
  let order: Slot[] = [];
  /** False once an entity without two string keys was seen: queries then go to LokiJS. */
  let queryable = true;
  const original = {
    findOne: collection.findOne,
    insertOne: collection.insertOne,
    update: collection.update,
    remove: collection.remove,
  };
  const broken = (why: string) => new Error(`tvsync bench index (collection ${collection.name}): ${why}`);

  const lowerBound = (partitionKey: string, rowKey: string): number => {
    let low = 0;
    let high = order.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const slot = order[mid]!;
      if (compareKeys(slot.partitionKey, slot.rowKey, partitionKey, rowKey) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  };
  /** The slot for this entity's keys, new or taken over from an entity no longer stored; null for non-string keys. */
  const slotFor = (entity: Entity): { slot: Slot; fresh: boolean } | null => {
    const key = entityKey(entity);
    if (key === null) {
      queryable = false;
      return null;
    }
    const held = ids.get(key);
    if (held) {
      if (held.id !== entity.$loki && collection.get(held.id)) {
        throw broken(`two entities hold (${String(entity.PartitionKey)}, ${String(entity.RowKey)}): ids ${held.id} and ${entity.$loki}`);
      }
      held.id = entity.$loki!;
      return { slot: held, fresh: false };
    }
    const slot = { id: entity.$loki!, partitionKey: entity.PartitionKey as string, rowKey: entity.RowKey as string };
    ids.set(key, slot);
    return { slot, fresh: true };
  };
  const track = (entity: Entity | null | undefined): void => {
    if (!entity || typeof entity.$loki !== 'number') return;
    const found = slotFor(entity);
    if (found?.fresh) order.splice(lowerBound(found.slot.partitionKey, found.slot.rowKey), 0, found.slot);
  };
  const drop = (key: string): void => {
    const slot = ids.get(key)!;
    ids.delete(key);
    const at = lowerBound(slot.partitionKey, slot.rowKey);
    if (order[at] !== slot) throw broken(`(${slot.partitionKey}, ${slot.rowKey}) is not where the key order has it`);
    order.splice(at, 1);
  };
  const untrack = (key: string | null, id: number): void => {
    if (key !== null && ids.get(key)?.id === id && !collection.get(id)) drop(key);
  };
  const rebuild = (): void => {
    ids.clear();
    order = [];
    for (const entity of collection.data) {
      if (typeof entity.$loki !== 'number') continue;
      const found = slotFor(entity);
      if (found?.fresh) order.push(found.slot);
    }
    order.sort((a, b) => compareKeys(a.partitionKey, a.rowKey, b.partitionKey, b.rowKey));
    stats.rebuilds++;
  };

  collection.findOne = function (this: Collection, query: unknown) {
    const point = pointQuery(query);
    if (!point) {
      stats.otherLookups++;
      return original.findOne.call(this, query);
    }
    const id = ids.get(keyOf(point.partitionKey, point.rowKey))?.id;
    const found = id === undefined ? null : collection.get(id);
    if (id !== undefined && (!found || found.PartitionKey !== point.partitionKey || found.RowKey !== point.rowKey)) {
      throw broken(`id ${id} no longer holds (${point.partitionKey}, ${point.rowKey})`);
    }
    stats.indexedLookups++;
    if (VERIFY) {
      const scanned = original.findOne.call(this, query);
      if (scanned !== found) throw broken(`index and LokiJS differ for (${point.partitionKey}, ${point.rowKey}): ${found?.$loki ?? 'none'} vs ${scanned?.$loki ?? 'none'}`);
      stats.verified++;
    }
    return found;
  };

  collection.insertOne = function (this: Collection, doc: Entity, bulk?: boolean) {
    const inserted = original.insertOne.call(this, doc, bulk);
    if (inserted && typeof inserted.$loki === 'number') track(collection.get(inserted.$loki));
    return inserted;
  };

  // An array is updated one entity at a time through this.update, so through this wrapper.
  collection.update = function (this: Collection, doc: Entity | Entity[]) {
    if (Array.isArray(doc) || typeof doc?.$loki !== 'number') return original.update.call(this, doc);
    const id = doc.$loki;
    const before = collection.get(id);
    const keyBefore = before ? entityKey(before) : null;
    const result = original.update.call(this, doc);
    const after = collection.get(id);
    const keyAfter = after ? entityKey(after) : null;
    if (keyBefore !== keyAfter && keyBefore !== null && ids.get(keyBefore)?.id === id) drop(keyBefore);
    track(after);
    return result;
  };

  // LokiJS's remove returns null instead of throwing when it fails: what is gone is what get() no
  // longer finds. An array goes to removeBatch, which rebuilds.
  collection.remove = function (this: Collection, doc: Entity | Entity[] | number) {
    const id = typeof doc === 'number' ? doc : Array.isArray(doc) ? undefined : doc?.$loki;
    const stored = typeof id === 'number' ? collection.get(id) : null;
    const key = stored ? entityKey(stored) : null;
    const result = original.remove.call(this, doc);
    if (typeof id === 'number') untrack(key, id);
    return result;
  };

  for (const name of BULK_MUTATORS) {
    const method = (collection as unknown as Record<string, Method | undefined>)[name];
    if (typeof method !== 'function') continue;
    (collection as unknown as Record<string, Method>)[name] = function (this: unknown, ...args: unknown[]) {
      try {
        return method.apply(this, args);
      } finally {
        rebuild();
      }
    };
  }

  // Rows from (partitionKey, rowKey) on in key order — what Azurite's continuation selects — that
  // `where` accepts (=== true, as LokiJS's Resultset.where), until `limit`.
  pagers.set(collection, (partitionKey, rowKey, where, limit) => {
    if (!queryable) return null;
    const page: Entity[] = [];
    for (let at = partitionKey === undefined ? 0 : lowerBound(partitionKey, rowKey!); at < order.length && page.length < limit; at++) {
      const entity = collection.get(order[at]!.id);
      if (!entity) throw broken(`the key order holds id ${order[at]!.id}, which is gone`);
      if (where(entity) === true) page.push(entity);
    }
    return page;
  });

  const dropped = Object.keys(collection.binaryIndices);
  for (const name of dropped) delete collection.binaryIndices[name];
  rebuild();
  restores.push(() => {
    for (const name of ['findOne', 'insertOne', 'update', 'remove', ...BULK_MUTATORS]) delete (collection as unknown as Record<string, unknown>)[name];
    const ensureIndex = (collection as unknown as { ensureIndex(name: string, force: boolean): void }).ensureIndex;
    for (const name of dropped) ensureIndex.call(collection, name, true);
    delete (collection as unknown as Record<symbol, unknown>)[INDEXED];
    pagers.delete(collection);
  });
  (collection as unknown as Record<symbol, unknown>)[INDEXED] = true;
  stats.collections++;
}

function install(): void {
  // The script node runs is Azurite's table entry (dist/src/table/main.js): patch the store that
  // very installation loads, whatever its version.
  const entry = process.argv[1];
  if (!entry) throw new IndexUnavailable('no script to run (expected azurite/dist/src/table/main.js)');
  const storeFile = path.join(path.dirname(fs.realpathSync(entry)), 'persistence', 'LokiTableMetadataStore.js');
  if (!fs.existsSync(storeFile)) throw new IndexUnavailable(`${storeFile} does not exist (is ${entry} Azurite's table entry?)`);
  const requireFromStore = createRequire(storeFile);
  const manifest = path.join(storeFile, '..', '..', '..', '..', '..', 'package.json');
  if (fs.existsSync(manifest)) stats.azuriteVersion = String((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version?: string }).version);

  const store = (requireFromStore(storeFile) as { default?: { prototype?: Record<string, unknown> } }).default?.prototype;
  if (!store || typeof store.getEntityCollection !== 'function') throw new IndexUnavailable(`${storeFile} exports no class with getEntityCollection (Azurite ${stats.azuriteVersion})`);
  const source = fs.readFileSync(storeFile, 'utf8');
  if (!/\.findOne\(\{\s*PartitionKey:[^,]+,\s*RowKey:/.test(source)) throw new IndexUnavailable(`${storeFile} does not look entities up with findOne({ PartitionKey, RowKey }) (Azurite ${stats.azuriteVersion})`);

  const loki = requireFromStore('lokijs') as { Collection?: { prototype?: Record<string, unknown> } };
  const collection = loki.Collection?.prototype;
  const needed = ['findOne', 'insertOne', 'update', 'remove', 'get'];
  const missing = needed.filter((m) => typeof collection?.[m] !== 'function');
  if (missing.length) throw new IndexUnavailable(`LokiJS's Collection has no ${missing.join(', ')}`);

  const getEntityCollection = store.getEntityCollection as Method;
  store.getEntityCollection = function (this: unknown, ...args: unknown[]) {
    const found = getEntityCollection.apply(this, args) as Collection;
    for (const field of ['data', 'binaryIndices'] as const) {
      if (!found || typeof found[field] !== 'object') throw new IndexUnavailable(`an entity collection has no ${field}`);
    }
    if (stats.on) indexCollection(found);
    return found;
  };

  // Azurite's query: every page filters the whole table, sorts what is left after the
  // continuation and keeps maxResults + 1. The same page, from the key order: walk from the
  // continuation, keep what the filter accepts, stop at maxResults + 1.
  const generator = (requireFromStore('./LokiTableStoreQueryGenerator') as { default?: { generateQueryForPersistenceLayer?: unknown } }).default;
  const queryHelpers = ['queryTableEntities', 'getMaxResultsOption', 'decodeContinuationHeader', 'adjustQueryResultforTop'];
  const missingHelpers = queryHelpers.filter((m) => typeof store[m] !== 'function');
  if (missingHelpers.length || typeof generator?.generateQueryForPersistenceLayer !== 'function') {
    throw new IndexUnavailable(`${storeFile} has no ${[...missingHelpers, ...(typeof generator?.generateQueryForPersistenceLayer === 'function' ? [] : ['LokiTableStoreQueryGenerator.generateQueryForPersistenceLayer'])].join(', ')} (Azurite ${stats.azuriteVersion})`);
  }
  const generateWhere = generator.generateQueryForPersistenceLayer as (queryOptions: unknown, context: unknown) => (entity: Entity) => unknown;
  const queryTableEntities = store.queryTableEntities as (...args: unknown[]) => Promise<[Entity[], string | undefined, string | undefined]>;
  interface StoreHelpers {
    getEntityCollection(account: unknown, table: unknown, context: unknown): Collection;
    getMaxResultsOption(queryOptions: unknown): number;
    decodeContinuationHeader(input: unknown): string | undefined;
    adjustQueryResultforTop(result: Entity[], maxResults: number): { nextPartitionKeyResponse?: string; nextRowKeyResponse?: string };
  }
  store.queryTableEntities = async function (this: StoreHelpers, ...args: unknown[]) {
    const [context, account, table, queryOptions, nextPartitionKey, nextRowKey] = args;
    const collection = this.getEntityCollection(account, table, context);
    const pager = pagers.get(collection);
    const partitionKey = this.decodeContinuationHeader(nextPartitionKey);
    const rowKey = this.decodeContinuationHeader(nextRowKey);
    // Azurite's continuation with one key only is not a place in the key order: leave it to Azurite.
    if (!pager || (partitionKey === undefined) !== (rowKey === undefined)) {
      stats.otherQueries++;
      return queryTableEntities.apply(this, args);
    }
    const where = generateWhere(queryOptions, context);
    const maxResults = this.getMaxResultsOption(queryOptions);
    const result = pager(partitionKey, rowKey, where, maxResults + 1);
    if (!result) {
      stats.otherQueries++;
      return queryTableEntities.apply(this, args);
    }
    const response = this.adjustQueryResultforTop(result, maxResults);
    const answer: [Entity[], string | undefined, string | undefined] = [result, response.nextPartitionKeyResponse, response.nextRowKeyResponse];
    stats.indexedQueries++;
    if (VERIFY) {
      const scanned = await queryTableEntities.apply(this, args);
      const same = scanned[0].length === result.length && scanned[0].every((e, i) => e === result[i]) && scanned[1] === answer[1] && scanned[2] === answer[2];
      if (!same) {
        const show = (page: [Entity[], string | undefined, string | undefined]) => `${page[0].map((e) => `${String(e.PartitionKey)}/${String(e.RowKey)}`).join(',')} next ${page[1] ?? '-'} ${page[2] ?? '-'}`;
        throw new Error(`tvsync bench index: a query page differs from Azurite's: ${show(answer)} vs ${show(scanned)}`);
      }
      stats.verified++;
    }
    return answer;
  };

  if (process.send) {
    process.on('message', (message: unknown) => {
      if (message === INDEX_OFF) {
        stats.on = false;
        for (const restore of restores.splice(0)) restore();
      }
      if (message === STATS_REQUEST || message === INDEX_OFF) process.send!({ [STATS_REQUEST]: stats });
    });
    // The channel must not keep Azurite alive after the harness stopped it.
    process.channel?.unref();
  }
}

install();
