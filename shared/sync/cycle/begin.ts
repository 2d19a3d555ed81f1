/**
 * The start of a cycle: close cycles a dead process left `running`, decide what kind of cycle
 * this is, and write its row.
 *
 * Invariants:
 * - A real cycle runs only under the run lease, which this cycle now holds: any other record still
 *   `running` belongs to a process that died or lost the lease, and is marked failed
 *   (CYCLE_INTERRUPTED) so status never shows a ghost. (One that lost the lease may still write its
 *   own final record later; that record is the truth and replaces this one.)
 * - A changed scope, scoping filter, mapping or group setting, or no watermark (first run, or a restart cleared
 *   it), makes a new initial cycle: every user must be looked at again.
 * - A cycle cut by its time budget is continued by the next one, of the same kind, and names it.
 */
import { emptyCounts, type CycleKind, type CycleRecord } from '../../domain/model';
import { configHash, DEFAULT_SYNC_CONFIG } from '../mapping';
import { WATERMARK_KEY, type Watermark } from '../watermark';
import type { CycleDeps, CycleOptions } from './ports';
import { CycleRun } from './run';

export async function beginCycle(deps: CycleDeps, options: CycleOptions): Promise<CycleRun> {
  const now = deps.now ?? (() => new Date());
  const dryRun = options.dryRun ?? false;
  const log = deps.logger;
  const startedAt = now();
  const recent = await deps.state.listCycles(10);
  if (!dryRun) await closeInterruptedCycles(deps, recent);
  const hash = configHash(deps.config ?? DEFAULT_SYNC_CONFIG, deps.groups?.settings);
  const kind = await cycleKind(deps, recent, hash, dryRun);
  const cycleId = dryRun ? `dry-run-${deps.state.newCycleId(startedAt)}` : deps.state.newCycleId(startedAt);
  const continuing = continued(recent, dryRun);

  const record: CycleRecord = {
    id: cycleId,
    kind,
    dryRun,
    trigger: options.trigger,
    startedAt: startedAt.toISOString(),
    finishedAt: null,
    result: 'running',
    counts: emptyCounts(),
    imported: 0,
    planned: 0,
    done: 0,
    heartbeatAt: startedAt.toISOString(),
    configHash: hash,
    failures: [],
    ...(continuing ? { continues: continuing.continues ?? continuing.id } : {}),
  };
  if (!dryRun) await deps.state.createCycle(record);
  log.info(`cycle ${cycleId} started`, { cycleId, kind, dryRun, trigger: options.trigger });
  return new CycleRun(deps, options, record, startedAt, recent.find((c) => !c.dryRun && c.id !== cycleId));
}

/** The last real cycle, when it stopped at its time budget with work left: this one continues it. */
function continued(recent: readonly CycleRecord[], dryRun: boolean): CycleRecord | undefined {
  const last = recent.find((c) => !c.dryRun && c.result !== 'running');
  return !dryRun && last?.budgetReached ? last : undefined;
}

async function cycleKind(deps: CycleDeps, recent: readonly CycleRecord[], hash: string, dryRun: boolean): Promise<CycleKind> {
  const lastGood = recent.find((c) => !c.dryRun && (c.result === 'succeeded' || c.result === 'partial'));
  const watermarked = (await deps.state.getMeta<Watermark>(WATERMARK_KEY)) !== null;
  const continuing = continued(recent, dryRun);
  const kind: CycleKind = continuing ? continuing.kind : lastGood && watermarked && (lastGood.configHash === undefined || lastGood.configHash === hash) ? 'incremental' : 'initial';
  if (lastGood && kind === 'initial') deps.logger.info('scope, scoping filters, mappings or group settings changed since the last cycle: this is a new initial cycle', { previous: lastGood.configHash, now: hash });
  return kind;
}

/** Marks cycles left `running` by a process that died as failed (see the invariants above). */
async function closeInterruptedCycles(deps: CycleDeps, recent: CycleRecord[]): Promise<void> {
  for (const c of recent) {
    if (c.result !== 'running') continue;
    const beatAt = Date.parse(c.heartbeatAt ?? c.startedAt);
    c.result = 'failed';
    c.finishedAt = new Date(beatAt).toISOString();
    c.error = { code: 'CYCLE_INTERRUPTED', message: 'the process running this cycle stopped before it finished; the next cycle picked up the remaining work' };
    await deps.state.updateCycle(c);
    deps.logger.warn(`cycle ${c.id} was interrupted; marked failed`, { cycleId: c.id });
  }
}
