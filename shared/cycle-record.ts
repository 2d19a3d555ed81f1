/**
 * The one log record each finished cycle leaves for the watchdog outside the app: Azure Monitor's
 * alert rules (infra/app/alerts.bicep) count these records in Application Insights to notice a
 * deployment that no longer completes cycles — which the app's own emails cannot report when the
 * app itself is dead.
 *
 * The format is a contract with infra/app/alerts.bicep and README.md (*Alerts*): one line,
 *
 *   tvsync.cycle {"cycleId":"…","kind":"incremental","trigger":"timer","result":"succeeded",
 *                 "counts":{"created":0,…},"imported":281,"durationMs":1830,"errorCode":null}
 *
 * written at information level through the invocation, so Application Insights keeps it as a
 * trace (host.json lets the `Function` category through at Information and never samples traces),
 * and read in KQL with
 *
 *   traces | where message startswith "tvsync.cycle "
 *          | extend cycle = parse_json(substring(message, strlen("tvsync.cycle ")))
 *
 * Invariants: one record per real cycle, whatever started it (emitted by the composition root's
 * cycle runner, shared/app.ts); never silenced by LOG_LEVEL (shared/runtime.ts lets it through);
 * ids, counts and codes only — no user name, no error text — because information lines go to
 * Application Insights and must carry no personal data.
 */
import type { Logger } from './log';
import type { CycleOptions, CycleReport } from './sync/cycle';
import type { CycleCounts } from './domain/model';

export const CYCLE_RECORD_PREFIX = 'tvsync.cycle ';

export interface CycleRecordFields {
  cycleId: string;
  kind: CycleReport['kind'];
  trigger: CycleOptions['trigger'];
  result: CycleReport['result'];
  counts: CycleCounts;
  imported: number;
  durationMs: number;
  errorCode: string | null;
}

export function cycleRecord(report: CycleReport, trigger: CycleOptions['trigger']): CycleRecordFields {
  const duration = Date.parse(report.finishedAt) - Date.parse(report.startedAt);
  return {
    cycleId: report.cycleId,
    kind: report.kind,
    trigger,
    result: report.result,
    counts: { ...report.counts },
    imported: report.imported,
    durationMs: Number.isFinite(duration) ? duration : 0,
    errorCode: report.error?.code ?? null,
  };
}

/** The record as the single line the alert rules parse. */
export function cycleRecordLine(report: CycleReport, trigger: CycleOptions['trigger']): string {
  return `${CYCLE_RECORD_PREFIX}${JSON.stringify(cycleRecord(report, trigger))}`;
}

export function isCycleRecordLine(message: string): boolean {
  return message.startsWith(CYCLE_RECORD_PREFIX);
}

/** Emits the record of a finished cycle (see the top of this module for where it goes). */
export function logCycleRecord(logger: Logger, report: CycleReport, trigger: CycleOptions['trigger']): void {
  logger.info(cycleRecordLine(report, trigger));
}
