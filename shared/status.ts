/**
 * The status document: what `GET /api/status` and `tvsync status --json` return. Built only from
 * state, so it answers while a cycle runs elsewhere. Field names are stable (documented in the
 * README); later issues add fields, never rename them.
 */
import { HEARTBEAT_STALE_MS } from './sync/cycle';
import { emptyCounts, type CycleCounts, type GroupCounts, type CycleKind, type CycleRecord, type CycleResult, type Escrow, type GroupFailure, type UserFailure } from './domain/model';
import { stagedAllowed, type GuardState, type HeldUser, type StagedDeactivations } from './sync/guard';
import type { GroupLink } from './domain/group-model';
import type { Quarantine } from './sync/quarantine';

export type Health = 'healthy' | 'degraded' | 'quarantined' | 'disabled' | 'never-run';

export interface CycleSummary {
  id: string;
  kind: CycleKind;
  trigger: CycleRecord['trigger'];
  startedAt: string;
  finishedAt: string | null;
  durationSeconds: number | null;
  result: CycleResult;
  imported: number;
  counts: CycleCounts;
  error: { code: string; message: string } | null;
}

export interface StatusDocument {
  health: Health;
  /** One sentence saying why the health is what it is. */
  healthReason: string;
  generatedAt: string;
  lastCycle: CycleSummary | null;
  currentCycle: { id: string; kind: CycleKind; startedAt: string; phase: string | null; done: number; total: number; heartbeatAt: string | null; estimatedEndAt: string | null } | null;
  nextRunAt: string | null;
  intervalMinutes: number;
  /** Why tvsync needs an admin before it goes on as usual, or null. */
  quarantine: { reason: string; since: string; message: string; howToRelease: string; attempts?: number; nextAttemptAt?: string; stopped?: boolean } | null;
  /**
   * Deactivations held back by the accidental-deletion guard, or null. `allowed`: an admin allowed
   * exactly this set (the next cycle applies it); `newlyHeld`: how many the last cycle held for the
   * first time.
   */
  stagedDeactivations: (Omit<StagedDeactivations, 'setId' | 'newlyHeld'> & { allowed: boolean; newlyHeld: number }) | null;
  /** The allowance waiting for the next cycle, else the last one a cycle used up; null when there was none. */
  allowance: AllowanceSummary | null;
  recentFailures: UserFailure[];
  /**
   * Users who should not be active in TeamViewer and were found re-enabled there by hand, newest
   * first, over the recent cycles: who, which TeamViewer user, when found, and what became of it
   * (deactivated again, held back by the accidental-deletion guard, failed).
   */
  reenabledLeavers: ReenabledLeaver[];
  /** Users whose change keeps failing, retried with a growing back-off: how many, and the first 50 by next attempt. */
  escrows: { count: number; users: Escrow[] };
  /** Totals over the recent cycles shown (Entra's "statistics to date", for this window). */
  statistics: { cycles: { total: number; succeeded: number; partial: number; failed: number }; changes: CycleCounts };
  recentCycles: CycleSummary[];
  /** User groups (GROUP_PROVISIONING=assigned), from state only; null when group provisioning is off. */
  groups: GroupsStatus | null;
}

/** What status shows of the user groups: read from state, never from TeamViewer. */
export interface GroupsStatus {
  /** GROUP_NAME_PREFIX. */
  prefix: string;
  /** Entra groups tied to a TeamViewer user group. */
  linked: number;
  /** Those groups by name (the first 100): the TeamViewer group, how tvsync came to hold it, its role and members as last written. */
  list: LinkedGroup[];
  /** The last finished cycle's group counts (a quiet cycle's are 0: nothing changed). */
  lastCycle: GroupCounts | null;
  /** User groups whose change failed in the last finished cycle. */
  failures: GroupFailure[];
  /** What the group settings ask for and cannot be done (an unknown role, a GROUP_ROLES group not assigned). */
  warnings: string[];
  /** User groups going that the accidental-deletion guard holds back (with the deactivations), or null. */
  heldDeletions: { count: number; sample: Array<Omit<HeldUser, 'kind' | 'userPrincipalName'> & { name: string }> } | null;
}

