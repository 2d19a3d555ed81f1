/**
 * The accidental-deletion guard's decisions, as tables of cases: when a cycle's deactivations are
 * held back (and why), what an allowance releases, and what the guard remembers for next time.
 */
import { describe, expect, it } from 'vitest';
import {
  consumeAllowance,
  DEFAULT_GUARD,
  evaluateGuard,
  judge,
  stagedAllowed,
  thresholdLimit,
  type GuardInput,
  type GuardSettings,
  type GuardState,
  type HeldUser,
  type JudgeInput,
} from '../../shared/sync/guard';

const pct = (value: number): GuardSettings['threshold'] => ({ kind: 'percent', value });
const count = (value: number): GuardSettings['threshold'] => ({ kind: 'count', value });

type Expected = false | 'SuspiciousRead' | 'TooManyDeactivations';
interface Case {
  name: string;
  input: Partial<GuardInput> & Pick<GuardInput, 'deactivations'>;
  settings?: Partial<GuardSettings>;
  hold: Expected;
  limit?: number;
}

// With no guard setting at all (DEACTIVATION_THRESHOLD=500, SUSPICIOUS_DROP_PERCENT=25).
const defaults: Case[] = [
  { name: 'nothing to deactivate, even after an empty read', input: { deactivations: 0, inScope: 0, baseline: 100 }, hold: false },
  { name: 'the first cycle (no baseline yet) with a few leavers', input: { deactivations: 40, inScope: 60, baseline: null }, hold: false },
  { name: 'a read with exactly half of a 60-user tenant (a lost page)', input: { deactivations: 30, inScope: 30, baseline: 60 }, hold: 'SuspiciousRead' },
  { name: 'a read with 31 of 60 users', input: { deactivations: 29, inScope: 31, baseline: 60 }, hold: 'SuspiciousRead' },
  { name: 'exactly 25 % fewer users in scope (inclusive)', input: { deactivations: 25, inScope: 75, baseline: 100 }, hold: 'SuspiciousRead' },
  { name: '24 % fewer users in scope', input: { deactivations: 24, inScope: 76, baseline: 100 }, hold: false },
  { name: '10 of 40 users gone (25 %, 10 users)', input: { deactivations: 10, inScope: 30, baseline: 40 }, hold: 'SuspiciousRead' },
  { name: '9 of 39 users gone (23 %)', input: { deactivations: 9, inScope: 30, baseline: 39 }, hold: false },
  { name: 'a 12-user company losing 2 people', input: { deactivations: 2, inScope: 10, baseline: 12 }, hold: false },
  { name: 'a 12-user company losing 3 people (25 %, but only 3 users)', input: { deactivations: 3, inScope: 9, baseline: 12 }, hold: false },
  { name: 'a 12-user company losing 5 people (42 %, 5 users)', input: { deactivations: 5, inScope: 7, baseline: 12 }, hold: false },
  { name: 'a 12-user company reading half of its users', input: { deactivations: 6, inScope: 6, baseline: 12 }, hold: 'SuspiciousRead' },
  { name: 'a 3-user company losing 1 person', input: { deactivations: 1, inScope: 2, baseline: 3 }, hold: false },
  { name: 'a 2-user company reading 1 user', input: { deactivations: 1, inScope: 1, baseline: 2 }, hold: 'SuspiciousRead' },
  { name: 'a 1-user company reading nobody in scope', input: { deactivations: 1, inScope: 0, baseline: 1 }, hold: 'SuspiciousRead' },
  { name: 'a 100,000-user tenant reading nobody in scope', input: { deactivations: 100_000, inScope: 0, baseline: 100_000 }, hold: 'SuspiciousRead' },
  { name: 'a read that grew', input: { deactivations: 3, inScope: 120, baseline: 100 }, hold: false },
  { name: 'a baseline of zero users in scope', input: { deactivations: 2, inScope: 0, baseline: 0 }, hold: false },
  { name: '500 deactivations in a 10,000-user tenant', input: { deactivations: 500, inScope: 9_500, baseline: 10_000 }, hold: false, limit: 500 },
  { name: '501 deactivations in a 10,000-user tenant', input: { deactivations: 501, inScope: 9_499, baseline: 10_000 }, hold: 'TooManyDeactivations', limit: 500 },
  { name: 'a short read and too many deactivations: the read is named', input: { deactivations: 900, inScope: 100, baseline: 1_000 }, hold: 'SuspiciousRead' },
];

