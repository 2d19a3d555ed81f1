/**
 * Users as a kind of work for the apply machinery (apply.ts): how a planned user action is
 * applied (shared/sync/apply-user.ts), reported, logged and counted, and — after applying — the
 * links whose record of TeamViewer's values the plan left out of date.
 *
 * Invariants:
 * - A deactivation the guard holds is reported `staged` (as a disable) and never sent.
 * - Deactivations and unlinks are never held by an escrow: a user who must lose access does, even
 *   while an earlier change of theirs keeps failing.
 * - After a rejected token, or a token that may not create users, no further write starts. A 403 on
 *   one PATCH (e.g. a TeamViewer administrator the token may not modify) fails that user only.
 * - Counts: `drift` is a share of the changes (a repair is also counted as what it did); failures
 *   (at most 50) and repairs (at most 20) are kept on the cycle's row for status.
 */
import { mapWithConcurrency } from '../../http/pool';
import { logRecordFromAction } from '../../state/logs';
import type { ActionReport, CycleRecord, DriftRepair, Link, UserFailure } from '../../domain/model';
import { applyAction, dryRunReport, reportOf } from '../apply-user';
import { errorInfo } from '../error-info';
import { refreshed } from '../drift';
import type { Action } from '../planner';
import type { WorkKind } from './apply';
import type { GuardRun } from './guard';
import type { UserPlan } from './plan-users';
import type { CycleRun } from './run';

const MAX_FAILURES_KEPT = 50;
const MAX_DRIFT_KEPT = 20;
/**
 * Links a full cycle records anew at most (drift the planner leaves alone, values an older version
 * never recorded): state writes that change nothing in TeamViewer, so they never crowd out real work.
 */
const MAX_REFRESHES = 1_000;

export function userWork(run: CycleRun, guard: GuardRun, links: readonly Link[]): WorkKind<Action, ActionReport> {
  const linkByEntra = new Map(links.map((l) => [l.entraId, l]));
  return {
    key: (action) => action.entraId,
    hasChange: (action) => action.kind !== 'skip',
    mayWait: (action) => action.kind !== 'disable' && action.kind !== 'unlink' && action.kind !== 'skip',
    heldBack: (action) => (guard.held.has(action) ? `staged, not applied: ${guard.holdMessage}` : null),
    notDone: (action, status, reason) => (status === 'staged' ? { ...reportOf(action, 'staged'), kind: 'disable', reason } : { ...reportOf(action, 'skipped'), reason }),
    planned: dryRunReport,
    apply: (action, signal) => applyAction(action, linkByEntra.get(action.entraId), run.deps, run.now, signal),
    isFatal: (action, code) => code === 'TEAMVIEWER_UNAUTHORIZED' || (code === 'TEAMVIEWER_FORBIDDEN' && action.kind === 'create'),
    logRecord: logRecordFromAction,
    tally(record, report) {
      count(record, report);
      if (report.drift) keepDrift(record, report, run.startedAt);
      run.reports.push(report);
    },
  };
}

function count(record: CycleRecord, report: ActionReport): void {
  const c = record.counts;
  if (report.status === 'failure') {
    c.failed++;
    if ((record.failures ?? []).length < MAX_FAILURES_KEPT) {
      (record.failures ??= []).push({
        entraId: report.entraId,
        userPrincipalName: report.userPrincipalName,
        action: report.kind,
        code: report.error?.code ?? 'INTERNAL',
        message: (report.error?.message ?? '').slice(0, 500),
        at: new Date().toISOString(),
      } satisfies UserFailure);
    }
    return;
  }
  if (report.status === 'staged') {
    c.staged++;
    return;
  }
  if (report.status === 'skipped' || report.status === 'warning') {
    if (report.kind !== 'unlink') c.skipped++;
    return;
  }
  if (report.drift) c.drift++;
  switch (report.kind) {
    case 'create': c.created++; break;
    case 'update': c.updated++; break;
    case 'enable': c.enabled++; break;
    case 'disable': c.disabled++; break;
    case 'link': c.linked++; break;
    default: break;
  }
}

/** Keeps what the status needs of a repair of a hand edit (the first MAX_DRIFT_KEPT). */
function keepDrift(record: CycleRecord, report: ActionReport, foundAt: Date): void {
  if (report.status === 'planned' || (record.driftRepairs ?? []).length >= MAX_DRIFT_KEPT) return;
  (record.driftRepairs ??= []).push({
    entraId: report.entraId,
    userPrincipalName: report.userPrincipalName,
    teamViewerId: report.teamViewerId,
    action: report.kind,
    status: report.status,
    deactivates: report.changes.some((c) => c.attribute === 'active' && c.new === false),
    reason: (report.reason ?? '').slice(0, 300),
    foundAt: foundAt.toISOString(),
  } satisfies DriftRepair);
}

/**
 * Records TeamViewer's current values on links whose record is out of date although the plan
 * leaves their user alone (drift the planner does not put back, values never recorded), so the
 * next quiet cycle does not find the same drift again. Best effort: a failed write is tried again
 * at the next full read.
 */
export async function refreshLinks(run: CycleRun, users: UserPlan): Promise<void> {
  const { deps, cycleId } = run;
  const batch = users.refresh.slice(0, MAX_REFRESHES);
  if (batch.length === 0) return;
  let failed = 0;
  await mapWithConcurrency(batch, Math.max(1, deps.concurrency), async ({ link, current }) => {
    await deps.state.putLink(refreshed(link, current, users.compared, run.now().toISOString())).catch(() => failed++);
  });
  deps.logger.debug(`cycle ${cycleId}: recorded TeamViewer's values on ${batch.length - failed} link(s)${users.refresh.length > batch.length ? ` (${users.refresh.length - batch.length} left for the next full read)` : ''}`, { cycleId, refreshed: batch.length - failed, failed });
}

/**
 * Once, on state from a version without it: gives every link read at the start of this cycle its
 * TeamViewer-id index row (links written since have theirs). Best effort: tried again next cycle.
 */
export async function indexLinks(run: CycleRun, links: readonly Link[]): Promise<void> {
  const { deps, cycleId } = run;
  const written = await deps.state.completeLinkIndex(links).catch((err: unknown) => {
    deps.logger.warn(`cycle ${cycleId}: could not index the links by TeamViewer id; tried again next cycle`, { cycleId, error: errorInfo(err).message });
    return 0;
  });
  if (written > 0) deps.logger.info(`cycle ${cycleId}: indexed ${written} link(s) by TeamViewer id (once, after an upgrade)`, { cycleId, indexed: written });
}