export interface LinkedGroup {
  entraGroupId: string;
  name: string;
  /** Null while a create is in flight (its intent is recorded). */
  teamViewerGroupId: string | null;
  /** created: tvsync made it (and deletes it when the Entra group goes); adopted: it existed, tvsync only empties it then. */
  origin: GroupLink['origin'];
  /** The role tvsync gave it, or null. */
  role: string | null;
  /** Members tvsync manages in it, as last written; null before a cycle counted them. */
  members: number | null;
}

/** Linked groups status lists at most. */
const GROUPS_LISTED = 100;

export interface ReenabledLeaver {
  entraId: string;
  userPrincipalName: string;
  teamViewerId: string | null;
  /** When the cycle that found it started. */
  foundAt: string;
  cycleId: string;
  /** deactivated again | held back (staged) | failed | not yet (the time budget) */
  outcome: string;
}

/** What became of a repair, in the words status uses. */
const OUTCOME: Record<string, string> = { success: 'deactivated again', staged: 'held back by the accidental-deletion guard', failure: 'deactivation failed (see recent failures)', skipped: 'not deactivated yet', warning: 'not deactivated: needs attention' };

export interface AllowanceSummary {
  by: string;
  grantedAt: string;
  /** Deactivations it releases (the users of the staged set it was given for). */
  count: number;
  /** True until a cycle has applied every deactivation it releases. */
  pending: boolean;
  /** Once used up: how many the cycle deactivated (the others needed it no more), which cycle, when. */
  applied: number | null;
  cycleId: string | null;
  appliedAt: string | null;
}

export function summarize(c: CycleRecord): CycleSummary {
  return {
    id: c.id,
    kind: c.kind,
    trigger: c.trigger,
    startedAt: c.startedAt,
    finishedAt: c.finishedAt,
    durationSeconds: c.finishedAt ? Math.round((Date.parse(c.finishedAt) - Date.parse(c.startedAt)) / 100) / 10 : null,
    result: c.result,
    imported: c.imported,
    counts: c.counts,
    error: c.error ?? null,
  };
}

/** A cycle is live while it is `running` and its heartbeat is fresh. */
export function isLive(c: CycleRecord, now: Date): boolean {
  return c.result === 'running' && now.getTime() - Date.parse(c.heartbeatAt ?? c.startedAt) < HEARTBEAT_STALE_MS;
}

/**
 * When the next cycle is due: `intervalMinutes` after the start of the last one. A cycle whose
 * run was interrupted counts as started (so a crash loop does not hammer TeamViewer), but a
 * never-run app is due at once.
 */
export function nextRunAt(cycles: CycleRecord[], intervalMinutes: number, now: Date): Date {
  const last = cycles.find((c) => !c.dryRun);
  if (!last) return now;
  return new Date(Date.parse(last.startedAt) + intervalMinutes * 60_000);
}

