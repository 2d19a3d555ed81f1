/**
 * A cycle's deadline: CYCLE_TIME_BUDGET_SECONDS from the cycle's start, and a hard cut one
 * request timeout later.
 *
 * Invariants:
 * - Reading and planning end within the budget: `reading` aborts when it runs out, every read is
 *   given it, and the cycle then fails with CYCLE_BUDGET_EXCEEDED naming what was being read —
 *   nothing is planned or written from an unfinished read.
 * - Applying starts no work once the budget has run out (`passed()`; the next heartbeat continues),
 *   and `inFlight` aborts whatever is still running one timeout later. The time budget counts from
 *   the start of the cycle, so a cycle never outlives the budget plus one timeout (and the few state
 *   writes that record its end).
 * - Without a budget (tests, dry runs) neither signal ever aborts.
 */
import { setMaxListeners } from 'node:events';
import { formatDuration } from '../http/timeout';

export const CYCLE_BUDGET_EXCEEDED = 'CYCLE_BUDGET_EXCEEDED';

/** The cycle ran out of time: while reading (the cycle fails) or with a call still in flight (it is cut off). */
export class CycleDeadlineError extends Error {
  readonly code = CYCLE_BUDGET_EXCEEDED;
  constructor(message: string) {
    super(message);
    this.name = 'CycleDeadlineError';
  }
}

export function isCycleDeadline(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === CYCLE_BUDGET_EXCEEDED;
}

export interface CycleDeadline {
  /** Aborts when the budget runs out: for every read. */
  readonly reading: AbortSignal;
  /** Aborts one timeout after the budget: for every call made while applying. */
  readonly inFlight: AbortSignal;
  /** True once the budget has run out: no new work may start. */
  passed(): boolean;
  /** Seconds since the cycle started. */
  elapsedSeconds(): number;
  /** Stops the timers (the cycle is over). */
  clear(): void;
}

export interface DeadlineOptions {
  /** CYCLE_TIME_BUDGET_SECONDS; undefined: no deadline. */
  budgetSeconds?: number;
  /** The request timeout a call in flight may still use (TEAMVIEWER_TIMEOUT_SECONDS). */
  graceSeconds: number;
  /** When the cycle started (epoch ms). */
  startedAt: number;
  /** What the cycle is reading now, in words ("reading Entra ID (Microsoft Graph)"). */
  doing: () => string;
}

export function cycleDeadline(options: DeadlineOptions): CycleDeadline {
  const reading = new AbortController();
  const inFlight = new AbortController();
  // Every request in flight listens to these (up to twice TEAMVIEWER_CONCURRENCY at once, each
  // listener removed when its request ends): not a leak, so no MaxListenersExceededWarning.
  setMaxListeners(0, reading.signal, inFlight.signal);
  const timers: NodeJS.Timeout[] = [];
  const budget = options.budgetSeconds;
  const budgetMs = budget === undefined ? Infinity : budget * 1000;
  if (budget !== undefined) {
    const at = (ms: number, fire: () => void) => {
      const timer = setTimeout(fire, Math.max(0, options.startedAt + ms - Date.now()));
      timer.unref?.();
      timers.push(timer);
    };
    at(budgetMs, () => reading.abort(new CycleDeadlineError(
      `the cycle's time budget (CYCLE_TIME_BUDGET_SECONDS = ${budget} s) ran out while ${options.doing()}; nothing was planned or written. `
      + `Reading everything must take well under the budget: raise CYCLE_TIME_BUDGET_SECONDS (it must stay below the host's function timeout)`,
    )));
    at(budgetMs + options.graceSeconds * 1000, () => inFlight.abort(new CycleDeadlineError(
      `cut off at the cycle's deadline: the time budget (${formatDuration(budgetMs)}) plus one request timeout (${formatDuration(options.graceSeconds * 1000)})`,
    )));
  }
  return {
    reading: reading.signal,
    inFlight: inFlight.signal,
    // Consistent with the reading signal: a timer may fire when exactly the budget has elapsed.
    passed: () => reading.signal.aborted || Date.now() - options.startedAt >= budgetMs,
    elapsedSeconds: () => (Date.now() - options.startedAt) / 1000,
    clear: () => timers.forEach(clearTimeout),
  };
}
