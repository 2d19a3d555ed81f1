/**
 * The apply machinery: runs a cycle's planned work with bounded concurrency, whatever kind of
 * object it is about (users, and user groups as another WorkKind applied after users).
 * Per item it decides whether the work may start (lease, time budget, accidental-deletion guard,
 * escrow, dry run), carries it out, and records what became of it: escrow, provisioning log,
 * counts, progress and heartbeat.
 *
 * Invariants:
 * - Once the run lease is lost or a fatal error came back (a rejected token), no further write
 *   starts, in this kind or the next; what was not attempted is reported as skipped, saying why.
 * - No work starts once the time budget has run out; work cut off at the deadline (one timeout
 *   later) is skipped, not failed and not escrowed, and the cycle is marked to be continued at the
 *   next heartbeat. A cycle in which nothing at all got past the budget is not continued: it fails
 *   (`stalled()`), since a continuation would only read and stop again.
 * - Work the guard holds is reported `staged` and never run; work whose escrow is not yet due is
 *   skipped with the escrow's reason (a kind says which work may wait: deactivations never do).
 * - A dry run runs nothing and records nothing: each item reports what it would do.
 * - Escrows are recorded only while writes go on (after an abort nothing is known about the rest),
 *   and an escrow whose object no longer has a change to make is dropped (`dropSettledEscrows`).
 * - Provisioning-log records are written in batches of 100 as work completes; a failed write is
 *   logged, never fatal.
 */
import type { ActionStatus, CycleRecord, Escrow } from '../../domain/model';
import { mapWithConcurrency } from '../../http/pool';
import type { ProvisioningLogRecord } from '../../state/logs';
import { isCycleDeadline } from '../deadline';
import { errorInfo, type ErrorInfo } from '../error-info';
import type { CycleRun } from './run';

/** What the machinery needs of a report, whatever the kind of object. */
export interface WorkReport {
  /** The action (create, disable, ...). */
  kind: string;
  status: ActionStatus;
  /** The Entra object id the work is about: escrows are kept by it. */
  entraId: string;
  /** How people know the object: a user's UPN… */
  userPrincipalName?: string;
  /** …or a group's name. */
  name?: string;
  reason?: string;
  error?: ErrorInfo;
}

/** A kind of object a cycle provisions: what the machinery asks of its planned work. */
export interface WorkKind<A, R extends WorkReport> {
  /** The Entra object id the action is about (escrows are kept by it). */
  key(action: A): string;
  /** False for work that changes nothing (a skip): its object's escrow is dropped. */
  hasChange(action: A): boolean;
  /** Whether an escrow may hold the action back until its next attempt (deactivations never wait). */
  mayWait(action: A): boolean;
  /** Why the accidental-deletion guard holds the action back, or null. */
  heldBack(action: A): string | null;
  /** The report of an action not carried out: skipped (saying why) or staged by the guard. */
  notDone(action: A, status: 'skipped' | 'staged', reason: string): R;
  /** What a dry run reports. */
  planned(action: A): R;
  /** Carries the action out, its calls cut off when `signal` aborts; never throws. */
  apply(action: A, signal: AbortSignal): Promise<R>;
  /** After this failure no further write starts in this cycle. */
  isFatal(action: A, code: string): boolean;
  /** The provisioning-log records of a report (one per change it made; null or none: nothing to log). */
  logRecord(report: R, context: { cycleId: string; time: Date; durationMs: number }): ProvisioningLogRecord | ProvisioningLogRecord[] | null;
  /** Adds the report to the cycle's counts, the lists status shows, and the cycle's report. */
  tally(record: CycleRecord, report: R): void;
}

const LOG_BATCH = 100;
/** Transient trouble is retried at the next cycle; anything else backs off, up to a day. */
const RETRY_NEXT_CYCLE = new Set(['TEAMVIEWER_TRANSIENT', 'TEAMVIEWER_TIMEOUT', 'TEAMVIEWER_THROTTLED', 'STATE_UNAVAILABLE']);

export class Applier {
  /** Why no further write starts (the lease was lost, a fatal error came back), once it happened. */
  abort: ErrorInfo | null = null;
  /** The time budget ran out, or calls were cut at the deadline: the next heartbeat continues. */
  budgetReached = false;
  /** Items that got past the time budget. */
  private started = 0;
  /** Keys of the objects that still have a change to make. */
  private readonly pending = new Set<string>();
  private logBuffer: ProvisioningLogRecord[] = [];

  private constructor(private readonly run: CycleRun, private readonly escrows: Map<string, Escrow>) {}

  /** The apply phase begins: `escrows` are the escrows read at the start of the cycle, by key. */
  static start(run: CycleRun, escrows: Map<string, Escrow>): Applier {
    run.progress('applying');
    return new Applier(run, escrows);
  }

  /** Runs one kind's planned work, at most CycleDeps.concurrency at a time. */
  async apply<A, R extends WorkReport>(items: readonly A[], kind: WorkKind<A, R>): Promise<void> {
    for (const item of items) if (kind.hasChange(item)) this.pending.add(kind.key(item));
    await mapWithConcurrency(items, Math.max(1, this.run.deps.concurrency), (item) => this.one(item, kind));
  }

