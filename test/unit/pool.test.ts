import { describe, expect, it } from 'vitest';
import { createAdaptivePool, createPool, mapWithConcurrency, type AdaptivePool, type Answer, type Sent } from '../../shared/http/pool';

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

/**
 * Tasks held open by hand: each one, once started, sends one request and waits until the test
 * answers it. No timing is involved: a test says which task's request gets which answer.
 */
function driver(pool: AdaptivePool) {
  const started: number[] = [];
  const requests = new Map<number, { sent: Sent; finish: () => void }>();
  const settled: Array<Promise<void>> = [];
  let submitted = 0;
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  return {
    started,
    /** Submits `count` more tasks, numbered in submission order. */
    async submit(count: number) {
      for (let i = 0; i < count; i++) {
        const id = submitted++;
        settled.push(pool.run(async () => {
          started.push(id);
          const sent = pool.sent();
          await new Promise<void>((finish) => requests.set(id, { sent, finish }));
        }));
      }
      await flush();
    },
    /** Running tasks, oldest first. */
    get running() {
      return [...requests.keys()];
    },
    /** Answers task `id`'s request, ends the task and lets the pool start what it starts; returns what `answered` returned. */
    async answer(id: number, answer: Answer): Promise<number | undefined> {
      const request = requests.get(id);
      if (!request) throw new Error(`task ${id} is not running`);
      requests.delete(id);
      const lowered = pool.answered(request.sent, answer);
      request.finish();
      await flush();
      return lowered;
    },
    /** Answers the oldest running task clean until the limit is `limit`. */
    async raiseTo(limit: number) {
      while (pool.limit < limit) await this.answer(this.running[0]!, 'clean');
    },
    async drain() {
      while (requests.size > 0) await this.answer(this.running[0]!, 'clean');
      await Promise.all(settled);
    },
  };
}

