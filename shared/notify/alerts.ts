/**
 * Which failure emails are due: one per condition (a quarantine reason, a batch of held-back
 * deactivations, a run of cycles without success), and one recovery email when all clear.
 *
 * Invariants:
 * - Pure: state + facts + clock in, emails to send and the next state out.
 * - A condition's email is sent once: its key is remembered until the condition clears. A send
 *   that fails is not remembered, so the next evaluation tries again (and never fails a cycle).
 * - One recovery email per recovery: it is due when something had been sent and nothing is active
 *   any more; until it goes out the old keys are kept, so it is retried, and then they are dropped.
 * - Evaluated only under the run lease (one evaluator at a time), so two processes cannot both
 *   decide to send the same email.
 */
import type { Notification } from './templates';
import type { Release, StagedDeactivations } from '../sync/guard';
import type { Quarantine } from '../sync/quarantine';
import type { CycleRecord } from '../domain/model';

export const ALERTS_KEY = 'alerts';

export interface AlertState {
  /** Condition key → when its email went out. */
  sent: Record<string, string>;
}

export interface AlertFacts {
  quarantine: Quarantine | null;
  /** Deactivations held back and not yet allowed. */
  staged: StagedDeactivations | null;
  /** The last allowance a cycle used up: the email says what it applied when that cycle held new ones. */
  release?: Release | null;
  /** Recent real cycles, newest first. */
  cycles: CycleRecord[];
  intervalMinutes: number;
  alertAfterMissedCycles: number;
  now: Date;
}

export interface AlertDecision {
  /** Emails to send now, with the key to remember when one goes out. */
  due: Array<{ key: string; notification: Notification }>;
  /** Keys of the conditions active now. */
  active: string[];
  /** The recovery email, when everything cleared after something was sent. */
  recovery: Notification | null;
}

export function decideAlerts(state: AlertState, facts: AlertFacts): AlertDecision {
  const at = facts.now.toISOString();
  const due: AlertDecision['due'] = [];
  const active: string[] = [];
  const sentKeys = Object.keys(state.sent);

  const q = facts.quarantine;
  if (q) {
    const key = `quarantine:${q.reason}`;
    active.push(key);
    if (!state.sent[key]) {
      const previous = sentKeys.find((k) => k.startsWith('quarantine:') && k !== key);
      const base = { at, since: q.since, detail: q.message, nextAttemptAt: q.stopped ? null : q.nextAttemptAt };
      due.push({
        key,
        notification: previous
          ? { kind: 'quarantine-reason-changed', previousReason: previous.slice('quarantine:'.length), reason: q.reason, ...base }
          : { kind: 'quarantine-entered', reason: q.reason, ...base },
      });
    }
  }

  const s = facts.staged;
  const r = facts.release ?? null;
  if (s) {
    const key = `staged:${s.reason}:${s.since}`;
    active.push(key);
    if (!state.sent[key]) {
      due.push({
        key,
        notification: {
          kind: 'deactivations-staged',
          at,
          count: s.count,
          threshold: s.limit,
          cause: s.reason === 'SuspiciousRead' ? 'suspicious-drop' : 'threshold',
          sample: s.sample.map((u) => ({ userPrincipalName: u.userPrincipalName, reason: u.reason, ...(u.kind === 'group' ? { group: true } : {}) })),
          ...(s.groups ? { groups: s.groups } : {}),
          ...(s.message ? { detail: s.message } : {}),
          // Held by the cycle that applied an allowance (or after it): say what was allowed, and that these were not.
          ...(r && Date.parse(r.at) >= Date.parse(s.since) ? { allowed: { count: r.allowed, applied: r.applied, by: r.by, grantedAt: r.grantedAt } } : {}),
        },
      });
    }
  }

  // A run of cycles without success: measured from the last success, or from the first attempt.
  const finished = facts.cycles.filter((c) => c.result !== 'running');
  const lastSuccess = finished.find((c) => c.result === 'succeeded' || c.result === 'partial');
  const anchor = lastSuccess ? (lastSuccess.finishedAt ?? lastSuccess.startedAt) : finished[finished.length - 1]?.startedAt;
  // (In quarantine the quarantine email already says it: no second email for the same trouble.)
  if (!q && anchor && (!lastSuccess || finished[0] !== lastSuccess)) {
    const missed = Math.floor((facts.now.getTime() - Date.parse(anchor)) / (facts.intervalMinutes * 60_000));
    if (missed >= facts.alertAfterMissedCycles) {
      // Keyed by the last success (or "never"), not by a time that moves with the window of cycles.
      const key = `outage:${lastSuccess?.id ?? 'never'}`;
      active.push(key);
      if (!state.sent[key]) {
        const lastError = finished[0]?.error ?? null;
        due.push({ key, notification: { kind: 'no-successful-cycle', at, lastSuccessAt: lastSuccess ? anchor : null, since: anchor, missedCycles: missed, lastError } });
      }
    }
  }

  let recovery: Notification | null = null;
  if (active.length === 0 && sentKeys.length > 0) {
    const quarantineKey = sentKeys.find((k) => k.startsWith('quarantine:') || k.startsWith('staged:'));
    const since = sentKeys.map((k) => state.sent[k]).sort()[0];
    recovery = {
      kind: 'recovered',
      at,
      ended: quarantineKey ? 'quarantine' : 'outage',
      reason: (quarantineKey ?? sentKeys[0]).split(':')[1],
      since,
    };
  }
  return { due, active, recovery };
}

/**
 * The state after sending: active conditions whose email went out (now or before) are remembered;
 * cleared ones are forgotten — unless everything cleared, when the recovery email decides.
 */
export function nextAlertState(state: AlertState, decision: AlertDecision, delivered: string[], recoveryDelivered: boolean, now: Date): AlertState {
  if (decision.recovery) return recoveryDelivered ? { sent: {} } : state;
  // Until every due email went out, keep what was sent before: a reason change whose email failed
  // must still read as a change next time, and the eventual recovery must know it owes one.
  const sent: Record<string, string> = decision.due.every((d) => delivered.includes(d.key)) ? {} : { ...state.sent };
  for (const key of decision.active) {
    if (state.sent[key]) sent[key] = state.sent[key];
    else if (delivered.includes(key)) sent[key] = now.toISOString();
  }
  return { sent };
}
