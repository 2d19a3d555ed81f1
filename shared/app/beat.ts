/**
 * The heartbeat's gate: whether a cycle is due now. The timer beats every few minutes; a cycle runs
 * only when one is due.
 *
 * Invariants:
 * - Due: SYNC_INTERVAL_MINUTES after the start of the last cycle; in quarantine, not before its
 *   back-off (6 h, 12 h, 24 h, daily); after 28 days of quarantine, never, until a restart.
 * - Due at once: an operator's "run now", an allowance no cycle has used yet, and a cycle cut by its
 *   time budget (the continuation).
 * - Whether a cycle runs elsewhere is the run lease's to say, not a heartbeat's age.
 */
import type { Logger } from '../log';
import type { StateStore } from '../state/store';
import type { CycleOptions, CycleReport } from '../sync/cycle';
import { LeaseHeldError } from '../sync/lease';
import { nextRunAt } from '../status';
import type { GuardState } from '../sync/guard';
import { QUARANTINE_KEY, type Quarantine } from '../sync/quarantine';
import { GUARD_KEY } from '../sync/guard';

/** An operator's "run now": the next heartbeat starts a cycle whatever the interval says. */
export const RUN_NOW_KEY = 'runNow';

export type RunNow = { value: { requestedAt: string; by: string }; etag: string };

export type BeatDecision =
  | { due: false; why: 'stopped'; quarantine: Quarantine }
  | { due: false; why: 'not yet'; dueAt: Date }
  | { due: true; runNow: RunNow | null };

export async function cycleDue(store: StateStore, intervalMinutes: number, now: Date): Promise<BeatDecision> {
  const cycles = await store.listCycles(10);
  const [guard, runNow, quarantine] = await Promise.all([
    store.getMeta<GuardState>(GUARD_KEY),
    store.getMeta<{ requestedAt: string; by: string }>(RUN_NOW_KEY),
    store.getMeta<Quarantine>(QUARANTINE_KEY),
  ]);
  if (quarantine?.value.stopped && !runNow) return { due: false, why: 'stopped', quarantine: quarantine.value };
  const scheduled = quarantine ? new Date(Math.max(nextRunAt(cycles, intervalMinutes, now).getTime(), Date.parse(quarantine.value.nextAttemptAt))) : nextRunAt(cycles, intervalMinutes, now);
  const lastReal = cycles.find((c) => !c.dryRun && c.result !== 'running');
  // An allowance makes a cycle due once: not again if a cycle has run since it was granted.
  const allowancePending = guard?.value.allowance && !cycles.some((c) => !c.dryRun && c.startedAt > guard.value.allowance!.grantedAt);
  const dueAt = allowancePending || runNow || lastReal?.budgetReached ? now : scheduled;
  return dueAt.getTime() > now.getTime() ? { due: false, why: 'not yet', dueAt } : { due: true, runNow };
}

/** Asks the timer for a cycle at its next beat. */
export async function requestRun(store: StateStore, by: string): Promise<void> {
  await store.putMeta(RUN_NOW_KEY, { requestedAt: new Date().toISOString(), by });
}

/**
 * The timer's heartbeat: a cycle under the run lease when one is due, else the failure emails.
 * A cycle running elsewhere (the lease is held) makes this beat do nothing.
 */
export async function heartbeat(
  app: { store: StateStore; logger: Logger; intervalMinutes: number; run: (options: CycleOptions & { onLeased?: () => Promise<void> }) => Promise<CycleReport>; alertsBetweenCycles: () => Promise<void> },
  trigger: CycleOptions['trigger'],
): Promise<CycleReport | null> {
  const { store, logger } = app;
  const decision = await cycleDue(store, app.intervalMinutes, new Date());
  if (!decision.due) {
    if (decision.why === 'stopped') logger.warn(`no cycle: quarantined since ${decision.quarantine.since} (${decision.quarantine.reason}) and stopped after 28 days; fix the cause and run "tvsync restart"`);
    else logger.debug(`no cycle due until ${decision.dueAt.toISOString()}`);
    await app.alertsBetweenCycles();
    return null;
  }
  const { runNow } = decision;
  try {
    if (runNow) logger.info(`running now, as asked by ${runNow.value.by} at ${runNow.value.requestedAt}`);
    // "Run now" is used up only once this beat holds the lease: if another cycle runs, it stays.
    return await app.run({ trigger, onLeased: runNow ? () => store.deleteMeta(RUN_NOW_KEY, runNow.etag).catch(() => undefined) : undefined });
  } catch (err) {
    if (!(err instanceof LeaseHeldError)) throw err;
    logger.info(`a cycle is already running elsewhere; this beat does nothing (${err.message})`);
    return null;
  }
}
