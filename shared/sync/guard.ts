/**
 * The accidental-deletion guard: a cycle that would deactivate more users than
 * DEACTIVATION_THRESHOLD allows, or whose read of Entra looks suspiciously short
 * (SUSPICIOUS_DROP_PERCENT), holds those deactivations back ("staged") until an admin allows them
 * (`tvsync allow-deactivations`). Creates and updates still go on.
 *
 * Invariants:
 * - Decisions are pure: counts in, decision out (evaluateGuard); state in, state out (judge,
 *   consumeAllowance). The cycle applies them; shared/sync/guard-state.ts stores them.
 * - A suspicious read is measured on users in scope (entitled), against the last read that was not
 *   held as suspicious. With the check on (the default), a read that returns half or fewer of them
 *   holds at any tenant size, and a read with no user in scope holds whenever the baseline had one.
 *   SUSPICIOUS_DROP_PERCENT=0 turns all of it off, as the setting says.
 * - An allowance releases exactly the users it names: the Entra object ids of the staged set an
 *   admin allowed, stored whole (not a sample). Every other deactivation is judged again, and only
 *   those count towards the threshold; a suspicious read still holds them — measured against the
 *   read the admin reviewed, which allowing accepted as real.
 * - An allowance is used up by the cycle that applied every deactivation it released; until then it
 *   is kept, so a deactivation that failed is retried under it.
 * - The drop baseline moves only with a read that was not held as suspicious, or to the read an
 *   admin accepted by allowing its batch. Nothing but a cycle writes it: restart (plain or full)
 *   keeps the baseline, the staged set and the allowance.
 * - Staging never loses a deactivation: the next cycle plans it again from Entra and state.
 * - A user group going (GROUP_PROVISIONING=assigned) counts as one deactivation: it is judged,
 *   held, allowed and released with them, by its Entra object id.
 */

export type DeactivationThreshold = { kind: 'count'; value: number } | { kind: 'percent'; value: number };

export interface GuardSettings {
  threshold: DeactivationThreshold;
  /** Hold deactivations when the users in scope drop by this share of the baseline or more (0 = no suspicious-read check). */
  suspiciousDropPercent: number;
}

export const DEFAULT_SUSPICIOUS_DROP_PERCENT = 25;
export const DEFAULT_GUARD: GuardSettings = { threshold: { kind: 'count', value: 500 }, suspiciousDropPercent: DEFAULT_SUSPICIOUS_DROP_PERCENT };

/**
 * Small tenants shrink by large shares: a drop of fewer users than this is suspicious only when it
 * reaches HALF_READ_PERCENT (a 12-user company losing 3 people is not a broken read; losing 6 may be).
 */
export const MIN_SUSPICIOUS_DROP = 10;
/** A read with half or fewer of the baseline's users is suspicious at any size (when the check is on and at or below this). */
export const HALF_READ_PERCENT = 50;

export type HoldReason = 'TooManyDeactivations' | 'SuspiciousRead';

