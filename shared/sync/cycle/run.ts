/**
 * One running cycle: what every phase shares — the settings and adapters, the cycle's row, its
 * clock and deadline, and the progress it reports.
 *
 * Invariants:
 * - Progress writes (heartbeats) are chained, so the final write can never be overtaken by a late
 *   heartbeat (which would leave a finished cycle looking `running`).
 * - A failed progress write is logged, never fatal: the next beat or the final write repairs it.
 * - A dry run writes nothing to state: no row, no heartbeat.
 * - `stop()` ends the heartbeat and the deadline's timers; after it nothing writes progress.
 */
import type { Logger } from '../../log';
import type { ActionReport, CycleRecord } from '../../domain/model';
import type { GroupReport } from '../../domain/group-model';
import { cycleDeadline, type CycleDeadline } from '../deadline';
import { errorInfo } from '../error-info';
import { configHash, DEFAULT_SYNC_CONFIG, type SyncConfig } from '../mapping';
import type { CycleDeps, CycleOptions, CyclePhase } from './ports';

const HEARTBEAT_EVERY_MS = 15_000;

/** How the cycle's phases read in a CYCLE_BUDGET_EXCEEDED message. */
const READING: Record<string, string> = {
  'reading Entra ID': 'reading Entra ID (Microsoft Graph)',
  'reading TeamViewer': "reading TeamViewer's users and tvsync's links (Table Storage)",
  planning: 'planning (looking up deleted users in Microsoft Graph, reading the guard state)',
};

export class CycleRun {
  readonly log: Logger;
  readonly now: () => Date;
  readonly dryRun: boolean;
  readonly config: SyncConfig;
  readonly configHash: string;
  /** Reads end by the time budget; calls in flight are cut one timeout after it (shared/sync/deadline.ts). */
  readonly deadline: CycleDeadline;
  /** Every report of this cycle, in the order work finished. */
  readonly reports: ActionReport[] = [];
  /** Every user group's report of this cycle (GROUP_PROVISIONING=assigned). */
  readonly groupReports: GroupReport[] = [];
  private lastBeat = Date.now();
  private writes: Promise<void> = Promise.resolve();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    readonly deps: CycleDeps,
    readonly options: CycleOptions,
    readonly record: CycleRecord,
    readonly startedAt: Date,
    /** The last real cycle before this one, as read at the start (an interrupted one marked failed). */
    readonly previous: CycleRecord | undefined,
  ) {
    this.log = deps.logger;
    this.now = deps.now ?? (() => new Date());
    this.dryRun = record.dryRun;
    this.config = deps.config ?? DEFAULT_SYNC_CONFIG;
    this.configHash = configHash(this.config, deps.groups?.settings);
    // A dry run is a person waiting at a terminal, not the host's time limit: it has no deadline.
    this.deadline = cycleDeadline({
      budgetSeconds: this.dryRun ? undefined : deps.timeBudgetSeconds,
      graceSeconds: deps.callTimeoutSeconds ?? 30,
      startedAt: startedAt.getTime(),
      doing: () => READING[record.phase ?? ''] ?? record.phase ?? 'reading',
    });
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_EVERY_MS);
    this.heartbeat.unref();
  }

  get cycleId(): string {
    return this.record.id;
  }

  /** Says what the cycle is doing now (the record's phase, and the caller's progress bar). */
  progress(phase: CyclePhase): void {
    this.record.phase = phase;
    this.options.onProgress?.({ phase, done: this.record.done ?? 0, total: this.record.planned });
  }

  /** Writes progress to the cycle's row, at most every HEARTBEAT_EVERY_MS unless forced. */
  async beat(force = false): Promise<void> {
    if (this.dryRun) return;
    if (!force && Date.now() - this.lastBeat < HEARTBEAT_EVERY_MS) return;
    this.lastBeat = Date.now();
    this.record.heartbeatAt = this.now().toISOString();
    const snapshot: CycleRecord = structuredClone(this.record);
    this.writes = this.writes
      .then(() => this.deps.state.updateCycle(snapshot))
      .catch((err) => this.log.warn('could not write cycle progress', { cycleId: this.cycleId, error: errorInfo(err).message }));
    await this.writes;
  }

  /** Resolves once every progress write started so far has settled. */
  settled(): Promise<void> {
    return this.writes;
  }

  /** The cycle could not finish: it is recorded `failed` with the error's code and message. */
  fail(err: unknown): void {
    this.record.result = 'failed';
    this.record.error = errorInfo(err);
    this.log.error(`cycle ${this.cycleId} failed before planning finished: ${this.record.error.message}`, { cycleId: this.cycleId, code: this.record.error.code });
  }

  stop(): void {
    clearInterval(this.heartbeat);
    this.deadline.clear();
  }
}
