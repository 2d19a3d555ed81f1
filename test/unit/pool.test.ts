import { describe, expect, it } from 'vitest';
import { createPool, mapWithConcurrency } from '../../shared/http/pool';

const tick = (ms = 1) => new Promise((resolve) => setTimeout(resolve, ms));

/** A task runner that records how many run at once. */
function meter() {
  let running = 0;
  let peak = 0;
  return {
    get peak() {
      return peak;
    },
    async run<T>(value: T, ms: number): Promise<T> {
      running++;
      peak = Math.max(peak, running);
      await tick(ms);
      running--;
      return value;
    },
  };
}

describe('createPool', () => {
  it('never runs more than the limit at once, and runs everything', async () => {
    const pool = createPool(3);
    const m = meter();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run(() => m.run(i, 2 + (i % 3)))));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(m.peak).toBe(3);
    expect(pool.active).toBe(0);
    expect(pool.waiting).toBe(0);
  });

  it('starts waiting tasks in submission order', async () => {
    const pool = createPool(1);
    const started: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => pool.run(async () => {
      started.push(i);
      await tick();
    })));
    expect(started).toEqual([0, 1, 2, 3]);
  });

  it('frees the slot of a failed task without touching the others', async () => {
    const pool = createPool(1);
    const failing = pool.run(async () => {
      throw new Error('boom');
    });
    const syncThrow = pool.run(() => {
      throw new Error('sync boom');
    });
    const ok = pool.run(async () => 'fine');
    await expect(failing).rejects.toThrow('boom');
    await expect(syncThrow).rejects.toThrow('sync boom');
    await expect(ok).resolves.toBe('fine');
    expect(pool.active).toBe(0);
  });

  it('reports running and waiting tasks', async () => {
    const pool = createPool(2);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const all = Promise.all([1, 2, 3, 4, 5].map(() => pool.run(() => gate)));
    await tick();
    expect([pool.active, pool.waiting]).toEqual([2, 3]);
    release();
    await all;
    expect([pool.active, pool.waiting]).toEqual([0, 0]);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses the limit %d', (limit) => {
    expect(() => createPool(limit)).toThrow(RangeError);
  });
});

describe('mapWithConcurrency', () => {
  it('keeps the items\' order whatever order the calls finish in, within the limit', async () => {
    const m = meter();
    const items = [30, 5, 20, 1, 10, 2, 8];
    const results = await mapWithConcurrency(items, 3, (ms, i) => m.run(`${i}:${ms}`, ms));
    expect(results).toEqual(items.map((ms, i) => `${i}:${ms}`));
    expect(m.peak).toBe(3);
  });

  it('answers [] for no items', async () => {
    expect(await mapWithConcurrency([], 4, async () => 1)).toEqual([]);
  });

  it('starts nothing after the first failure, waits for the calls in flight, then throws that failure', async () => {
    const started: number[] = [];
    const finished: number[] = [];
    // Item 1 is held open by hand until item 2 has failed: no timing involved.
    let releaseItem1!: () => void;
    const item1Gate = new Promise<void>((resolve) => (releaseItem1 = resolve));
    const run = mapWithConcurrency([0, 1, 2, 3, 4, 5, 6, 7], 2, async (i) => {
      started.push(i);
      if (i === 1) await item1Gate;
      else await Promise.resolve();
      if (i === 2) {
        setImmediate(releaseItem1);
        throw new Error('item 2 failed');
      }
      finished.push(i);
      return i;
    });
    await expect(run).rejects.toThrow('item 2 failed');
    expect(started).toEqual([0, 1, 2]);
    // Item 1 was still running when item 2 failed: it was awaited, not abandoned.
    expect(finished).toEqual([0, 1]);
  });
});