describe('createAdaptivePool', () => {
  it('starts at 4 requests in flight, or at the maximum when that is lower', async () => {
    const pool = createAdaptivePool(16);
    const d = driver(pool);
    await d.submit(10);
    expect([pool.limit, pool.active, pool.waiting, pool.max]).toEqual([4, 4, 6, 16]);
    expect(d.started).toEqual([0, 1, 2, 3]);
    await d.drain();
    expect(createAdaptivePool(2).limit).toBe(2);
  });

  it('rises by one after `limit` clean answers in a row while full, starting the next waiting task at once', async () => {
    const pool = createAdaptivePool(6);
    const d = driver(pool);
    await d.submit(40);
    for (const id of [0, 1, 2]) await d.answer(id, 'clean');
    expect(pool.limit).toBe(4);
    expect(pool.active).toBe(4);
    await d.answer(3, 'clean');
    expect(pool.limit).toBe(5);
    expect(pool.active).toBe(5);
    // Now 5 in a row are needed, not 4.
    for (let i = 0; i < 4; i++) await d.answer(d.running[0]!, 'clean');
    expect(pool.limit).toBe(5);
    await d.answer(d.running[0]!, 'clean');
    expect(pool.limit).toBe(6);
    // Never above the maximum.
    for (let i = 0; i < 20; i++) await d.answer(d.running[0]!, 'clean');
    expect([pool.limit, pool.peak, pool.active]).toEqual([6, 6, 6]);
    await d.drain();
  });

  it('does not rise on answers that came while it was not full (a limit nobody reached was not tried)', async () => {
    const pool = createAdaptivePool(16);
    const d = driver(pool);
    for (let i = 0; i < 20; i++) {
      await d.submit(1);
      await d.answer(d.running[0]!, 'clean');
    }
    expect(pool.limit).toBe(4);
  });

  it('starts counting clean answers again after a failed one (a timeout, a 5xx)', async () => {
    const pool = createAdaptivePool(16);
    const d = driver(pool);
    await d.submit(40);
    await d.raiseTo(5); // a fresh count
    for (let i = 0; i < 4; i++) await d.answer(d.running[0]!, 'clean');
    await d.answer(d.running[0]!, 'failed');
    for (let i = 0; i < 4; i++) await d.answer(d.running[0]!, 'clean');
    expect(pool.limit).toBe(5);
    await d.answer(d.running[0]!, 'clean');
    expect(pool.limit).toBe(6);
    await d.drain();
  });

  it('halves on a throttled answer, once for a whole burst, and again for a request sent after the halving', async () => {
    const pool = createAdaptivePool(16);
    const d = driver(pool);
    await d.submit(100);
    await d.raiseTo(9);
    const burst = d.running;
    expect(burst).toHaveLength(9);
    expect(await d.answer(burst[0]!, 'throttled')).toBe(4); // floor(9 / 2)
    for (const id of burst.slice(1)) expect(await d.answer(id, 'throttled')).toBeUndefined();
    expect([pool.limit, pool.lowered, pool.peak]).toEqual([4, 1, 9]);
    // The tasks started after the halving sent their requests under the new limit.
    const next = d.running;
    expect(next).toHaveLength(4);
    expect(await d.answer(next[0]!, 'throttled')).toBe(2);
    expect(await d.answer(next[1]!, 'throttled')).toBeUndefined();
    // Clean answers to requests sent before the halving do not raise it back.
    for (const id of next.slice(2)) await d.answer(id, 'clean');
    expect(pool.limit).toBe(2);
    const third = d.running;
    expect(third).toHaveLength(2);
    expect(await d.answer(third[0]!, 'throttled')).toBe(1);
    await d.answer(third[1]!, 'clean');
    // Never below 1, and staying at 1 is not a halving.
    expect(d.running).toHaveLength(1);
    expect(await d.answer(d.running[0]!, 'throttled')).toBeUndefined();
    expect([pool.limit, pool.lowered]).toEqual([1, 3]);
    await d.drain();
  });

  it('lets the tasks running when it halves keep their slots, and starts none until fewer than the new limit run', async () => {
    const pool = createAdaptivePool(16);
    const d = driver(pool);
    await d.submit(100);
    await d.raiseTo(8);
    const running = d.running;
    const startedBefore = d.started.length;
    await d.answer(running[0]!, 'throttled'); // 8 → 4, 7 still running
    expect([pool.limit, pool.active]).toEqual([4, 7]);
    for (const id of running.slice(1, 4)) await d.answer(id, 'clean');
    expect(pool.active).toBe(4);
    expect(d.started.length).toBe(startedBefore);
    await d.answer(running[4]!, 'clean');
    expect(pool.active).toBe(4);
    expect(d.started.length).toBe(startedBefore + 1);
    await d.drain();
  });

  it('starts waiting tasks in submission order, whether a slot frees, the limit rises or it was halved', async () => {
    const pool = createAdaptivePool(16);
    const d = driver(pool);
    await d.submit(60);
    await d.raiseTo(6);
    await d.answer(d.running[0]!, 'throttled');
    await d.raiseTo(5);
    await d.drain();
    expect(d.started).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('lets a task give its slot back while it waits, and gives it back to that task before later ones', async () => {
    const pool = createAdaptivePool(1);
    const started: string[] = [];
    let wake!: () => void;
    const asleep = new Promise<void>((resolve) => (wake = resolve));
    let second!: () => void;
    const secondGate = new Promise<void>((resolve) => (second = resolve));
    const first = pool.run(async (slot) => {
      started.push('first');
      await slot.away(() => asleep);
      started.push('first again');
    });
    const others = ['second', 'third'].map((name) => pool.run(async () => {
      started.push(name);
      if (name === 'second') await secondGate;
    }));
    await new Promise((resolve) => setImmediate(resolve));
    // While the first task is away, the second has its slot; the third waits.
    expect(started).toEqual(['first', 'second']);
    wake();
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.waiting).toBe(2);
    second();
    await Promise.all([first, ...others]);
    // The first task came back before the third, which was submitted after it.
    expect(started).toEqual(['first', 'second', 'first again', 'third']);
    expect(pool.active).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses the maximum %d', (max) => {
    expect(() => createAdaptivePool(max)).toThrow(RangeError);
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
