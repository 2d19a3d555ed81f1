/**
 * The accidental-deletion guard: a cycle that would deactivate more users than
 * DEACTIVATION_THRESHOLD allows, or that read far fewer users from Entra than the last good cycle
 * (SUSPICIOUS_DROP_PERCENT), holds every deactivation back ("staged") until an admin allows them
 * (`tvsync allow-deactivations`). Creates and updates still go on.
 *
 * Invariants:
 * - The decision is pure: counts in, decision out. The cycle applies it to the plan.
 * - An allowance releases whatever is staged, whatever the reason it was held, for exactly one
 *   cycle: it is consumed by the cycle that uses it, so a later mass deactivation is held again.
 * - Staging never loses a deactivation: the next cycle plans it again from Entra and state.
 */

export type DeactivationThreshold = { kind: 'count'; value: number } | { kind: 'percent'; value: number };

export interface GuardSettings {
  threshold: DeactivationThreshold;
  /** Hold deactivations when the users read drop by more than this share of the last good read (0 = off). */
  suspiciousDropPercent: number;
}

export const DEFAULT_GUARD: GuardSettings = { threshold: { kind: 'count', value: 500 }, suspiciousDropPercent: 50 };

/** A drop of fewer users than this is never "suspicious": small tenants shrink by large shares. */
export const MIN_SUSPICIOUS_DROP = 10;

export type HoldReason = 'TooManyDeactivations' | 'SuspiciousRead';

export interface GuardInput {
  deactivations: number;
  /** TeamViewer users we manage (links with a TeamViewer id): the base of a percent threshold. */
  managed: number;
  imported: number;
  /** Users read by the last good cycle, when there is one. */
  previousImported: number | null;
}

export type GuardDecision = { hold: false; limit: number } | { hold: true; reason: HoldReason; limit: number; message: string };

/** Parses "500" or "15%"; null when the text is neither. */
export function parseThreshold(text: string): DeactivationThreshold | null {
  const percent = /^(\d{1,3})\s*%$/.exec(text.trim());
  if (percent) {
    const value = Number(percent[1]);
    return value >= 1 && value <= 100 ? { kind: 'percent', value } : null;
  }
  if (/^\d{1,7}$/.test(text.trim())) {
    const value = Number(text.trim());
    return value >= 1 ? { kind: 'count', value } : null;
  }
  return null;
}

export function describeThreshold(t: DeactivationThreshold): string {
  return t.kind === 'count' ? `${t.value}` : `${t.value}% of managed users`;
}

export function evaluateGuard(input: GuardInput, settings: GuardSettings): GuardDecision {
  const limit = settings.threshold.kind === 'count' ? settings.threshold.value : Math.floor((input.managed * settings.threshold.value) / 100);
  if (input.deactivations === 0) return { hold: false, limit };
  const drop = input.previousImported && input.previousImported > 0 ? ((input.previousImported - input.imported) / input.previousImported) * 100 : 0;
  const dropped = (input.previousImported ?? 0) - input.imported;
  if (settings.suspiciousDropPercent > 0 && drop > settings.suspiciousDropPercent && dropped >= MIN_SUSPICIOUS_DROP) {
    return {
      hold: true,
      reason: 'SuspiciousRead',
      limit,
      message: `Entra ID returned ${input.imported} users, ${Math.round(drop)}% fewer than the ${input.previousImported} of the last good cycle (SUSPICIOUS_DROP_PERCENT=${settings.suspiciousDropPercent}); ${input.deactivations} deactivation(s) are held back in case the read was wrong`,
    };
  }
  if (input.deactivations > limit) {
    return {
      hold: true,
      reason: 'TooManyDeactivations',
      limit,
      message: `${input.deactivations} deactivations exceed DEACTIVATION_THRESHOLD (${describeThreshold(settings.threshold)} = ${limit}); they are held back`,
    };
  }
  return { hold: false, limit };
}

/** The guard's row in the Meta table. */
export const GUARD_KEY = 'deactivations';

export interface StagedDeactivations {
  reason: HoldReason;
  message: string;
  count: number;
  limit: number;
  /** When deactivations were first held (kept while later cycles keep holding them). */
  since: string;
  cycleId: string;
  /** Up to 20 of the users held back, for the status page and the email. */
  sample: Array<{ entraId: string; userPrincipalName: string; teamViewerId: string | null; reason: string }>;
}

export interface GuardState {
  staged: StagedDeactivations | null;
  allowance: { grantedAt: string; by: string } | null;
  /** Users read by the last cycle that was not held as a suspicious read: the drop baseline. */
  baselineImported: number | null;
}

export const EMPTY_GUARD_STATE: GuardState = { staged: null, allowance: null, baselineImported: null };
