import { describe, expect, it } from 'vitest';
import { cycleDeadline, isCycleDeadline } from '../../shared/sync/deadline';

const aborted = (signal: AbortSignal) => new Promise<unknown>((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the cycle deadline', () => {
  it('When the budget runs out, then reads are cut with CYCLE_BUDGET_EXCEEDED naming what was being read, and calls in flight one timeout later', async () => {
    let doing = 'reading Entra ID (Microsoft Graph)';
    // A wide grace: on a loaded machine the first abort may be noticed late, never 1 s late.
    const deadline = cycleDeadline({ budgetSeconds: 0.05, graceSeconds: 1, startedAt: Date.now(), doing: () => doing });
    expect(deadline.passed()).toBe(false);
    doing = "reading TeamViewer's users";
    const reason = await aborted(deadline.reading);
    expect(isCycleDeadline(reason)).toBe(true);
    expect((reason as Error).message).toBe("the cycle's time budget (CYCLE_TIME_BUDGET_SECONDS = 0.05 s) ran out while reading TeamViewer's users; nothing was planned or written. Reading everything must take well under the budget: raise CYCLE_TIME_BUDGET_SECONDS (it must stay below the host's function timeout)");
    expect(deadline.passed()).toBe(true);
    expect(deadline.inFlight.aborted).toBe(false);
    const cut = await aborted(deadline.inFlight);
    expect((cut as Error).message).toBe("cut off at the cycle's deadline: the time budget (50 ms) plus one request timeout (1 s)");
    deadline.clear();
  });

  it('When a cycle started before the process noticed (a late start), then the deadline still counts from the cycle\'s start', async () => {
    const deadline = cycleDeadline({ budgetSeconds: 1, graceSeconds: 1, startedAt: Date.now() - 5_000, doing: () => 'planning' });
    expect(deadline.passed()).toBe(true);
    await aborted(deadline.reading);
    await aborted(deadline.inFlight);
    expect(deadline.elapsedSeconds()).toBeGreaterThanOrEqual(5);
    deadline.clear();
  });

  it('When there is no budget (a dry run), then nothing is ever cut', async () => {
    const deadline = cycleDeadline({ budgetSeconds: undefined, graceSeconds: 0, startedAt: Date.now() - 86_400_000, doing: () => 'reading' });
    await wait(30);
    expect([deadline.passed(), deadline.reading.aborted, deadline.inFlight.aborted]).toEqual([false, false, false]);
  });

  it('When the cycle ends first, then clear() stops the timers and nothing aborts later', async () => {
    const deadline = cycleDeadline({ budgetSeconds: 0.02, graceSeconds: 0.02, startedAt: Date.now(), doing: () => 'reading' });
    deadline.clear();
    await wait(80);
    expect([deadline.reading.aborted, deadline.inFlight.aborted]).toEqual([false, false]);
  });
});
