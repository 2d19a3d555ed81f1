/**
 * The record phase: what the cycle planned, what became of it, and its end — the provisioning
 * log retention, escrows, the delta watermark, the guard's allowance, quarantine, the cycle's
 * final row and the report.
 *
 * Invariants:
 * - The result is `failed` when the cycle stopped writing (lease lost, a fatal error, a budget
 *   used up by reading), `partial` when users or user groups failed or deactivations were held for want of the
 *   token owner, else `succeeded`. Only a cycle that did not stop saves the watermark, so the next
 *   one reads whatever this one could not finish.
 * - Quarantine moves with every real cycle: entered or prolonged on a cause an admin must fix,
 *   ended by any cycle that got through.
 * - The final write happens after every progress write has settled, and is tried twice; when it
 *   fails the report still reaches the caller, with STATE_WRITE_FAILED.
 * - A dry run records nothing.
 */
import { errorInfo, type ErrorInfo } from '../error-info';
import { DEFAULT_QUARANTINE, describeQuarantine, nextQuarantine, QUARANTINE_KEY, type Quarantine } from '../quarantine';
import { WATERMARK_KEY, type Watermark } from '../watermark';
import type { Applier } from './apply';
import type { GuardRun } from './guard';
import type { CycleReport } from './ports';
import type { ChangesRead } from './read';
import type { CycleRun } from './run';

/** Puts the plan on the cycle's row (for the progress bar and status) before anything is applied. */
export async function recordPlan(run: CycleRun, plan: { planned: number; unchanged: number; imported: number }): Promise<void> {
  const { deps, record, log, cycleId } = run;
  const elapsed = run.deadline.elapsedSeconds();
  if (!run.dryRun && deps.timeBudgetSeconds && elapsed > deps.timeBudgetSeconds / 2) {
    log.warn(`cycle ${cycleId}: reading and planning took ${Math.round(elapsed)} s, more than half of CYCLE_TIME_BUDGET_SECONDS (${deps.timeBudgetSeconds} s); little time is left to apply changes: raise the budget`, { cycleId, readSeconds: Math.round(elapsed) });
  }
  record.counts.unchanged = plan.unchanged;
  record.planned = plan.planned;
  log.info(`cycle ${cycleId} planned ${plan.planned} actions for ${plan.imported} users (${plan.unchanged} unchanged)`, { cycleId, imported: plan.imported, planned: plan.planned, unchanged: plan.unchanged });
  await run.beat(true);
}

/** Whether the applying went on to the end; decided once every kind of work has been applied. */
export async function settleApplying(run: CycleRun, applier: Applier): Promise<void> {
  await applier.flushLogs();
  if (!applier.stalled()) return;
  // Reading and planning took the whole budget: nothing was applied, and a continuation would
  // do the same. Fail, saying what to change, and let the next cycle come at the interval.
  applier.budgetReached = false;
  delete run.record.budgetReached;
  applier.abort = {
    code: 'CYCLE_BUDGET_EXCEEDED',
    message: `the cycle's time budget (CYCLE_TIME_BUDGET_SECONDS = ${run.deps.timeBudgetSeconds} s) ran out before anything could be applied: reading and planning took ${Math.round(run.deadline.elapsedSeconds())} s. Raise CYCLE_TIME_BUDGET_SECONDS well above the time a full read takes`,
  };
  run.log.error(`cycle ${run.cycleId}: ${applier.abort.message}`, { cycleId: run.cycleId, code: applier.abort.code });
}

