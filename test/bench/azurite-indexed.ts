/**
 * The benchmark's Azurite: the test suite's startAzurite with the (PartitionKey, RowKey) index of
 * azurite-index-preload.ts loaded into it, so Azurite's cost per entity operation does not grow
 * with the table (see that file for why and how).
 *
 * Invariant: once startIndexedAzurite resolves, the index answered the point lookups of a probe
 * (create a table, upsert, read, delete it); otherwise it throws and the benchmark does not run.
 */
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { startAzurite, type Azurite } from '../support/azurite';
// Type only: loading the preload here would patch nothing and fail (it belongs in Azurite's node).
import type { IndexStats } from './azurite-index-preload';

/** The compiled preload: next to this file in dist, or in dist when tests run this file from source. */
export const PRELOAD = path.extname(__filename) === '.ts'
  ? path.resolve(__dirname, '..', '..', 'dist', 'test', 'bench', 'azurite-index-preload.js')
  : path.join(__dirname, 'azurite-index-preload.js');
/** The IPC messages of the preload (its STATS_REQUEST and INDEX_OFF). */
const STATS_REQUEST = 'tvsync-bench-azurite-index-stats';
const INDEX_OFF = 'tvsync-bench-azurite-index-off';

export interface IndexedAzurite extends Azurite {
  /** What the index did so far (asked over IPC). */
  indexStats(): Promise<IndexStats>;
  /** Stock LokiJS again from now on (for azurite-index-timing.ts); resolves with the stats. */
  turnIndexOff(): Promise<IndexStats>;
}

export async function startIndexedAzurite(options: { verify?: boolean } = {}): Promise<IndexedAzurite> {
  const previous = process.env.TVSYNC_BENCH_AZURITE_VERIFY;
  // The child inherits the environment at spawn.
  if (options.verify) process.env.TVSYNC_BENCH_AZURITE_VERIFY = '1';
  let azurite: Azurite;
  try {
    azurite = await startAzurite({ preload: PRELOAD });
  } finally {
    if (previous === undefined) delete process.env.TVSYNC_BENCH_AZURITE_VERIFY;
    else process.env.TVSYNC_BENCH_AZURITE_VERIFY = previous;
  }
  const indexed: IndexedAzurite = { ...azurite, indexStats: () => ask(azurite, STATS_REQUEST), turnIndexOff: () => ask(azurite, INDEX_OFF) };
  try {
    await probe(indexed);
  } catch (error) {
    await azurite.stop();
    throw error;
  }
  return indexed;
}

function ask(azurite: Azurite, request: string): Promise<IndexStats> {
  const child = azurite.process;
  return new Promise((resolve, reject) => {
    if (!child.connected) return reject(new Error('Azurite has no IPC channel to its index (not started with the preload, or gone)'));
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`Azurite's index did not answer ${request} within 5 s (the preload is not loaded?)`));
    }, 5_000);
    const onMessage = (message: unknown) => {
      const stats = (message as Record<string, IndexStats> | null)?.[STATS_REQUEST];
      if (!stats) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(stats);
    };
    child.on('message', onMessage);
    child.send(request);
  });
}

async function probe(azurite: IndexedAzurite): Promise<void> {
  const table = `benchindexprobe${Date.now()}`;
  const client = TableClient.fromConnectionString(azurite.connectionString, table, { allowInsecureConnection: true });
  const before = await azurite.indexStats();
  await client.createTable();
  try {
    await client.upsertEntity({ partitionKey: 'probe', rowKey: 'one', value: 1 }, 'Replace');
    const read = await client.getEntity<{ value: number }>('probe', 'one');
    if (read.value !== 1) throw new Error(`Azurite's index probe read back ${JSON.stringify(read)}`);
  } finally {
    await client.deleteTable();
  }
  const after = await azurite.indexStats();
  // The upsert looks the key up (insert or replace?) and so does the read.
  if (after.indexedLookups - before.indexedLookups < 2 || after.collections < 1) {
    throw new Error(`Azurite's (PartitionKey, RowKey) index is not in use (Azurite ${after.azuriteVersion}: ${JSON.stringify(after)}); the benchmark would measure an unindexed Azurite`);
  }
}