export function buildStatus(
  cycles: CycleRecord[],
  intervalMinutes: number,
  now: Date = new Date(),
  guard: GuardState | null = null,
  escrows: Escrow[] = [],
  failureQuarantine: Quarantine | null = null,
  groups: { prefix: string; links: GroupLink[] } | null = null,
): StatusDocument {
  const real = cycles.filter((c) => !c.dryRun);
  const live = real.find((c) => isLive(c, now)) ?? null;
  // A cycle cut by its time budget is one cycle in progress until a continuation finishes it.
  const waiting = !live && real[0]?.budgetReached ? real[0] : null;
  const current = live ?? waiting;
  const finished = real.filter((c) => c.result !== 'running' || !isLive(c, now));
  const last = finished[0] ?? null;
  const lastSucceeded = finished.find((c) => c.result === 'succeeded');

  let health: Health;
  let healthReason: string;
  if (!last) {
    health = 'never-run';
    healthReason = current ? 'the first cycle is running' : 'no cycle has run yet';
  } else if (last.result === 'succeeded') {
    health = 'healthy';
    healthReason = `the last cycle (${last.id}) succeeded`;
  } else if (last.result === 'partial') {
    health = 'degraded';
    const failedGroups = last.counts.groups?.failed ?? 0;
    const failed = [
      last.counts.failed > 0 ? `${last.counts.failed} failed user${last.counts.failed === 1 ? '' : 's'}` : '',
      failedGroups > 0 ? `${failedGroups} failed user group change${failedGroups === 1 ? '' : 's'}` : '',
    ].filter(Boolean).join(' and ');
    healthReason = failed
      ? `the last cycle (${last.id}) finished with ${failed}`
      : `the last cycle (${last.id}) left work undone: deactivations are held back while the account that owns the TeamViewer token cannot be identified`;
  } else {
    health = 'degraded';
    healthReason = `the last cycle (${last.id}) failed: ${last.error?.message ?? 'interrupted'}` + (lastSucceeded ? `; last success ${lastSucceeded.finishedAt}` : '; no cycle has succeeded yet');
  }

  const staged = guard?.staged ?? null;
  const allowed = guard ? stagedAllowed(guard) : false;
  const allowance = allowanceSummary(guard);
  if (staged && !allowed) {
    health = 'quarantined';
    const afterRelease = allowance && !allowance.pending && allowance.appliedAt && Date.parse(allowance.appliedAt) >= Date.parse(staged.since)
      ? `; they are newly held, not among the ${allowance.count} allowed by ${allowance.by} (${allowance.applied} applied by cycle ${allowance.cycleId})`
      : '';
    healthReason = `${staged.count} deactivation(s) held back since ${staged.since} (${staged.reason}): ${staged.message}${afterRelease}`;
  }

  if (failureQuarantine) {
    health = failureQuarantine.stopped ? 'disabled' : 'quarantined';
    healthReason = failureQuarantine.stopped
      ? `stopped: quarantined since ${failureQuarantine.since} (${failureQuarantine.reason}) for 28 days; fix the cause and run "tvsync restart"`
      : `quarantined since ${failureQuarantine.since} (${failureQuarantine.reason}): ${failureQuarantine.message}; next attempt ${failureQuarantine.nextAttemptAt}`;
  }

  return {
    health,
    healthReason,
    generatedAt: now.toISOString(),
    lastCycle: last ? summarize(last) : null,
    currentCycle: current
      ? {
          id: current.id,
          kind: current.kind,
          startedAt: current.startedAt,
          phase: waiting ? 'reached its time budget: continues at the next heartbeat' : (current.phase ?? null),
          done: current.done ?? 0,
          total: current.planned,
          heartbeatAt: current.heartbeatAt ?? null,
          estimatedEndAt: estimateEnd(current, now),
        }
      : null,
    nextRunAt: waiting
      ? now.toISOString()
      : current
      ? null
      : guard?.allowance
        ? now.toISOString()
        : failureQuarantine
          ? failureQuarantine.stopped
            ? null
            : new Date(Math.max(nextRunAt(real, intervalMinutes, now).getTime(), Date.parse(failureQuarantine.nextAttemptAt))).toISOString()
          : nextRunAt(real, intervalMinutes, now).toISOString(),
    intervalMinutes,
 quarantine: failureQuarantine
      ? {
          reason: failureQuarantine.reason,
          since: failureQuarantine.since,
          message: failureQuarantine.message,
          attempts: failureQuarantine.attempts,
          nextAttemptAt: failureQuarantine.nextAttemptAt,
          stopped: failureQuarantine.stopped,
          howToRelease: 'fix the cause (the message says what TeamViewer or Graph answered), then run "tvsync restart" or wait for the next attempt; the first successful cycle ends the quarantine',
        }
      : staged && !allowed
      ? { reason: staged.reason, since: staged.since, message: staged.message, howToRelease: `check the users held (stagedDeactivations lists ${staged.sample.length < staged.count ? 'a sample; every one: tvsync logs --status staged --cycle ' + staged.cycleId : 'them'}), fix the cause if the read was wrong, or run "tvsync allow-deactivations" to apply exactly these ${staged.count}` }
      : null,
    stagedDeactivations: staged ? stagedSummary(staged, allowed) : null,
    allowance,
    recentFailures: last?.failures ?? [],
    reenabledLeavers: real.flatMap((c) => (c.driftRepairs ?? []).filter((d) => d.deactivates).map((d) => ({
      entraId: d.entraId,
      userPrincipalName: d.userPrincipalName,
      teamViewerId: d.teamViewerId,
      foundAt: d.foundAt,
      cycleId: c.id,
      outcome: OUTCOME[d.status] ?? d.status,
    }))),
    escrows: { count: escrows.length, users: [...escrows].sort((a, b) => a.nextAttemptAt.localeCompare(b.nextAttemptAt)).slice(0, 50) },
    statistics: totals(real.filter((c) => c.result !== 'running')),
    recentCycles: real.slice(0, 10).map(summarize),
    groups: groups ? groupsStatus(groups, last, staged) : null,
  };
}

