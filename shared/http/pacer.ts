/**
 * A request rate learned from throttling: the companion of the adaptive pool (pool.ts). The pool
 * bounds how many requests are in flight; a rate limit (TeamViewer: 403 `rate_limit_reached`, with
 * no Retry-After and no documented window) bounds how many *start* per second, which no number in
 * flight can express when answers come fast. The pacer learns that rate and spaces requests to it,
 * so a throttled token runs just below its limit instead of bursting into it and pausing.
 *
 * Invariants:
 * - Until the first throttled answer it never delays a request: a token without a rate limit runs
 *   at whatever the pool allows.
 * - A throttled answer sets the rate to 95 % of the clean answers of the second before it (what
 *   TeamViewer accepted), never more than the rate already in force and never below 1 per second;
 *   one burst of throttled answers lowers it once (at most once per second). With less than a
 *   second of answers seen, the count is scaled to a second; with fewer than MIN_EVIDENCE clean
 *   answers (throttled at once: the limit was spent elsewhere) nothing is learned and the pool's
 *   halving and the backoff alone slow the client down, rather than pinning it at a rate guessed
 *   from nothing.
 * - While a rate is in force, no more than `rate` requests start in any second: each start is
 *   spaced 1000/rate ms after the one before (turns are handed out in call order).
 * - It probes upwards slowly: after PROBE_MS without a throttled answer, the rate rises by 5 %
 *   (at least 1 per second), so a limit that was raised, or a slow start, is found again.
 */
import type { Answer } from './pool';
import { sleep } from './retry';

/** How long the rate must hold without throttling before it is raised. */
export const PROBE_MS = 10_000;
const WINDOW_MS = 1_000;
const MIN_EVIDENCE = 5;

export class RatePacer {
  /** Requests per second in force; null until TeamViewer first throttled. */
  private current: number | null = null;
  private nextStart = 0;
  /** Times of the clean answers of the last second, oldest first. */
  private readonly clean: number[] = [];
  private changedAt = 0;
  private firstAnswerAt: number | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** Requests per second in force, or null when no limit was met. */
  get rate(): number | null {
    return this.current;
  }

  /** Resolves when this request may start (at once while no rate is in force). */
  async turn(signal?: AbortSignal): Promise<void> {
    if (this.current === null) return;
    const now = this.now();
    const at = Math.max(now, this.nextStart);
    this.nextStart = at + 1000 / this.current;
    if (at > now) await sleep(at - now, signal);
  }

  /** Records an answer; returns the new rate when this answer lowered it. */
  answered(answer: Answer): number | undefined {
    const now = this.now();
    this.forget(now);
    this.firstAnswerAt ??= now;
    if (answer === 'clean') {
      this.clean.push(now);
      if (this.current !== null && now - this.changedAt >= PROBE_MS) {
        this.current = Math.max(this.current + 1, Math.floor(this.current * 1.05));
        this.changedAt = now;
      }
      return undefined;
    }
    if (answer !== 'throttled' || (this.current !== null && now - this.changedAt < WINDOW_MS)) return undefined;
    if (this.clean.length < MIN_EVIDENCE) return undefined;
    const seen = Math.min(WINDOW_MS, Math.max(now - this.firstAnswerAt, 1));
    const accepted = Math.max(1, Math.floor(this.clean.length * (WINDOW_MS / seen) * 0.95));
    this.current = Math.min(this.current ?? accepted, accepted);
    this.changedAt = now;
    return this.current;
  }

  private forget(now: number): void {
    while (this.clean.length > 0 && now - this.clean[0]! > WINDOW_MS) this.clean.shift();
  }
}
