/**
 * Bounded concurrency: a fixed pool (createPool), an adaptive one (createAdaptivePool), and
 * mapWithConcurrency.
 *
 * Invariants of both pools: a task starts only while fewer than `limit` tasks run; waiting tasks
 * start in the order they were submitted, as soon as a slot frees. A task's failure frees its
 * slot like a success does, and never affects other tasks.
 *
 * Invariants of the adaptive pool (additive increase, multiplicative decrease), whose `limit`
 * moves between 1 and `max` by what the requests made inside its tasks report:
 * - it starts at min(4, max);
 * - a throttled answer halves it (floor, never below 1), at most once per window: an answer to a
 *   request sent before the last halving says nothing about the halved limit, so the burst of
 *   throttled answers one overload causes halves the limit once;
 * - after `limit` clean answers in a row (about one window) it rises by 1, up to `max`; an answer
 *   counts towards that only while the pool is full (a limit nobody reached was not tried) and
 *   only if its request was sent under the current limit (since the last halving); a throttled or
 *   failed answer (timeout, 5xx) starts the count again;
 * - lowering the limit stops no task: the running ones keep their slot, and no task starts until
 *   fewer than the new limit run;
 * - a task may give its slot back while it waits (Slot.away, e.g. before a retry after
 *   throttling) so that the lowered limit holds for its next request too; it then waits for a
 *   slot again ahead of every task submitted after it, so submission order still decides.
 */

export interface Pool {
  /** Runs `task` once a slot is free; settles as the task does. */
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly limit: number;
  /** Tasks running now. */
  readonly active: number;
  /** Tasks waiting for a slot. */
  readonly waiting: number;
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`a concurrency limit must be a whole number of at least 1 (got ${limit})`);
  }
}

export function createPool(limit: number): Pool {
  checkLimit(limit);
  let active = 0;
  const queue: Array<() => void> = [];

  const release = (): void => {
    const next = queue.shift();
    // The slot passes straight to the next task, so `active` never dips and rises again
    // in between (which would let a newcomer jump the queue).
    if (next) next();
    else active--;
  };

  const acquire = (): Promise<void> => {
    if (active < limit) {
      active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => queue.push(resolve));
  };

  return {
    limit,
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      await acquire();
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}

/** What a request made inside an adaptive pool's task hands back when its answer comes. */
export interface Sent {
  /** How many times the limit had been halved when the request went out. */
  readonly window: number;
}

/** What one answer says about the load: throttled, clean, or neither (a timeout, a 5xx). */
export type Answer = 'clean' | 'throttled' | 'failed';

/** A running task's hold on its slot in an adaptive pool. */
export interface Slot {
  /**
   * Gives the slot back while `wait` runs (a task waiting to retry sends nothing), then waits for
   * one again, ahead of every task submitted after this one. Rejects as `wait` does, without
   * waiting for a slot again (the task is then ending).
   */
  away<T>(wait: () => Promise<T>): Promise<T>;
}

export interface AdaptivePool extends Pool {
  /** Runs `task` once a slot is free (see Slot for giving it back for a while); settles as the task does. */
  run<T>(task: (slot: Slot) => Promise<T>): Promise<T>;
  /** The most the limit may rise to. */
  readonly max: number;
  /** The highest the limit has been. */
  readonly peak: number;
  /** Times the limit was halved. */
  readonly lowered: number;
  /** Call as a request goes out (from inside a running task). */
  sent(): Sent;
  /** Call when its answer came; returns the new limit when this answer lowered it. */
  answered(request: Sent, answer: Answer): number | undefined;
}

export function createAdaptivePool(max: number): AdaptivePool {
  checkLimit(max);
  let limit = Math.min(4, max);
  let peak = limit;
  let active = 0;
  let window = 0;
  let cleanInARow = 0;
  let submitted = 0;
  /** By submission number: a task coming back from `away` goes before later ones. */
  const queue: Array<{ order: number; start: () => void }> = [];

  const startWaiting = (): void => {
    while (active < limit && queue.length > 0) {
      active++;
      queue.shift()!.start();
    }
  };

  const release = (): void => {
    // Passing the slot straight on keeps `active` from dipping in between (which would let a
    // newcomer jump the queue); after a halving, slots above the limit are not passed on.
    if (active <= limit && queue.length > 0) queue.shift()!.start();
    else active--;
  };

  const acquire = (order: number): Promise<void> => {
    if (active < limit && queue.length === 0) {
      active++;
      return Promise.resolve();
    }
    return new Promise((start) => {
      let at = queue.length;
      while (at > 0 && queue[at - 1]!.order > order) at--;
      queue.splice(at, 0, { order, start });
    });
  };

  return {
    max,
    get limit() {
      return limit;
    },
    get peak() {
      return peak;
    },
    get lowered() {
      return window;
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
    sent: () => ({ window }),
    answered(request, answer) {
      if (answer === 'clean') {
        if (request.window !== window || (active < limit && queue.length === 0)) return undefined;
        if (++cleanInARow >= limit) {
          cleanInARow = 0;
          if (limit < max) {
            limit++;
            peak = Math.max(peak, limit);
            startWaiting();
          }
        }
        return undefined;
      }
      cleanInARow = 0;
      if (answer !== 'throttled' || request.window !== window || limit === 1) return undefined;
      window++;
      limit = Math.floor(limit / 2);
      return limit;
    },
    async run<T>(task: (slot: Slot) => Promise<T>): Promise<T> {
      const order = ++submitted;
      await acquire(order);
      let held = true;
      const slot: Slot = {
        async away(wait) {
          if (!held) throw new Error('a task gave its slot back twice at once');
          held = false;
          release();
          const result = await wait();
          await acquire(order);
          held = true;
          return result;
        },
      };
      try {
        return await task(slot);
      } finally {
        if (held) release();
      }
    },
  };
}

/**
 * Maps `items` through `fn` with at most `limit` calls in flight; results keep the items'
 * order. On the first failure no further item is started, the calls already running are
 * awaited (nothing is left running behind the caller's back), and that first error is thrown.
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  checkLimit(limit);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;

  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        if (!failed) {
          failed = true;
          firstError = error;
        }
      }
    }
  };

  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
  return results;
}