const tuned: Case[] = [
  { name: 'SUSPICIOUS_DROP_PERCENT=0 and 90 % fewer users', input: { deactivations: 90, inScope: 10, baseline: 100 }, settings: { suspiciousDropPercent: 0 }, hold: false },
  { name: 'SUSPICIOUS_DROP_PERCENT=0 and nobody in scope (the check is off)', input: { deactivations: 100, inScope: 0, baseline: 100 }, settings: { suspiciousDropPercent: 0 }, hold: false },
  { name: 'SUSPICIOUS_DROP_PERCENT=99 and nobody in scope of 3', input: { deactivations: 3, inScope: 0, baseline: 3 }, settings: { suspiciousDropPercent: 99 }, hold: 'SuspiciousRead' },
  { name: 'SUSPICIOUS_DROP_PERCENT=80 and half of 4 users', input: { deactivations: 2, inScope: 2, baseline: 4 }, settings: { suspiciousDropPercent: 80 }, hold: false },
  { name: 'SUSPICIOUS_DROP_PERCENT=80 and 80 of 100 users gone', input: { deactivations: 80, inScope: 20, baseline: 100 }, settings: { suspiciousDropPercent: 80 }, hold: 'SuspiciousRead' },
  { name: 'SUSPICIOUS_DROP_PERCENT=10 and 10 of 100 users gone', input: { deactivations: 10, inScope: 90, baseline: 100 }, settings: { suspiciousDropPercent: 10 }, hold: 'SuspiciousRead' },
  { name: 'DEACTIVATION_THRESHOLD=15% of 6 managed users and 1 deactivation (never rounds to 0)', input: { deactivations: 1, managed: 6, inScope: 5, baseline: 6 }, settings: { threshold: pct(15) }, hold: false, limit: 1 },
  { name: 'DEACTIVATION_THRESHOLD=15% of 6 managed users and 2 deactivations', input: { deactivations: 2, managed: 6, inScope: 6, baseline: 6 }, settings: { threshold: pct(15) }, hold: 'TooManyDeactivations', limit: 1 },
  { name: 'DEACTIVATION_THRESHOLD=10% of 1,000 managed users and 100 deactivations', input: { deactivations: 100, managed: 1_000, inScope: 950, baseline: 1_000 }, settings: { threshold: pct(10) }, hold: false, limit: 100 },
  { name: 'DEACTIVATION_THRESHOLD=10% of 1,000 managed users and 101 deactivations', input: { deactivations: 101, managed: 1_000, inScope: 950, baseline: 1_000 }, settings: { threshold: pct(10) }, hold: 'TooManyDeactivations', limit: 100 },
  { name: 'DEACTIVATION_THRESHOLD=2 and 3 deactivations', input: { deactivations: 3, inScope: 57, baseline: 60 }, settings: { threshold: count(2) }, hold: 'TooManyDeactivations', limit: 2 },
];

describe('evaluateGuard', () => {
  it.each([...defaults, ...tuned])('When $name, then the guard holds: $hold', ({ input, settings, hold, limit }) => {
    const decision = evaluateGuard({ managed: 100, inScope: 0, baseline: null, ...input }, { ...DEFAULT_GUARD, ...settings });
    expect(decision.hold ? decision.reason : false).toBe(hold);
    if (limit !== undefined) expect(decision.limit).toBe(limit);
  });

  it('When a read is held as suspicious, then the message gives both numbers, the drop and the setting', () => {
    const decision = evaluateGuard({ deactivations: 30, managed: 60, inScope: 30, baseline: 60 }, DEFAULT_GUARD);
    expect(decision).toMatchObject({ hold: true, message: 'Entra ID returned 30 users in scope, 50% fewer than the 60 of the last good read (SUSPICIOUS_DROP_PERCENT=25); 30 deactivation(s) are held back in case the read was wrong' });
  });

  it('When the baseline comes from an older version (users read), then the message says users, not users in scope', () => {
    const decision = evaluateGuard({ deactivations: 5, managed: 60, inScope: 0, baseline: 60, measure: 'read' }, DEFAULT_GUARD);
    expect(decision).toMatchObject({ hold: true, message: expect.stringMatching(/^Entra ID returned no users, where the last good read had 60;/) });
  });

  it.each([
    [count(500), 0, 500],
    [pct(15), 0, 1],
    [pct(15), 6, 1],
    [pct(15), 7, 1],
    [pct(15), 14, 2],
    [pct(100), 3, 3],
  ])('When the threshold is %j with %i managed users, then at most %i deactivations go through', (threshold, managed, limit) => {
    expect(thresholdLimit(threshold, managed)).toBe(limit);
  });
});

const user = (n: number): HeldUser => ({ entraId: `E-${n}`, userPrincipalName: `user${n}@contoso.example`, teamViewerId: `u${n}`, reason: 'no longer assigned' });
const users = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => user(from + i));
const ids = (list: HeldUser[]) => new Set(list.map((u) => u.entraId.toLowerCase()));
const AT = '2026-03-10T12:00:00.000Z';

