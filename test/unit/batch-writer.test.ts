import { describe, expect, it } from 'vitest';
import { BatchWriter, type RowOp } from '../../shared/state/batch-writer';

/** A fake service: records each transaction; each one waits until released (or fails if a row is 'bad'). */
function service() {
  const sent: RowOp[][] = [];
  const gates: Array<() => void> = [];
  let autoRelease = true;
  const writer = new BatchWriter(async (ops) => {
    sent.push([...ops]);
    if (!autoRelease) await new Promise<void>((resolve) => gates.push(resolve));
    if (ops.some((op) => op.rowKey.startsWith('bad'))) throw new Error(`refused ${ops.map((op) => op.rowKey).join(',')}`);
  });
  return {
    writer,
    sent,
    hold() {
      autoRelease = false;
    },
    /** Lets the transactions waiting now go on; later ones wait too. */
    release() {
      for (const gate of gates.splice(0)) gate();
    },
    releaseAll() {
      autoRelease = true;
      for (const gate of gates.splice(0)) gate();
    },
  };
}

const put = (rowKey: string, value = 1): RowOp => ({ kind: 'upsert', rowKey, entity: { value } });
const keys = (ops: RowOp[]) => ops.map((op) => op.rowKey);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('BatchWriter', () => {
  it('When writes are made in the same turn, then they travel in one transaction, in order', async () => {
    const { writer, sent } = service();
    await Promise.all(['a', 'b', 'c'].map((k) => writer.write(k, [put(k)])));
    expect(sent.map(keys)).toEqual([['a', 'b', 'c']]);
  });

  it('When a transaction is in flight, then a write waits for the next one and settles only once that one committed', async () => {
    const s = service();
    s.hold();
    const first = s.writer.write('a', [put('a')]);
    await tick();
    expect(s.sent).toHaveLength(1);
    let secondDone = false;
    const second = s.writer.write('b', [put('b')]).then(() => (secondDone = true));
    const third = s.writer.write('c', [put('c')]);
    await tick();
    expect(s.sent).toHaveLength(1); // nothing sent beside the transaction in flight
    s.release();
    await first;
    await tick();
    expect(s.sent.map(keys)).toEqual([['a'], ['b', 'c']]);
    expect(secondDone).toBe(false); // its transaction is held
    s.releaseAll();
    await Promise.all([second, third]);
    expect(secondDone).toBe(true);
  });

  it('When one row is written twice before it is sent, then only the later version is sent and both callers settle', async () => {
    const { writer, sent } = service();
    await Promise.all([writer.write('a', [put('a', 1)]), writer.write('a', [put('a', 2)])]);
    expect(sent).toEqual([[put('a', 2)]]);
  });

  it('When a row is written again while its first write is in flight, then the second goes in a later transaction', async () => {
    const s = service();
    s.hold();
    const first = s.writer.write('a', [put('a', 1)]);
    await tick();
    const second = s.writer.write('a', [put('a', 2)]);
    s.releaseAll();
    await first;
    await tick();
    s.releaseAll();
    await second;
    expect(s.sent).toEqual([[put('a', 1)], [put('a', 2)]]);
  });

  it('When a shared transaction is refused, then each unit is tried alone and only the bad one fails', async () => {
    const { writer, sent } = service();
    const results = await Promise.allSettled([writer.write('a', [put('a')]), writer.write('bad', [put('bad')]), writer.write('c', [put('c')])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(sent.map(keys)).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  });

  it('When more than 100 rows are queued, then transactions hold at most 100 and a unit is never split', async () => {
    const { writer, sent } = service();
    const units = Array.from({ length: 70 }, (_, i) => writer.write(`u${i}`, [put(`link-${i}`), put(`index-${i}`)]));
    await Promise.all(units);
    expect(sent.map((t) => t.length)).toEqual([100, 40]);
    for (const transaction of sent) {
      for (const op of transaction) if (op.rowKey.startsWith('link-')) expect(keys(transaction)).toContain(`index-${op.rowKey.slice(5)}`);
    }
  });

  it('When two units name the same row, then they go in different transactions (the service refuses a row twice)', async () => {
    const { writer, sent } = service();
    await Promise.all([writer.write('x', [put('link-x'), put('index-7')]), writer.write('y', [put('link-y'), put('index-7')])]);
    expect(sent.map(keys)).toEqual([['link-x', 'index-7'], ['link-y', 'index-7']]);
  });
});