  /** Writes the provisioning-log records still buffered. */
  async flushLogs(): Promise<void> {
    const { deps, log, cycleId } = this.run;
    if (!deps.logs || this.logBuffer.length === 0) return;
    const batch = this.logBuffer;
    this.logBuffer = [];
    await deps.logs.append(batch).catch((err) => log.warn('could not write provisioning logs', { cycleId, error: errorInfo(err).message }));
  }

  /**
   * True when the budget ran out before any work could start: reading and planning took it all.
   * The cycle is then not continued (a continuation would do the same) but fails, saying so.
   */
  stalled(): boolean {
    return this.budgetReached && this.started === 0;
  }

  /** Drops the escrows of objects that no longer have a change to make (fixed by hand, left scope). */
  async dropSettledEscrows(): Promise<void> {
    for (const key of this.escrows.keys()) if (!this.pending.has(key)) await this.run.deps.state.deleteEscrow(key).catch(() => undefined);
  }

  private async one<A, R extends WorkReport>(item: A, kind: WorkKind<A, R>): Promise<void> {
    const { run } = this;
    const { deps, record, log, cycleId, dryRun } = run;
    const itemStarted = Date.now();
    if (!this.abort && !this.budgetReached && run.deadline.passed()) {
      this.markBudgetReached(`cycle ${cycleId} reached its time budget (${deps.timeBudgetSeconds} s); the next heartbeat continues it`);
    }
    if (!this.abort && !this.budgetReached) this.started++;
    if (!this.abort && deps.signal?.aborted) {
      this.abort = errorInfo(deps.signal.reason);
      log.error(`cycle ${cycleId} stops writing: ${this.abort.message}`, { cycleId, code: this.abort.code });
    }
    const escrow = this.escrows.get(kind.key(item));
    const held = this.abort || this.budgetReached ? null : kind.heldBack(item);
    let report = this.abort
      ? kind.notDone(item, 'skipped', `not attempted: the cycle stopped after ${this.abort.code}`)
      : this.budgetReached
        ? kind.notDone(item, 'skipped', 'not yet: the cycle reached its time budget; the next heartbeat continues')
        : held
          ? kind.notDone(item, 'staged', held)
          : escrow && kind.mayWait(item) && Date.parse(escrow.nextAttemptAt) > run.startedAt.getTime()
            ? kind.notDone(item, 'skipped', escrowReason(escrow))
            : dryRun
              ? kind.planned(item)
              : await kind.apply(item, run.deadline.inFlight);
    if (report.status === 'failure' && isCycleDeadline(report.error)) {
      const { error, ...rest } = report;
      report = { ...rest, status: 'skipped', reason: `not finished: ${error!.message}; the next heartbeat continues` } as R;
      // Work cut off at the deadline is work left: the next heartbeat continues (never a quiet cycle).
      if (!this.budgetReached) this.markBudgetReached(`cycle ${cycleId} reached its deadline with calls in flight; the next heartbeat continues it`);
    }
    if (report.status === 'failure' && report.error && kind.isFatal(item, report.error.code) && !this.abort) {
      this.abort = report.error;
      log.error(`cycle ${cycleId} stops writing: ${report.error.message}`, { cycleId, code: report.error.code });
    }
    if (!dryRun && !this.abort) await this.recordEscrow(escrow, report);
    if (!dryRun && deps.logs) {
      const entry = kind.logRecord(report, { cycleId, time: run.now(), durationMs: Date.now() - itemStarted });
      if (entry) this.logBuffer.push(...(Array.isArray(entry) ? entry : [entry]));
      if (this.logBuffer.length >= LOG_BATCH) await this.flushLogs();
    }
    kind.tally(record, report);
    record.done = (record.done ?? 0) + 1;
    run.progress('applying');
    await run.beat();
  }

  private markBudgetReached(message: string): void {
    this.budgetReached = true;
    this.run.record.budgetReached = true;
    this.run.log.warn(message, { cycleId: this.run.cycleId });
  }

  /** A failure is escrowed with a growing back-off; a success ends the escrow. Never throws. */
  private async recordEscrow(existing: Escrow | undefined, report: WorkReport): Promise<void> {
    const { deps, now, log } = this.run;
    const at = now();
    const intervalMinutes = deps.intervalMinutes ?? 40;
    try {
      if (report.status === 'failure' && report.error) {
        const attempts = (existing?.attempts ?? 0) + 1;
        const backoffMinutes = RETRY_NEXT_CYCLE.has(report.error.code) || attempts === 1 ? 0 : Math.min(24 * 60, intervalMinutes * 2 ** (attempts - 2));
        await deps.state.putEscrow({
          entraId: report.entraId,
          userPrincipalName: report.userPrincipalName ?? report.name ?? '',
          action: report.kind,
          code: report.error.code,
          message: report.error.message.slice(0, 500),
          attempts,
          firstFailedAt: existing?.firstFailedAt ?? at.toISOString(),
          lastFailedAt: at.toISOString(),
          nextAttemptAt: new Date(at.getTime() + backoffMinutes * 60_000).toISOString(),
        });
      } else if (existing && report.status === 'success') {
        await deps.state.deleteEscrow(report.entraId);
      }
    } catch (err) {
      log.warn('could not record an escrow; the user is retried next cycle', { entraId: report.entraId, error: errorInfo(err).message });
    }
  }
}

function escrowReason(e: Escrow): string {
  return `escrowed: failed ${e.attempts} time(s) since ${e.firstFailedAt} (last: ${e.code} — ${e.message}); next attempt ${e.nextAttemptAt}`;
}
