import { describe, expect, it } from 'vitest';
import { backoffDelayMs, parseRetryAfter, retryDelayMs, withRetry } from '../../shared/http/retry';

const backoff = { baseDelayMs: 100, maxDelayMs: 1_000 };

describe('backoffDelayMs (full jitter)', () => {
  it('doubles the cap per retry up to maxDelayMs', () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4, 10, 2000].map((n) => backoffDelayMs(n, { ...backoff, random: top }))).toEqual([99, 199, 399, 799, 999, 999, 999]);
  });

  it('draws uniformly from zero to the cap', () => {
    expect(backoffDelayMs(3, { ...backoff, random: () => 0 })).toBe(0);
    expect(backoffDelayMs(3, { ...backoff, random: () => 0.5 })).toBe(400);
    const draws = Array.from({ length: 500 }, () => backoffDelayMs(2, backoff));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(400);
    expect(new Set(draws).size).toBeGreaterThan(50);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');

  it.each([
    ['120', 120],
    [' 3 ', 3],
    ['0', 0],
    ['Wed, 01 Jan 2025 12:00:30 GMT', 30],
    ['Wed, 01 Jan 2025 12:00:00 GMT', 0],
    ['Wed, 01 Jan 2025 11:00:00 GMT', 0],
    ['Wednesday, 01-Jan-25 12:01:00 GMT', 60],
  ])('reads %j as %d seconds', (header, seconds) => {
    expect(parseRetryAfter(header, now)).toBe(seconds);
  });

  it.each([[null], [undefined], [''], ['soon'], ['-5'], ['1.5'], ['12 seconds']])('ignores %j', (header) => {
    expect(parseRetryAfter(header as string | null | undefined, now)).toBeUndefined();
  });
});

describe('retryDelayMs', () => {
  it('waits what the server asked for, but never longer than maxDelayMs', () => {
    expect(retryDelayMs(0, backoff, 0.5)).toBe(500);
    expect(retryDelayMs(5, backoff, 3600)).toBe(1_000);
    expect(retryDelayMs(0, backoff, 0)).toBe(0);
  });

  it('falls back to backoff without Retry-After', () => {
    expect(retryDelayMs(1, { ...backoff, random: () => 0.5 })).toBe(100);
  });
});

describe('withRetry', () => {
  const noSleep = async () => undefined;

  it('retries until the operation succeeds', async () => {
    let calls = 0;
    const result = await withRetry(async () => {
      calls++;
      if (calls < 3) throw new Error('flaky');
      return 'ok';
    }, { ...backoff, maxRetries: 5, classify: () => ({ retry: true }), sleep: noSleep });
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('gives up after maxRetries retries and throws the last error itself', async () => {
    let calls = 0;
    const errors: Error[] = [];
    const failing = withRetry(async () => {
      const error = new Error(`attempt ${++calls}`);
      errors.push(error);
      throw error;
    }, { ...backoff, maxRetries: 2, classify: () => ({ retry: true }), sleep: noSleep });
    const thrown = await failing.catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(thrown).toBe(errors[2]);
  });

  it('does not retry what classify refuses', async () => {
    let calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw new Error('permanent');
    }, { ...backoff, maxRetries: 5, classify: () => ({ retry: false }), sleep: noSleep })).rejects.toThrow('permanent');
    expect(calls).toBe(1);
  });

  it('waits Retry-After when given, backoff otherwise, and reports each wait', async () => {
    const slept: number[] = [];
    const reported: Array<{ retry: number; delayMs: number }> = [];
    let calls = 0;
    await withRetry(async () => {
      calls++;
      if (calls === 1) throw Object.assign(new Error('throttled'), { after: 0.25 });
      if (calls === 2) throw new Error('blip');
      return calls;
    }, {
      ...backoff,
      random: () => 0.5,
      maxRetries: 3,
      classify: (e) => ({ retry: true, retryAfterSeconds: (e as { after?: number }).after }),
      onRetry: ({ retry, delayMs }) => reported.push({ retry, delayMs }),
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    expect(slept).toEqual([250, 100]);
    expect(reported).toEqual([{ retry: 1, delayMs: 250 }, { retry: 2, delayMs: 100 }]);
  });

  it('tries exactly once with maxRetries 0', async () => {
    let calls = 0;
    await expect(withRetry(async () => {
      calls++;
      throw new Error('once');
    }, { ...backoff, maxRetries: 0, classify: () => ({ retry: true }), sleep: noSleep })).rejects.toThrow('once');
    expect(calls).toBe(1);
  });
});
