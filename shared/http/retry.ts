/**
 * Retry timing for every HTTP adapter: exponential backoff with full jitter, `Retry-After`
 * parsing, and a bounded retry loop.
 *
 * Invariant: an operation runs at most `maxRetries + 1` times, and no wait is longer than
 * `maxDelayMs` — not even one a server asked for with `Retry-After` (a misbehaving or hostile
 * server must not be able to park a sync cycle for hours).
 *
 * Full jitter (a uniformly random wait in [0, cap)) rather than a fixed ladder, so that many
 * callers throttled at the same moment do not all come back at the same moment.
 */
import { abortReason } from './timeout';

export interface BackoffOptions {
  /** Cap of the first retry's wait; doubles with every retry. */
  baseDelayMs: number;
  /** No wait is ever longer than this. */
  maxDelayMs: number;
  /** Source of randomness in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

/** Full-jitter backoff for retry number `retry` (0 for the first retry). */
export function backoffDelayMs(retry: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry));
  return Math.floor(random() * Math.max(0, cap));
}

/**
 * Seconds to wait according to a `Retry-After` header: either delay-seconds or an HTTP date.
 * Undefined when the header is absent or unreadable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  // Date.parse accepts almost anything ("1" is the year 2001), so insist on something date-like.
  if (!/[a-z]/i.test(text) || !/\d/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The wait before retry number `retry`: what the server asked for (capped), else backoff. */
export function retryDelayMs(retry: number, options: BackoffOptions, retryAfterSeconds?: number): number {
  if (retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds >= 0) {
    return Math.min(options.maxDelayMs, retryAfterSeconds * 1000);
  }
  return backoffDelayMs(retry, options);
}

/** What the caller decides about one failure. */
export interface RetryDecision {
  retry: boolean;
  /** From the response's Retry-After, when the server sent one. */
  retryAfterSeconds?: number;
}

export interface RetryOptions extends BackoffOptions {
  /** Retries after the first attempt; 0 means try once. */
  maxRetries: number;
  /** Whether (and how soon) to retry after `error`. */
  classify(error: unknown): RetryDecision;
  /** Called before each wait, e.g. to log or to count. */
  onRetry?(info: { error: unknown; retry: number; delayMs: number }): void;
  sleep?: (ms: number) => Promise<void>;
}

/** Waits `ms`; with `signal`, stops waiting (rejecting with its reason) as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise((resolve) => setTimeout(resolve, ms));
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `operation` until it succeeds, `classify` says not to retry, or the retries run out;
 * then the last error is thrown as it was (so its type and code reach the caller).
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= options.maxRetries) throw error;
      const decision = options.classify(error);
      if (!decision.retry) throw error;
      const delayMs = retryDelayMs(attempt, options, decision.retryAfterSeconds);
      options.onRetry?.({ error, retry: attempt + 1, delayMs });
      await wait(delayMs);
    }
  }
}
