/**
 * Bounded concurrency.
 *
 * Invariant: a pool never has more than `limit` tasks running; waiting tasks start in the
 * order they were submitted, as soon as a slot frees. A task's failure frees its slot like a
 * success does, and never affects other tasks.
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