function groupsStatus(groups: { prefix: string; links: GroupLink[] }, last: CycleRecord | null, staged: StagedDeactivations | null): GroupsStatus {
  const list = [...groups.links]
    .sort((a, b) => a.name.localeCompare(b.name))
    .slice(0, GROUPS_LISTED)
    .map((l): LinkedGroup => ({ entraGroupId: l.entraGroupId, name: l.name, teamViewerGroupId: l.teamViewerGroupId, origin: l.origin, role: l.role?.name ?? null, members: l.members ?? null }));
  const heldGroups = (staged?.sample ?? []).filter((h) => h.kind === 'group');
  return {
    prefix: groups.prefix,
    linked: groups.links.filter((l) => l.teamViewerGroupId).length,
    list,
    lastCycle: last ? { ...last.counts.groups } : null,
    failures: last?.groupFailures ?? [],
    warnings: last?.groupWarnings ?? [],
    heldDeletions: staged?.groups
      ? { count: staged.groups, sample: heldGroups.map(({ entraId, userPrincipalName, teamViewerId, reason }) => ({ entraId, name: userPrincipalName, teamViewerId, reason })) }
      : null,
  };
}

function stagedSummary(staged: StagedDeactivations, allowed: boolean): NonNullable<StatusDocument['stagedDeactivations']> {
  const { setId: _internal, newlyHeld, ...shown } = staged;
  return { ...shown, newlyHeld: newlyHeld ?? staged.count, allowed };
}

function allowanceSummary(guard: GuardState | null): AllowanceSummary | null {
  const pending = guard?.allowance;
  if (pending) return { by: pending.by, grantedAt: pending.grantedAt, count: pending.count ?? guard.staged?.count ?? 0, pending: true, applied: null, cycleId: null, appliedAt: null };
  const used = guard?.lastRelease;
  return used ? { by: used.by, grantedAt: used.grantedAt, count: used.allowed, pending: false, applied: used.applied, cycleId: used.cycleId, appliedAt: used.at } : null;
}

function totals(cycles: CycleRecord[]): StatusDocument['statistics'] {
  const result = { total: cycles.length, succeeded: 0, partial: 0, failed: 0 };
  const changes = emptyCounts();
  for (const c of cycles) {
    if (c.result === 'succeeded' || c.result === 'partial' || c.result === 'failed') result[c.result]++;
    for (const k of Object.keys(changes) as Array<keyof CycleCounts>) if (k !== 'unchanged' && k !== 'groups') changes[k] += c.counts[k] ?? 0;
    for (const k of Object.keys(changes.groups) as Array<keyof GroupCounts>) changes.groups[k] += c.counts.groups?.[k] ?? 0;
  }
  changes.unchanged = cycles[0]?.counts.unchanged ?? 0;
  return { cycles: result, changes };
}

/** Linear estimate from the share of planned actions done so far; null until there is one. */
function estimateEnd(c: CycleRecord, now: Date): string | null {
  const done = c.done ?? 0;
  if (c.phase !== 'applying' || done === 0 || c.planned === 0) return null;
  const elapsed = now.getTime() - Date.parse(c.startedAt);
  return new Date(Date.parse(c.startedAt) + (elapsed * c.planned) / done).toISOString();
}