function judged(over: Partial<JudgeInput>) {
  return judge({
    state: { staged: null, allowance: null, baselineInScope: 100 },
    deactivations: [],
    allowedIds: new Set(),
    stagedIds: null,
    managed: 100,
    inScope: 100,
    imported: 100,
    settings: DEFAULT_GUARD,
    cycleId: 'c2',
    at: AT,
    newSetId: 'new-set',
    ...over,
  });
}

/** The state after a read of 40 of 100 users was held, and an admin allowed those 60. */
const allowedSixty: GuardState = {
  staged: { reason: 'SuspiciousRead', message: 'm', count: 60, limit: 500, since: '2026-03-10T11:00:00.000Z', cycleId: 'c1', sample: users(41, 60), newlyHeld: 60, inScope: 40, setId: 'held-60' },
  allowance: { grantedAt: '2026-03-10T11:30:00.000Z', by: 'alice', setId: 'held-60', count: 60, stagedSetId: 'held-60', reviewedInScope: 40 },
  baselineInScope: 100,
};

describe('judge: what an allowance releases and what is held', () => {
  it('When the allowed 60 are deactivated and the next read returns nobody, then exactly those 60 are released and the other 40 are held as newly held', () => {
    const j = judged({ state: allowedSixty, deactivations: users(1, 100), allowedIds: ids(users(41, 100)), stagedIds: ids(users(41, 100)), inScope: 0, imported: 0 });
    expect(j.released).toEqual(ids(users(41, 100)));
    expect(j.held).toEqual(ids(users(1, 40)));
    expect(j.decision).toMatchObject({ hold: true, reason: 'SuspiciousRead' });
    expect(j.next.staged).toMatchObject({ count: 40, newlyHeld: 40, since: AT, cycleId: 'c2', setId: 'new-set', inScope: 0 });
    expect(j.decision).toMatchObject({ message: expect.stringMatching(/^Entra ID returned no users in scope, where the last good read had 40;/) });
    expect(j.newSet).toEqual({ setId: 'new-set', ids: [...ids(users(1, 40))].sort() });
    expect(j.next.allowance).toEqual(allowedSixty.allowance);
    expect(j.next.baselineInScope, 'the read the admin accepted').toBe(40);
    expect(stagedAllowed(j.next)).toBe(false);
  });

  it('When the read the admin reviewed comes again, then the allowed 60 are released, nothing is held and the baseline moves to it', () => {
    const j = judged({ state: allowedSixty, deactivations: users(41, 100), allowedIds: ids(users(41, 100)), stagedIds: ids(users(41, 100)), inScope: 40, imported: 40 });
    expect(j.released.size).toBe(60);
    expect(j.held.size).toBe(0);
    expect(j.next.staged).toBeNull();
    expect(j.next.baselineInScope).toBe(40);
  });

  it('When 2 more leave after the reviewed read (38 against the 40 allowed, not 100), then they go through under the threshold of 2: only they are counted', () => {
    const j = judged({ state: allowedSixty, deactivations: [...users(41, 100), ...users(1, 2)], allowedIds: ids(users(41, 100)), inScope: 38, imported: 38, settings: { ...DEFAULT_GUARD, threshold: count(2) } });
    expect(j.released.size).toBe(60);
    expect(j.decision).toMatchObject({ hold: false, limit: 2 });
    expect(j.held.size).toBe(0);
  });

  it('When 3 more leave after the reviewed read, over the threshold of 2, then those 3 are held and the allowed 60 still go', () => {
    const j = judged({ state: allowedSixty, deactivations: [...users(41, 100), ...users(1, 3)], allowedIds: ids(users(41, 100)), inScope: 37, imported: 37, settings: { ...DEFAULT_GUARD, threshold: count(2) } });
    expect(j.released.size).toBe(60);
    expect(j.held).toEqual(ids(users(1, 3)));
    expect(j.decision).toMatchObject({ hold: true, reason: 'TooManyDeactivations' });
  });

  it('When the same users are held cycle after cycle, then the batch keeps its start, its stored set and says none are new', () => {
    const state: GuardState = { staged: { ...allowedSixty.staged!, setId: 'held-60' }, allowance: null, baselineInScope: 100 };
    const j = judged({ state, deactivations: users(41, 100), stagedIds: ids(users(41, 100)), inScope: 40, imported: 40 });
    expect(j.newSet).toBeNull();
    expect(j.next.staged).toMatchObject({ since: '2026-03-10T11:00:00.000Z', setId: 'held-60', count: 60, newlyHeld: 0, cycleId: 'c2' });
  });

  it('When more users join a held batch, then it keeps its start and counts the newcomers as newly held in a new stored set', () => {
    const state: GuardState = { staged: { ...allowedSixty.staged!, setId: 'held-60' }, allowance: null, baselineInScope: 100 };
    const j = judged({ state, deactivations: users(36, 100), stagedIds: ids(users(41, 100)), inScope: 35, imported: 35 });
    expect(j.next.staged).toMatchObject({ since: '2026-03-10T11:00:00.000Z', setId: 'new-set', count: 65, newlyHeld: 5 });
    expect(j.newSet?.ids).toHaveLength(65);
  });

  it('When an allowance comes from an older version (no users recorded), then it is dropped and every deactivation is judged', () => {
    const legacy: GuardState = { staged: { ...allowedSixty.staged!, setId: undefined }, allowance: { grantedAt: AT, by: 'bob' }, baselineImported: 100 };
    const j = judged({ state: legacy, deactivations: users(41, 100), inScope: 40, imported: 40 });
    expect(j.droppedLegacyAllowance).toBe(true);
    expect(j.released.size).toBe(0);
    expect(j.held.size).toBe(60);
    expect(j.next.allowance).toBeNull();
    expect(j.next.staged).toMatchObject({ since: AT, newlyHeld: 60 });
  });

  it('When the baseline comes from an older version (users read), then this read is compared by users read, and the next baseline is users in scope', () => {
    const legacy: GuardState = { staged: null, allowance: null, baselineImported: 300 };
    const held = judged({ state: legacy, deactivations: users(1, 5), inScope: 95, imported: 100 });
    expect(held.decision).toMatchObject({ hold: true, reason: 'SuspiciousRead' });
    expect(held.next).toMatchObject({ baselineImported: 300, baselineInScope: null });
    const fine = judged({ state: { staged: null, allowance: null, baselineImported: 110 }, deactivations: users(1, 5), inScope: 95, imported: 100 });
    expect(fine.decision.hold).toBe(false);
    expect(fine.next.baselineInScope).toBe(95);
    expect(fine.next.baselineImported).toBeUndefined();
  });

  it('When a cycle applied everything an allowance released, then it is used up and remembered as the last release', () => {
    const next = consumeAllowance(allowedSixty, { count: 60, cycleId: 'c2', at: AT });
    expect(next.allowance).toBeNull();
    expect(next.lastRelease).toEqual({ by: 'alice', grantedAt: '2026-03-10T11:30:00.000Z', allowed: 60, applied: 60, cycleId: 'c2', at: AT });
  });
});