/** After applying: retention, escrows, the result, the watermark and the guard's allowance. */
export async function recordOutcome(run: CycleRun, applier: Applier, changes: ChangesRead, guard: GuardRun): Promise<void> {
  const { deps, record, log, cycleId, dryRun } = run;
  const { abort } = applier;
  if (!dryRun && deps.logs) await deps.logs.enforceRetention(run.now()).catch((err) => log.warn('could not apply the provisioning log retention', { cycleId, error: errorInfo(err).message }));
  // An escrow lives only while its object still has a change to make: one whose user needs nothing
  // any more (fixed by hand, left scope) is dropped, so it cannot hold up quiet cycles forever.
  if (!dryRun && !abort) await applier.dropSettledEscrows();
  record.result = abort ? 'failed' : record.counts.failed > 0 || record.counts.groups.failed > 0 ? 'partial' : 'succeeded';
  if (abort) record.error = abort;
  const { delta } = changes;
  if (delta && !abort) await deps.state.putMeta<Watermark>(WATERMARK_KEY, delta.watermark, delta.etag).catch((err) => log.warn('could not save the delta watermark; the next cycle reads everything', { cycleId, error: errorInfo(err).message }));
  await guard.finish([...run.reports, ...run.groupReports], !abort && !applier.budgetReached);
  // Deactivations held for want of the token owner are work not done: say so (and no quiet shortcut next time).
  if (guard.heldForOwner > 0 && record.result === 'succeeded') record.result = 'partial';
}

/** The end of every cycle, whatever happened: quarantine, the final row, the report. */
export async function finishCycle(run: CycleRun): Promise<CycleReport> {
  const { record, log, cycleId, dryRun } = run;
  run.stop();
  record.finishedAt = run.now().toISOString();
  record.heartbeatAt = record.finishedAt;
  if (!dryRun) await moveQuarantine(run);
  const stateError = dryRun ? undefined : await writeFinalRow(run);
  run.progress('finished');
  log.info(`cycle ${cycleId} ${record.result}`, { cycleId, result: record.result, ...record.counts });
  const warnings = run.reports.filter((r) => r.status === 'warning').length;
  if (record.counts.failed > 0 || warnings > 0) {
    // Counts only: who and why live in state (status, tvsync status), not in Application Insights.
    log.warn(`cycle ${cycleId}: ${record.counts.failed} user(s) failed and ${warnings} need attention; run "tvsync status" or open the status page for who and why`, { cycleId, failed: record.counts.failed, warnings });
  }
  if (record.counts.groups.failed > 0) log.warn(`cycle ${cycleId}: ${record.counts.groups.failed} user group change(s) failed; run "tvsync status" or open the status page for which and why`, { cycleId, groupsFailed: record.counts.groups.failed });
  return {
    cycleId,
    kind: record.kind,
    dryRun,
    result: record.result,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    imported: record.imported,
    counts: record.counts,
    actions: run.reports,
    ...(run.deps.groups?.settings.provisioning === 'assigned' ? { groupActions: run.groupReports, groupWarnings: record.groupWarnings ?? [] } : {}),
    ...(record.error ?? stateError ? { error: record.error ?? stateError } : {}),
  };
}

async function moveQuarantine(run: CycleRun): Promise<void> {
  const { deps, record, log, cycleId } = run;
  try {
    const row = await deps.state.getMeta<Quarantine>(QUARANTINE_KEY);
    const c = record.counts;
    const next = nextQuarantine(row?.value ?? null, { result: record.result, error: record.error, attempted: c.created + c.updated + c.enabled + c.disabled + c.linked + c.failed, failed: c.failed }, deps.quarantine ?? DEFAULT_QUARANTINE, run.now());
    if (next) {
      await deps.state.putMeta(QUARANTINE_KEY, next, row?.etag ?? null);
      log.error(`cycle ${cycleId}: ${describeQuarantine(next)}`, { cycleId, reason: next.reason });
    } else if (row) {
      await deps.state.deleteMeta(QUARANTINE_KEY, row.etag);
      log.warn(`cycle ${cycleId}: quarantine (${row.value.reason}) ended`, { cycleId });
    }
  } catch (err) {
    log.warn('could not update the quarantine state', { cycleId, error: errorInfo(err).message });
  }
}

/** The TeamViewer work is done: a failed final write must not hide the report from the caller. */
async function writeFinalRow(run: CycleRun): Promise<ErrorInfo | undefined> {
  await run.settled();
  let stateError: ErrorInfo | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await run.deps.state.updateCycle(run.record);
      return undefined;
    } catch (err) {
      stateError = { code: 'STATE_WRITE_FAILED', message: `the cycle's result could not be saved to state (status will show it as interrupted): ${errorInfo(err).message}` };
    }
  }
  run.log.error(stateError!.message, { cycleId: run.cycleId });
  return stateError;
}
