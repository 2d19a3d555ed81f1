/**
 * How quarantine treats timeouts: a target that does not answer is a transient outage, not
 * something an admin must fix, so a cycle that failed on a timeout neither enters a quarantine
 * nor prolongs or ends one (the back-off an admin sees does not move), however often it happens.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_QUARANTINE, nextQuarantine, type Quarantine } from '../../shared/sync/quarantine';

const at = new Date('2026-11-28T12:00:00Z');
const timedOut = (code: string) => ({ result: 'failed' as const, error: { code, message: `${code}: no answer within 30 s (3 attempts)` }, attempted: 0, failed: 0 });
const TIMEOUT_CODES = ['GRAPH_TIMEOUT', 'TEAMVIEWER_TIMEOUT', 'STATE_UNAVAILABLE'];

describe('quarantine and timeouts', () => {
  it.each(TIMEOUT_CODES)('When cycle after cycle fails with %s, then tvsync is never quarantined', (code) => {
    let state: Quarantine | null = null;
    for (let cycle = 0; cycle < 50; cycle++) state = nextQuarantine(state, timedOut(code), DEFAULT_QUARANTINE, new Date(at.getTime() + cycle * 40 * 60_000));
    expect(state).toBeNull();
  });

  it.each(TIMEOUT_CODES)('When a quarantined tvsync then fails with %s, then the quarantine stays exactly as it was', (code) => {
    const quarantined = nextQuarantine(null, { result: 'failed', error: { code: 'TEAMVIEWER_UNAUTHORIZED', message: '401' }, attempted: 0, failed: 0 }, DEFAULT_QUARANTINE, at);
    expect(quarantined?.reason).toBe('Unauthorized');
    expect(nextQuarantine(quarantined, timedOut(code), DEFAULT_QUARANTINE, new Date(at.getTime() + 7 * 3_600_000))).toBe(quarantined);
  });
});
