/**
 * What the (PartitionKey, RowKey) index buys: upserts and point reads into one partition of a
 * stock and an indexed Azurite, at a given table size.
 *
 *   node dist/test/bench/azurite-index-timing.js [--rows 10000,100000] [--ops 20000]
 *        [--variants stock,indexed,stock-quick-fill] [--stock-ops N]
 *
 * Per variant and size: a fresh Azurite, a table filled with `rows` entities in one partition
 * (entity-group transactions of 100 upserts, timed too), then `ops` upserts (Replace, of existing
 * rows, a property changed) and `ops` point reads of random rows, one request at a time from one
 * client, then the whole partition listed in pages of 1,000 (as tvsync reads its links). Prints
 * ms per operation (HTTP and the SDK included).
 *
 * stock-quick-fill: filled through the index, which is then turned off (stock LokiJS methods and
 * binary indices from then on): stock Azurite's cost per operation at a size whose stock fill
 * would take most of an hour (it grows with the square of the rows). --stock-ops caps the
 * operations of both stock variants (each costs the same at a given size, so fewer give the same
 * ms/op sooner).
 */
import { TableClient, TableTransaction } from '@azure/data-tables';
import os from 'node:os';
import { startAzurite, type Azurite } from '../support/azurite';
import { startIndexedAzurite } from './azurite-indexed';

interface Timing {
  variant: string;
  rows: number;
  fillSeconds: number;
  upserts: number;
  upsertMs: number;
  reads: number;
  readMs: number;
  listSeconds: number;
  pages: number;
  load: number[];
}

const PARTITION = 'links';
const rowKey = (i: number) => `user-${String(i).padStart(7, '0')}`;

/** A fixed pseudo-random sequence, so both variants touch the same rows. */
function* randomRows(rows: number, seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    yield x % rows;
  }
}

type Variant = 'stock' | 'indexed' | 'stock-quick-fill';

async function measure(variant: Variant, rows: number, ops: number): Promise<Timing> {
  const indexed = variant === 'stock' ? null : await startIndexedAzurite();
  const azurite: Azurite = indexed ?? (await startAzurite());
  try {
    const client = TableClient.fromConnectionString(azurite.connectionString, 'timing', { allowInsecureConnection: true });
    await client.createTable();
    const filling = process.hrtime.bigint();
    for (let start = 0; start < rows; start += 100) {
      const tx = new TableTransaction();
      for (let i = start; i < Math.min(rows, start + 100); i++) tx.upsertEntity({ partitionKey: PARTITION, rowKey: rowKey(i), tvId: `u${i}`, version: 0 }, 'Replace');
      await client.submitTransaction(tx.actions);
    }
    const fillSeconds = Number(process.hrtime.bigint() - filling) / 1e9;
    if (variant === 'stock-quick-fill') {
      const stats = await indexed!.turnIndexOff();
      if (stats.on) throw new Error('the index did not turn off');
    }

    const upserting = process.hrtime.bigint();
    const upsertRows = randomRows(rows, 7);
    for (let n = 1; n <= ops; n++) {
      const i = upsertRows.next().value as number;
      await client.upsertEntity({ partitionKey: PARTITION, rowKey: rowKey(i), tvId: `u${i}`, version: n }, 'Replace');
    }
    const upsertMs = Number(process.hrtime.bigint() - upserting) / 1e6 / ops;

    const reading = process.hrtime.bigint();
    const readRows = randomRows(rows, 11);
    for (let n = 0; n < ops; n++) {
      const i = readRows.next().value as number;
      const entity = await client.getEntity<{ tvId: string }>(PARTITION, rowKey(i));
      if (entity.tvId !== `u${i}`) throw new Error(`read ${rowKey(i)} and got ${entity.tvId}`);
    }
    const readMs = Number(process.hrtime.bigint() - reading) / 1e6 / ops;

    const listing = process.hrtime.bigint();
    let pages = 0;
    let listed = 0;
    for await (const page of client.listEntities({ queryOptions: { filter: `PartitionKey eq '${PARTITION}'` } }).byPage({ maxPageSize: 1000 })) {
      pages++;
      listed += page.length;
    }
    if (listed !== rows) throw new Error(`listed ${listed} of ${rows} rows`);
    const listSeconds = Number(process.hrtime.bigint() - listing) / 1e9;
    if (indexed) {
      const stats = await indexed.indexStats();
      if ((variant === 'indexed') !== stats.on) throw new Error(`the index is ${stats.on ? 'on' : 'off'} after a ${variant} run`);
    }
    return { variant, rows, fillSeconds, upserts: ops, upsertMs, reads: ops, readMs, listSeconds, pages, load: os.loadavg() };
  } finally {
    await azurite.stop();
  }
}

async function main(argv: string[]): Promise<void> {
  const option = (name: string, fallback: string) => {
    const at = argv.indexOf(name);
    return at >= 0 && argv[at + 1] ? argv[at + 1]! : fallback;
  };
  const sizes = option('--rows', '10000,100000').split(',').map(Number);
  const ops = Number(option('--ops', '20000'));
  const stockOps = Number(option('--stock-ops', String(ops)));
  const variants = option('--variants', 'stock,indexed').split(',') as Variant[];
  process.stdout.write('| Azurite | rows in the partition | fill s (upserts in batches of 100) | upserts | ms/upsert | point reads | ms/read | list the partition, s (pages) | load 1m |\n|---|---|---|---|---|---|---|---|---|\n');
  for (const rows of sizes) {
    for (const variant of variants) {
      const t = await measure(variant, rows, variant === 'indexed' ? ops : stockOps);
      process.stdout.write(`| ${t.variant} | ${t.rows.toLocaleString('en-US')} | ${t.fillSeconds.toFixed(1)} | ${t.upserts.toLocaleString('en-US')} | ${t.upsertMs.toFixed(3)} | ${t.reads.toLocaleString('en-US')} | ${t.readMs.toFixed(3)} | ${t.listSeconds.toFixed(1)} (${t.pages}) | ${t.load[0]!.toFixed(2)} |\n`);
    }
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`timing failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
