/**
 * Group commit for one partition of one table: writes that arrive while a transaction is in flight
 * travel together in the next entity-group transaction (at most 100 operations each), so a cycle
 * that writes thousands of links makes tens of requests, not thousands — without making any single
 * write wait longer than one transaction when the store is idle.
 *
 * A *unit* is the rows one logical write touches (a link and its TeamViewer-id index row); its
 * operations always travel in the same transaction, so they land together or not at all.
 *
 * Invariants:
 * - A unit's promise settles only after the transaction holding it committed (or failed): a caller
 *   that awaited it knows its rows are durable. That is what keeps the intent-before-create rule of
 *   apply-user.ts true with batching.
 * - Writes under one unit key apply in the order they were made: a later write queued before the
 *   earlier one was sent replaces it (both settle with the transaction that carries the later one);
 *   a write made while the earlier one is in flight goes in a later transaction.
 * - A failed transaction never fails a unit that would have succeeded alone: when a transaction of
 *   several units fails, each unit is sent again in its own transaction and settles with its own
 *   outcome. A bad row fails its own write only.
 * - Idle costs nothing: when no transaction is in flight, the queue is sent at the next turn of the
 *   event loop, with whatever was queued in the same turn.
 */

/** One row operation; a delete of a missing row counts as done. */
export type RowOp = { kind: 'upsert'; rowKey: string; entity: Record<string, unknown> } | { kind: 'delete'; rowKey: string };

/** Sends the operations as one transaction (all land or none); rejects with the service's error. */
export type SendTransaction = (ops: readonly RowOp[]) => Promise<void>;

/** The service's limit on operations per entity-group transaction. */
export const MAX_TRANSACTION_OPS = 100;

interface Queued {
  ops: RowOp[];
  waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }>;
}

export class BatchWriter {
  private queue = new Map<string, Queued>();
  private draining: Promise<void> | null = null;

  constructor(private readonly send: SendTransaction) {}

  /** Queues a unit under `key`; resolves once its operations are committed. */
  write(key: string, ops: RowOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    if (ops.length > MAX_TRANSACTION_OPS) return Promise.reject(new RangeError(`a unit of ${ops.length} operations does not fit one transaction`));
    return new Promise((resolve, reject) => {
      const queued = this.queue.get(key);
      if (queued) {
        // Not sent yet: the later write replaces it, and both callers learn the outcome.
        queued.ops = ops;
        queued.waiters.push({ resolve, reject });
      } else {
        this.queue.set(key, { ops, waiters: [{ resolve, reject }] });
      }
      this.draining ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      // Let the writes made in this turn of the event loop join the first transaction.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.queue.size > 0) await this.commit(this.takeBatch());
    } finally {
      this.draining = null;
    }
  }

  /** Units in the order they were queued, as many as fit one transaction (rows distinct). */
  private takeBatch(): Queued[] {
    const batch: Queued[] = [];
    const rows = new Set<string>();
    let ops = 0;
    for (const [key, queued] of this.queue) {
      if (ops + queued.ops.length > MAX_TRANSACTION_OPS) break;
      // The service refuses a transaction naming one row twice: such a unit waits for the next.
      if (queued.ops.some((op) => rows.has(op.rowKey))) continue;
      for (const op of queued.ops) rows.add(op.rowKey);
      ops += queued.ops.length;
      batch.push(queued);
      this.queue.delete(key);
    }
    return batch;
  }

  private async commit(batch: Queued[]): Promise<void> {
    try {
      await this.send(batch.flatMap((unit) => unit.ops));
      for (const unit of batch) settle(unit, null);
    } catch (error) {
      if (batch.length === 1) {
        settle(batch[0], error);
        return;
      }
      // One unit may have spoilt the whole transaction: each is tried alone, and answers for itself.
      for (const unit of batch) {
        await this.send(unit.ops).then(() => settle(unit, null), (alone: unknown) => settle(unit, alone));
      }
    }
  }
}

function settle(unit: Queued, error: unknown): void {
  for (const waiter of unit.waiters) {
    if (error === null) waiter.resolve();
    else waiter.reject(error);
  }
}