export interface GuardInput {
  /** Deactivations the guard judges: those no allowance released. */
  deactivations: number;
  /** TeamViewer users we manage (links with a TeamViewer id): the base of a percent threshold. */
  managed: number;
  /** Users in scope (entitled) in this read. */
  inScope: number;
  /** Users in scope in the last read not held as suspicious; null when there is none. */
  baseline: number | null;
  /** What the two numbers count: users in scope, or (a baseline written by an older version) users read. */
  measure?: 'in scope' | 'read';
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

/** Most deactivations one cycle may apply: a percentage never rounds below one user. */
export function thresholdLimit(t: DeactivationThreshold, managed: number): number {
  return t.kind === 'count' ? t.value : Math.max(1, Math.floor((managed * t.value) / 100));
}

export function evaluateGuard(input: GuardInput, settings: GuardSettings): GuardDecision {
  const limit = thresholdLimit(settings.threshold, input.managed);
  if (input.deactivations === 0) return { hold: false, limit };
  const suspicion = suspiciousRead(input, settings.suspiciousDropPercent);
  if (suspicion) {
    return { hold: true, reason: 'SuspiciousRead', limit, message: `${suspicion}; ${input.deactivations} deactivation(s) are held back in case the read was wrong` };
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

/** Why this read looks short, or null when it does not. Integer arithmetic: the comparisons are exact. */
function suspiciousRead(input: GuardInput, percent: number): string | null {
  const { inScope, baseline } = input;
  if (percent <= 0 || baseline === null || baseline <= 0) return null;
  const users = input.measure === 'read' ? 'users' : 'users in scope';
  if (inScope === 0) return `Entra ID returned no ${users}, where the last good read had ${baseline}`;
  const dropped = baseline - inScope;
  if (dropped <= 0) return null;
  const reaches = (p: number) => dropped * 100 >= p * baseline;
  if (!reaches(percent)) return null;
  if (dropped < MIN_SUSPICIOUS_DROP && !reaches(HALF_READ_PERCENT)) return null;
  return `Entra ID returned ${inScope} ${users}, ${Math.round((dropped * 100) / baseline)}% fewer than the ${baseline} of the last good read (SUSPICIOUS_DROP_PERCENT=${percent})`;
}

/** The guard's row in the Meta table. */
export const GUARD_KEY = 'deactivations';

/**
 * One deactivation the guard judges — or one user group going (deleted, or emptied of tvsync's
 * members and unlinked), which counts like a deactivation. Entra object ids of users and groups
 * share one space, so the held and allowed sets name both by object id.
 */
export interface HeldUser {
  entraId: string;
  /** A user's UPN; for a group, its TeamViewer name. */
  userPrincipalName: string;
  /** A user's TeamViewer id; for a group, its TeamViewer user group id. */
  teamViewerId: string | null;
  reason: string;
  /** Set for a user group. */
  kind?: 'group';
}

export interface StagedDeactivations {
  reason: HoldReason;
  message: string;
  count: number;
  limit: number;
  /** When this batch was first held (kept while later cycles keep holding it). */
  since: string;
  /** The last cycle that held it. */
  cycleId: string;
  /** Up to 20 of the users held back, for the status page and the email. */
  sample: HeldUser[];
  /** Held for the first time by that cycle (not held by the one before). Absent on older rows. */
  newlyHeld?: number;
  /** Users in scope in that cycle's read: what an admin who allows the batch accepts as real. */
  inScope?: number;
  /** The id set holding every held user's Entra object id. Absent on rows of older versions. */
  setId?: string;
  /** Of `count`, how many are user groups going (deleted or unlinked); absent when none. They come first in `sample`. */
  groups?: number;
}

export interface Allowance {
  grantedAt: string;
  by: string;
  /** The id set of the users it releases. Absent on rows of older versions: such an allowance releases nobody. */
  setId?: string;
  /** How many users it releases. */
  count?: number;
  /** The staged set it was granted for (its set also holds users of an earlier allowance not yet applied). */
  stagedSetId?: string;
  /**
   * Users in scope in the read that held the allowed batch: by allowing it, the admin accepted that
   * read as real, so the deactivations the allowance does not cover are judged against it.
   */
  reviewedInScope?: number;
}

/** The last allowance a cycle used up: what status and the email report. */
export interface Release {
  by: string;
  grantedAt: string;
  /** Users the allowance released, and how many of them the cycle deactivated. */
  allowed: number;
  applied: number;
  cycleId: string;
  at: string;
}

export interface GuardState {
  staged: StagedDeactivations | null;
  allowance: Allowance | null;
  /** Users in scope in the last read not held as suspicious: the drop baseline. */
  baselineInScope?: number | null;
  /** Older versions' baseline (users read, in scope or not); used until a cycle writes baselineInScope. */
  baselineImported?: number | null;
  lastRelease?: Release | null;
}

export const EMPTY_GUARD_STATE: GuardState = { staged: null, allowance: null, baselineInScope: null };

/** Does the allowance cover the staged set as it stands (what status calls `allowed`)? */
export function stagedAllowed(state: GuardState): boolean {
  if (!state.staged || !state.allowance) return false;
  // An allowance of an older version named no set: it was granted for the staged set of its time.
  if (!state.allowance.setId) return !state.staged.setId;
  return state.allowance.stagedSetId === state.staged.setId;
}

export interface JudgeInput {
  state: GuardState;
  /** The deactivations this cycle planned, by Entra object id, with what to show for each. */
  deactivations: HeldUser[];
  /** Users the allowance releases (lower-case object ids); empty without one. */
  allowedIds: ReadonlySet<string>;
  /** The staged set's users (lower-case object ids), when it is stored. */
  stagedIds: ReadonlySet<string> | null;
  managed: number;
  inScope: number;
  imported: number;
  settings: GuardSettings;
  cycleId: string;
  at: string;
  /** The id to give the held set when it is new. */
  newSetId: string;
}

export interface Judgement {
  /** Lower-case object ids of deactivations applied under the allowance. */
  released: Set<string>;
  /** Lower-case object ids of deactivations held back. */
  held: Set<string>;
  /** The decision about the deactivations no allowance released. */
  decision: GuardDecision;
  /** The guard state to save before anything is applied. */
  next: GuardState;
  /** The held set to store before `next` is saved; null when it is stored already. */
  newSet: { setId: string; ids: string[] } | null;
  /** An allowance of an older version (naming no users) was dropped: its deactivations are judged again. */
  droppedLegacyAllowance: boolean;
}

const SAMPLE_SIZE = 20;

/** One cycle's guard: what the allowance releases, what is judged and held, and the next state. */
export function judge(input: JudgeInput): Judgement {
  const { state } = input;
  const legacyAllowance = state.allowance !== null && !state.allowance.setId;
  const allowance = legacyAllowance ? null : state.allowance;
  const released = new Set<string>();
  const judged: HeldUser[] = [];
  for (const d of input.deactivations) {
    const id = d.entraId.toLowerCase();
    if (allowance && input.allowedIds.has(id)) released.add(id);
    else judged.push(d);
  }
  const reviewed = allowance?.reviewedInScope;
  const legacyBaseline = reviewed === undefined && state.baselineInScope == null && state.baselineImported != null;
  const decision = evaluateGuard(
    legacyBaseline
      ? { deactivations: judged.length, managed: input.managed, inScope: input.imported, baseline: state.baselineImported ?? null, measure: 'read' }
      : { deactivations: judged.length, managed: input.managed, inScope: input.inScope, baseline: reviewed ?? state.baselineInScope ?? null },
    input.settings,
  );
  const held = new Set(decision.hold ? judged.map((d) => d.entraId.toLowerCase()) : []);

  let staged: StagedDeactivations | null = null;
  let newSet: Judgement['newSet'] = null;
  if (decision.hold && held.size > 0) {
    // The same batch goes on while it is held and not allowed; anything else starts a new one.
    const continuing = state.staged !== null && !stagedAllowed(state);
    const unchanged = continuing && input.stagedIds !== null && state.staged?.setId !== undefined && sameIds(held, input.stagedIds);
    const setId = unchanged ? (state.staged!.setId as string) : input.newSetId;
    if (!unchanged) newSet = { setId, ids: [...held].sort() };
    // Groups are few and each weighs many accounts: they lead the sample, so none hides behind users.
    const groups = judged.filter((d) => d.kind === 'group');
    staged = {
      reason: decision.reason,
      message: decision.message,
      count: held.size,
      limit: decision.limit,
      since: continuing ? state.staged!.since : input.at,
      cycleId: input.cycleId,
      sample: [...groups, ...judged.filter((d) => d.kind !== 'group')].slice(0, SAMPLE_SIZE),
      newlyHeld: [...held].filter((id) => !input.stagedIds?.has(id)).length,
      inScope: input.inScope,
      setId,
      ...(groups.length > 0 ? { groups: groups.length } : {}),
    };
  }
  const keepBaseline = decision.hold && decision.reason === 'SuspiciousRead';
  const next: GuardState = {
    staged,
    allowance,
    ...(keepBaseline
      ? { baselineInScope: reviewed ?? state.baselineInScope ?? null, ...(legacyBaseline ? { baselineImported: state.baselineImported } : {}) }
      : { baselineInScope: input.inScope }),
    lastRelease: state.lastRelease ?? null,
  };
  return { released, held, decision, next, newSet, droppedLegacyAllowance: legacyAllowance };
}

/** The state once a cycle applied every deactivation the allowance released: it is used up. */
export function consumeAllowance(state: GuardState, applied: { count: number; cycleId: string; at: string }): GuardState {
  if (!state.allowance) return state;
  const { by, grantedAt, count } = state.allowance;
  return { ...state, allowance: null, lastRelease: { by, grantedAt, allowed: count ?? applied.count, applied: applied.count, cycleId: applied.cycleId, at: applied.at } };
}

/** Id sets the state names (the rest can go). */
export function referencedSets(state: GuardState | null): Set<string> {
  return new Set([state?.staged?.setId, state?.allowance?.setId].filter((id): id is string => Boolean(id)));
}

function sameIds(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const id of a) if (!b.has(id)) return false;
  return true;
}
