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
 * Invariants:
 * - Same answers as stock Azurite. `findOne` with exactly two string properties, PartitionKey and
 *   RowKey, is answered from a Map to the entity's LokiJS id; that is LokiJS's own semantics (its
 *   $eq is ===, and the store keeps one entity per key). Every other query goes to LokiJS unchanged.
 *   The binary indices of entity collections are dropped: only that findOne used them (queries use
 *   `where` with a function, which never reads an index), and keeping them up costs a scan of the
 *   partition per remove.
 * - The Map follows every way an entity enters, changes or leaves a collection: `insertOne`,
 *   `update` and `remove` keep it in step one entity at a time; every other mutating method rebuilds
 *   it. A lookup whose id no longer holds that key throws instead of answering.
 * - Never silently unindexed: when the internals it patches are not there, loading throws (Azurite
 *   exits before it is ready and startAzurite says why); the harness asks over IPC how many lookups
 *   the index answered (test/bench/azurite-indexed.ts) and refuses to run when it answered none.
 *
 * Not indexed: queries. Each page of a query still filters and sorts the whole table in LokiJS, so
 * reading 100,000 links in pages of 1,000 costs Azurite about 10 s of CPU (measured in a quiet
 * cycle, 2026-12-02): at that size the no-change and provision rows are Azurite's time again.
 *
 * TVSYNC_BENCH_AZURITE_VERIFY=1: each indexed lookup also runs LokiJS's own findOne and throws when
 * they differ (test/bench/azurite-index.test.ts runs so). The IPC message INDEX_OFF puts stock
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
  /** Indexed lookups checked against LokiJS's findOne (TVSYNC_BENCH_AZURITE_VERIFY=1). */
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

const stats: IndexStats = { azuriteVersion: 'unknown', collections: 0, indexedLookups: 0, otherLookups: 0, rebuilds: 0, verified: 0, on: true };
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

function indexCollection(collection: Collection): void {
  if ((collection as unknown as Record<symbol, unknown>)[INDEXED]) return;
  const ids = new Map<string, number>();
  const original = {
    findOne: collection.findOne,
    insertOne: collection.insertOne,
    update: collection.update,
    remove: collection.remove,
  };
  const broken = (why: string) => new Error(`tvsync bench index (collection ${collection.name}): ${why}`);

  const track = (entity: Entity | null | undefined): void => {
    if (!entity || typeof entity.$loki !== 'number') return;
    const key = entityKey(entity);
    if (key === null) return;
    const held = ids.get(key);
    if (held !== undefined && held !== entity.$loki && collection.get(held)) {
      throw broken(`two entities hold (${String(entity.PartitionKey)}, ${String(entity.RowKey)}): ids ${held} and ${entity.$loki}`);
    }
    ids.set(key, entity.$loki);
  };
  const untrack = (key: string | null, id: number): void => {
    if (key !== null && ids.get(key) === id && !collection.get(id)) ids.delete(key);
  };
  const rebuild = (): void => {
    ids.clear();
    for (const entity of collection.data) track(entity);
    stats.rebuilds++;
  };

  collection.findOne = function (this: Collection, query: unknown) {
    const point = pointQuery(query);
    if (!point) {
      stats.otherLookups++;
      return original.findOne.call(this, query);
    }
    const id = ids.get(keyOf(point.partitionKey, point.rowKey));
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
    if (keyBefore !== keyAfter && keyBefore !== null && ids.get(keyBefore) === id) ids.delete(keyBefore);
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

  const dropped = Object.keys(collection.binaryIndices);
  for (const name of dropped) delete collection.binaryIndices[name];
  rebuild();
  restores.push(() => {
    for (const name of ['findOne', 'insertOne', 'update', 'remove', ...BULK_MUTATORS]) delete (collection as unknown as Record<string, unknown>)[name];
    const ensureIndex = (collection as unknown as { ensureIndex(name: string, force: boolean): void }).ensureIndex;
    for (const name of dropped) ensureIndex.call(collection, name, true);
    delete (collection as unknown as Record<symbol, unknown>)[INDEXED];
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
