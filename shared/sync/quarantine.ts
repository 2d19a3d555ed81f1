/**
 * Quarantine, as Entra does it: when the credentials are rejected, a permission is missing, or
 * most calls fail, cycles slow down — the next attempt after 6 h, 12 h, 24 h, then once a day —
 * and after 28 days tvsync stops trying and says so. The first successful cycle ends it;
 * `tvsync restart` clears it.
 *
 * Invariants:
 * - The transition is pure (outcome + previous state + clock → next state); the cycle stores it.
 * - A failure that an admin cannot fix (a Graph outage, a timeout) never quarantines: it is
 *   retried at the normal interval, and alerting covers a long outage.
 */
export const QUARANTINE_KEY = 'quarantine';
export const QUARANTINE_STOP_AFTER_MS = 28 * 24 * 60 * 60_000;
const BACKOFF_HOURS = [6, 12, 24];

export interface Quarantine {
  /** Entra-style reason: Unauthorized, Forbidden, GraphPermissionMissing, GraphAuthentication, ServicePrincipalNotFound, FailureRate. */
  reason: string;
  code: string;
  message: string;
  since: string;
  attempts: number;
  nextAttemptAt: string;
  /** After 28 days: no more cycles until `tvsync restart`. */
  stopped: boolean;
}

export interface QuarantineSettings {
  /** Quarantine when more than this share of a cycle's attempted changes failed... */
  failurePercent: number;
  /** ...and at least this many failed (Entra evaluates from 5,000 failures). */
  minFailures: number;
}

export const DEFAULT_QUARANTINE: QuarantineSettings = { failurePercent: 40, minFailures: 5000 };

const REASONS: Record<string, string> = {
  TEAMVIEWER_UNAUTHORIZED: 'Unauthorized',
  TEAMVIEWER_FORBIDDEN: 'Forbidden',
  GRAPH_FORBIDDEN: 'GraphPermissionMissing',
  GRAPH_UNAUTHORIZED: 'GraphAuthentication',
  GRAPH_AUTH_FAILED: 'GraphAuthentication',
  GRAPH_NOT_FOUND: 'ServicePrincipalNotFound',
};

export interface CycleOutcome {
  result: 'succeeded' | 'partial' | 'failed' | 'running';
  error?: { code: string; message: string };
  /** Changes attempted (created + updated + enabled + disabled + linked + failed) and failed. */
  attempted: number;
  failed: number;
}

/** Why this outcome quarantines, or null. */
export function quarantineCause(outcome: CycleOutcome, settings: QuarantineSettings): { reason: string; code: string; message: string } | null {
  if (outcome.result === 'failed' && outcome.error && REASONS[outcome.error.code]) {
    return { reason: REASONS[outcome.error.code], code: outcome.error.code, message: outcome.error.message };
  }
  if (outcome.failed >= settings.minFailures && outcome.attempted > 0 && (outcome.failed / outcome.attempted) * 100 > settings.failurePercent) {
    return {
      reason: 'FailureRate',
      code: 'FAILURE_RATE',
      message: `${outcome.failed} of ${outcome.attempted} changes failed (more than ${settings.failurePercent}%)`,
    };
  }
  return null;
}

export function nextQuarantine(previous: Quarantine | null, outcome: CycleOutcome, settings: QuarantineSettings, now: Date): Quarantine | null {
  const cause = quarantineCause(outcome, settings);
  if (!cause) {
    // Any cycle that got through ends it; a failure an admin cannot fix leaves things as they are.
    return outcome.result === 'failed' ? previous : null;
  }
  const attempts = (previous?.attempts ?? 0) + 1;
  const since = previous?.since ?? now.toISOString();
  const hours = BACKOFF_HOURS[attempts - 1] ?? 24;
  return {
    ...cause,
    since,
    attempts,
    nextAttemptAt: new Date(now.getTime() + hours * 3_600_000).toISOString(),
    stopped: now.getTime() - Date.parse(since) >= QUARANTINE_STOP_AFTER_MS,
  };
}

export function describeQuarantine(q: Quarantine): string {
  return q.stopped
    ? `quarantined since ${q.since} (${q.reason}: ${q.message}); stopped after 28 days — fix the cause, then run "tvsync restart"`
    : `quarantined since ${q.since} (${q.reason}: ${q.message}); attempt ${q.attempts}, next attempt ${q.nextAttemptAt}`;
}