describe('judge: user groups going count as deactivations', () => {
  const group = (n: number): HeldUser => ({ entraId: `G-${n}`, userPrincipalName: `Group ${n}`, teamViewerId: `10${n}`, reason: 'user group deleted (tvsync created it): no longer assigned', kind: 'group' });

  it('When 25 users and 2 groups go over a threshold of 20, then all 27 are held, the groups lead the sample and are counted apart', () => {
    const j = judged({ deactivations: [...users(1, 25), group(1), group(2)], settings: { ...DEFAULT_GUARD, threshold: count(20) }, inScope: 95 });
    expect(j.decision).toMatchObject({ hold: true, reason: 'TooManyDeactivations', limit: 20 });
    expect(j.held).toEqual(new Set([...ids(users(1, 25)), 'g-1', 'g-2']));
    expect(j.next.staged).toMatchObject({ count: 27, groups: 2 });
    expect(j.next.staged!.sample.slice(0, 2).map((s) => s.entraId)).toEqual(['G-1', 'G-2']);
    expect(j.next.staged!.sample).toHaveLength(20);
  });

  it('When only users are held, then the staged batch names no groups', () => {
    const j = judged({ deactivations: users(1, 3), settings: { ...DEFAULT_GUARD, threshold: count(2) } });
    expect(j.next.staged).toMatchObject({ count: 3 });
    expect(j.next.staged!.groups).toBeUndefined();
  });

  it('When an allowance names a group, then that group is released like a user and the rest is judged', () => {
    const state: GuardState = { staged: null, allowance: { grantedAt: AT, by: 'alice', setId: 's', count: 1, stagedSetId: 's', reviewedInScope: 100 }, baselineInScope: 100 };
    const j = judged({ state, deactivations: [group(1), user(1)], allowedIds: new Set(['g-1']), settings: { ...DEFAULT_GUARD, threshold: count(1) } });
    expect(j.released).toEqual(new Set(['g-1']));
    expect(j.held.size).toBe(0);
  });
});
