import { describe, expect, it } from 'vitest';
import { decideAlerts, nextAlertState, type AlertState } from '../../shared/notify/alerts';
import type { CycleRecord } from '../../shared/domain/model';
import { emptyCounts } from '../../shared/domain/model';
import { nextQuarantine, type Quarantine } from '../../shared/sync/quarantine';

const now = new Date('2026-11-28T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();
const cycle = (startedMinutesAgo: number, result: CycleRecord['result']): CycleRecord => ({
  id: `c${startedMinutesAgo}`, kind: 'incremental', dryRun: false, trigger: 'timer', startedAt: minutesAgo(startedMinutesAgo), finishedAt: minutesAgo(startedMinutesAgo - 1), result, counts: emptyCounts(), imported: 0, planned: 0,
  ...(result === 'failed' ? { error: { code: 'GRAPH_UNAVAILABLE', message: 'Graph is down' } } : {}),
});
const q = (reason: string): Quarantine => ({ reason, code: 'X', message: 'm', since: minutesAgo(60), attempts: 1, nextAttemptAt: minutesAgo(-300), stopped: false });
const facts = (over: Partial<Parameters<typeof decideAlerts>[1]> = {}) => ({ quarantine: null, staged: null, cycles: [cycle(5, 'succeeded')], intervalMinutes: 40, alertAfterMissedCycles: 3, now, ...over });
const empty: AlertState = { sent: {} };

/** Runs one evaluation where every email is delivered; returns the kinds sent and the next state. */
function evaluate(state: AlertState, f: ReturnType<typeof facts>, deliver = true) {
  const d = decideAlerts(state, f);
  const kinds = [...d.due.map((x) => x.notification.kind), ...(d.recovery ? [d.recovery.kind] : [])];
  return { kinds, state: nextAlertState(state, d, deliver ? d.due.map((x) => x.key) : [], deliver && d.recovery !== null, now) };
}

describe('held-back deactivations after an allowance', () => {
  const staged = (since: string) => ({ reason: 'SuspiciousRead' as const, message: 'Entra ID returned no users in scope', count: 40, limit: 500, since, cycleId: 'c2', sample: [] });
  const release = { by: 'alice', grantedAt: minutesAgo(30), allowed: 60, applied: 60, cycleId: 'c2', at: minutesAgo(10) };

  it('When the cycle that applied an allowance held others, then their email says what was allowed and applied', () => {
    const d = decideAlerts(empty, facts({ staged: staged(minutesAgo(10)), release }));
    expect(d.due.map((x) => x.notification)).toEqual([expect.objectContaining({ kind: 'deactivations-staged', count: 40, detail: 'Entra ID returned no users in scope', allowed: { count: 60, applied: 60, by: 'alice', grantedAt: minutesAgo(30) } })]);
  });

  it('When user groups going are held with the deactivations, then the email counts them and marks them in its sample', () => {
    const withGroups = { ...staged(minutesAgo(10)), count: 3, groups: 1, sample: [{ entraId: 'g1', userPrincipalName: 'Entra - Helpdesk', teamViewerId: '101', reason: 'user group deleted', kind: 'group' as const }, { entraId: 'e1', userPrincipalName: 'ann@contoso.test', teamViewerId: 'u1', reason: 'unassigned' }] };
    const d = decideAlerts(empty, facts({ staged: withGroups }));
    expect(d.due[0]?.notification).toMatchObject({ kind: 'deactivations-staged', count: 3, groups: 1, sample: [{ userPrincipalName: 'Entra - Helpdesk', group: true }, { userPrincipalName: 'ann@contoso.test' }] });
    expect((d.due[0]?.notification as { sample: Array<{ group?: boolean }> }).sample[1]).not.toHaveProperty('group');
  });

  it('When the last allowance was used up before this batch began, then the email does not mention it', () => {
    const d = decideAlerts(empty, facts({ staged: staged(minutesAgo(5)), release }));
    expect(d.due[0]?.notification).not.toHaveProperty('allowed');
  });
});

describe('failure emails: one per reason, one recovery per recovery', () => {
  it('quarantine entered → one email; the same quarantine again → none; reason changed → one; cleared → one recovery; then none', () => {
    let r = evaluate(empty, facts({ quarantine: q('Unauthorized') }));
    expect(r.kinds).toEqual(['quarantine-entered']);
    r = evaluate(r.state, facts({ quarantine: q('Unauthorized') }));
    expect(r.kinds).toEqual([]);
    r = evaluate(r.state, facts({ quarantine: q('GraphPermissionMissing') }));
    expect(r.kinds).toEqual(['quarantine-reason-changed']);
    r = evaluate(r.state, facts());
    expect(r.kinds).toEqual(['recovered']);
    r = evaluate(r.state, facts());
    expect(r.kinds).toEqual([]);
  });

  it('a failed send is retried at the next evaluation, then sent once', () => {
    let r = evaluate(empty, facts({ quarantine: q('Unauthorized') }), false);
    expect(r.kinds).toEqual(['quarantine-entered']);
    r = evaluate(r.state, facts({ quarantine: q('Unauthorized') }));
    expect(r.kinds).toEqual(['quarantine-entered']);
    expect(evaluate(r.state, facts({ quarantine: q('Unauthorized') })).kinds).toEqual([]);
  });

  it('a recovery email that fails is retried until it goes out', () => {
    const sent = evaluate(empty, facts({ quarantine: q('Unauthorized') })).state;
    const failed = evaluate(sent, facts(), false);
    expect(failed.kinds).toEqual(['recovered']);
    expect(evaluate(failed.state, facts()).kinds).toEqual(['recovered']);
  });

  it.each([
    ['no success for 3 intervals', [cycle(30, 'failed'), cycle(70, 'failed'), cycle(125, 'succeeded')], ['no-successful-cycle']],
    ['never succeeded, first attempt 2 h ago', [cycle(10, 'failed'), cycle(121, 'failed')], ['no-successful-cycle']],
    ['failing for only 1 interval', [cycle(10, 'failed'), cycle(45, 'succeeded')], []],
    ['the last cycle succeeded', [cycle(5, 'succeeded'), cycle(200, 'failed')], []],
    ['never ran', [], []],
  ])('outage: %s', (_label, cycles, expected) => {
    expect(evaluate(empty, facts({ cycles: cycles as CycleRecord[] })).kinds).toEqual(expected);
  });

  it('a long outage sends one email, however many cycles slide through the window', () => {
    let state = empty;
    let sent = 0;
    for (let n = 3; n <= 40; n++) {
      const cycles = Array.from({ length: Math.min(n, 20) }, (_, i) => cycle(10 + 40 * i, 'failed'));
      const r = evaluate(state, facts({ cycles }));
      sent += r.kinds.length;
      state = r.state;
    }
    expect(sent).toBe(1);
  });

  it('a reason change whose email failed is still a change next time, and the recovery is still owed', () => {
    const entered = evaluate(empty, facts({ quarantine: q('Unauthorized') })).state;
    const failedChange = evaluate(entered, facts({ quarantine: q('Forbidden') }), false);
    expect(failedChange.kinds).toEqual(['quarantine-reason-changed']);
    expect(evaluate(failedChange.state, facts({ quarantine: q('Forbidden') })).kinds).toEqual(['quarantine-reason-changed']);
    expect(evaluate(failedChange.state, facts()).kinds).toEqual(['recovered']);
  });

  it('in quarantine, no second email about the same trouble as an outage', () => {
    expect(evaluate(empty, facts({ quarantine: q('Unauthorized'), cycles: [cycle(10, 'failed'), cycle(300, 'failed')] })).kinds).toEqual(['quarantine-entered']);
  });
});

describe('quarantine back-off', () => {
  const outcome = { result: 'failed' as const, error: { code: 'TEAMVIEWER_UNAUTHORIZED', message: '401' }, attempted: 0, failed: 0 };
  const settings = { failurePercent: 40, minFailures: 5000 };

  it('6 h, 12 h, 24 h, then daily; stopped after 28 days; any success ends it; an outage leaves it as it is', () => {
    let at = new Date('2026-01-01T00:00:00Z');
    let state: Quarantine | null = null;
    const gaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      state = nextQuarantine(state, outcome, settings, at);
      gaps.push((Date.parse(state!.nextAttemptAt) - at.getTime()) / 3_600_000);
      at = new Date(state!.nextAttemptAt);
    }
    expect(gaps).toEqual([6, 12, 24, 24, 24]);
    expect(state!.stopped).toBe(false);
    state = nextQuarantine(state, outcome, settings, new Date(Date.parse(state!.since) + 28 * 24 * 3_600_000));
    expect(state!.stopped).toBe(true);
    expect(nextQuarantine(state, { result: 'failed', error: { code: 'GRAPH_UNAVAILABLE', message: '' }, attempted: 0, failed: 0 }, settings, at)).toBe(state);
    expect(nextQuarantine(state, { result: 'partial', attempted: 10, failed: 1 }, settings, at)).toBeNull();
  });

  it('the failure share quarantines only from the minimum count', () => {
    expect(nextQuarantine(null, { result: 'partial', attempted: 10, failed: 9 }, settings, now)).toBeNull();
    expect(nextQuarantine(null, { result: 'partial', attempted: 10, failed: 9 }, { failurePercent: 40, minFailures: 5 }, now)?.reason).toBe('FailureRate');
    expect(nextQuarantine(null, { result: 'partial', attempted: 10, failed: 3 }, { failurePercent: 40, minFailures: 1 }, now)).toBeNull();
  });
});
