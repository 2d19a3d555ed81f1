import { describe, expect, it } from 'vitest';
import { PROBE_MS, RatePacer } from '../../shared/http/pacer';

/** A pacer on a clock that runs in real time and can be moved forward. */
function clocked() {
  let skew = 0;
  const pacer = new RatePacer(() => Date.now() + skew);
  return { pacer, advance: (ms: number) => (skew += ms) };
}

/** `perSecond` clean answers spread over one second, then a throttled one: returns what it set. */
function throttledAfter(c: ReturnType<typeof clocked>, perSecond: number): number | undefined {
  c.pacer.answered('clean');
  for (let i = 0; i < perSecond; i++) {
    c.advance(1000 / perSecond);
    c.pacer.answered('clean');
  }
  c.advance(5);
  return c.pacer.answered('throttled');
}

describe('RatePacer', () => {
  it('When TeamViewer never throttled, then no request waits', async () => {
    const { pacer } = clocked();
    for (let i = 0; i < 100; i++) pacer.answered('clean');
    const started = Date.now();
    await Promise.all(Array.from({ length: 50 }, () => pacer.turn()));
    expect(Date.now() - started).toBeLessThan(50);
    expect(pacer.rate).toBeNull();
  });

  it('When a throttled answer follows 20 accepted in a second, then the rate is 19 per second and one burst lowers it once', () => {
    const c = clocked();
    expect(throttledAfter(c, 20)).toBe(19);
    c.advance(200);
    expect(c.pacer.answered('throttled')).toBeUndefined(); // the same burst
    expect(c.pacer.rate).toBe(19);
  });

  it('When answers older than a second came before the throttling, then they do not count as accepted', () => {
    const c = clocked();
    for (let i = 0; i < 30; i++) c.pacer.answered('clean');
    c.advance(1_500);
    expect(throttledAfter(c, 10)).toBe(9);
  });

  it('When a rate is in force, then no more than that many requests start per second, in call order', async () => {
    const c = clocked();
    expect(throttledAfter(c, 20)).toBe(19); // a start every ~53 ms
    const { pacer } = c;
    const started = Date.now();
    const order: number[] = [];
    await Promise.all(Array.from({ length: 6 }, (_, i) => pacer.turn().then(() => order.push(i))));
    expect(Date.now() - started).toBeGreaterThanOrEqual(5 * (1000 / 19) - 5);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('When the rate held without throttling for a while, then it rises, and a later throttling never raises it', () => {
    const c = clocked();
    throttledAfter(c, 20);
    c.advance(PROBE_MS - 100);
    c.pacer.answered('clean');
    expect(c.pacer.rate).toBe(19);
    c.advance(200);
    c.pacer.answered('clean');
    expect(c.pacer.rate).toBe(20);
    // Throttled again with more accepted than the rate in force: the rate does not go up.
    c.advance(1_000);
    expect(throttledAfter(c, 40)).toBe(20);
  });

  it('When the very first answers are throttled, then no rate is guessed from nothing', () => {
    const c = clocked();
    c.pacer.answered('clean');
    expect(c.pacer.answered('throttled')).toBeUndefined();
    expect(c.pacer.rate).toBeNull();
  });

  it('When less than a second of answers was seen, then the accepted count is scaled to a second', () => {
    const c = clocked();
    c.pacer.answered('clean');
    for (let i = 0; i < 10; i++) {
      c.advance(50);
      c.pacer.answered('clean');
    }
    // 11 accepted in 500 ms: 22 per second, 95 % of it.
    expect(c.pacer.answered('throttled')).toBe(20);
  });
});
