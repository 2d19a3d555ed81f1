/**
 * One provisioning cycle: read Entra, read state and TeamViewer, plan, apply, record.
 *
 * Invariants (crash safety — a process may die at any line):
 * - Entra is read completely before anything is planned; a failed or partial read throws and
 *   the cycle ends `failed` with nothing planned or written. A read error is never "no users".
 * - Before a create is sent, a pending link (intent) naming the Entra user and the userName is
 *   written. After a crash the next cycle finds either the TeamViewer user (matched by userName
 *   in the snapshot, then linked) or nothing (then created): never two users.
 * - Every completed TeamViewer write is followed by the link write that records it, before the
 *   action counts as done; progress and counts go to the cycle row as work completes.
 * - A dry run writes nothing, neither to TeamViewer nor to state.
 * - A TeamViewer 401/403 (token or permission) stops the cycle from starting further writes.
 *
 * Personal data: lines that name a user (UPN) are logged at debug only, which host.json keeps out
 * of Application Insights; info and warn lines carry counts and ids.
 */
import type { Logger } from '../log';
import { redactText } from '../log';
import { mapWithConcurrency } from '../http/pool';
import { raceAbort } from '../http/timeout';
import { configHash, mapUser, diff, DEFAULT_SYNC_CONFIG, attributesNeeded, type AttributeChange, type SyncConfig } from './mapping';
import { comparedAttributes, findDrift, markDrift, refreshed, type DriftAttribute, type DriftCheck, type LinkRefresh } from './drift';
import { cycleDeadline, isCycleDeadline } from './deadline';
import { deactivates, plan, type Action, type ActionKind, type Plan } from './planner';
import { DEFAULT_QUARANTINE, describeQuarantine, nextQuarantine, QUARANTINE_KEY, type Quarantine, type QuarantineSettings } from './quarantine';
import { logRecordFromAction, type ProvisioningLogRecord } from '../state/logs';
import { FULL_READ_EVERY_MS, sameIds, WATERMARK_KEY, type Watermark } from './watermark';
import { consumeAllowance, DEFAULT_GUARD, GUARD_KEY, judge, type GuardSettings, type GuardState, type HeldUser } from './guard';
import { commitGuard, readGuard, readIds, type GuardStore } from './guard-state';
import {
  emptyCounts,
  type AssignedUser,
  type CycleCounts,
  type CycleKind,
  type CycleRecord,
  type DriftRepair,
  type Escrow,
  type Link,
  type LinkDigest,
  type TeamViewerPatch,
  type TeamViewerUser,
  type TeamViewerUserDraft,
  type UserFailure,
} from './model';

/** Every read and call the cycle makes can be stopped: by the cycle's deadline. */
interface Stoppable {
  signal?: AbortSignal;
}

/** What the cycle needs from Entra (EntraReader implements it). */
export interface EntraSource {
  readAssignedUsers(options: { scope: SyncConfig['scope']; expandNestedGroups: boolean; attributes: string[] } & Stoppable): Promise<{ users: AssignedUser[] }>;
  /** Which of these object ids are soft-deleted (in the directory's deleted items). */
  readDeletedUserIds(ids: string[], options?: Stoppable): Promise<Set<string>>;
  readAssignmentFingerprint(options?: Stoppable): Promise<{ fingerprint: string; groupIds: string[]; requests: number }>;
  readUserChanges(deltaLink: string | null, attributes?: readonly string[], options?: Stoppable): Promise<{ changed: unknown[]; removed: unknown[]; deltaLink: string; requests: number }>;
  readGroupMemberChanges(groupIds: readonly string[], deltaLink: string | null, options?: Stoppable): Promise<{ added: unknown[]; removed: unknown[]; removedGroups: string[]; groupsWithNestedChanges: string[]; deltaLink: string; requests: number }>;
}

/** What the cycle needs from TeamViewer (TeamViewerClient implements it). */
export interface TeamViewerTarget {
  listUsers(options?: Stoppable): Promise<TeamViewerUser[]>;
  findByUserName(userName: string, options?: Stoppable): Promise<TeamViewerUser[]>;
  createUser(draft: TeamViewerUserDraft, options?: Stoppable): Promise<TeamViewerUser>;
  patchUser(id: string, patch: TeamViewerPatch, options?: Stoppable): Promise<TeamViewerUser>;
  getUser(id: string, options?: Stoppable): Promise<TeamViewerUser | null>;
  getTokenOwner(options?: Stoppable): Promise<{ id: string; userName: string } | null>;
  testConnection(options?: Stoppable): Promise<void>;
}

/** What the cycle needs from state (StateStore implements it). */
export interface CycleState extends GuardStore {
  listLinks(): Promise<Link[]>;
  /** Every link with only what the drift check compares (a quiet cycle reads these). */
  listLinkDigests(): Promise<LinkDigest[]>;
  putLink(link: Link): Promise<void>;
  deleteLink(entraId: string): Promise<void>;
  createCycle(c: CycleRecord): Promise<void>;
  updateCycle(c: CycleRecord): Promise<void>;
  listCycles(limit?: number): Promise<CycleRecord[]>;
  newCycleId(startedAt: Date): string;
  getMeta<T>(key: string): Promise<{ value: T; etag: string } | null>;
  putMeta<T>(key: string, value: T, etag?: string | null): Promise<string>;
  deleteMeta(key: string, etag?: string): Promise<void>;
  listEscrows(): Promise<Escrow[]>;
  putEscrow(escrow: Escrow): Promise<void>;
  deleteEscrow(entraId: string): Promise<void>;
}

export interface CycleDeps {
  entra: EntraSource;
  teamViewer: TeamViewerTarget;
  state: CycleState;
  logger: Logger;
  /** Most actions applied at once (the TeamViewer client bounds its own requests too). */
  concurrency: number;
  /** Scope, scoping filters and mappings (defaults: Entra's gallery app for TeamViewer). */
  config?: SyncConfig;
  /** Aborted when the run lease is lost: no further TeamViewer write is started. */
  signal?: AbortSignal;
  /** DEACTIVATION_THRESHOLD and SUSPICIOUS_DROP_PERCENT. */
  guard?: GuardSettings;
  /** SYNC_INTERVAL_MINUTES: the unit of an escrow's back-off. */
  intervalMinutes?: number;
  /**
   * CYCLE_TIME_BUDGET_SECONDS, from the cycle's start: reads must end by then (else the cycle
   * fails), no work starts after it (the next heartbeat continues), and calls still in flight are
   * cut off `callTimeoutSeconds` later.
   */
  timeBudgetSeconds?: number;
  /** TEAMVIEWER_TIMEOUT_SECONDS: how long a call in flight may outlive the time budget (default 30). */
  callTimeoutSeconds?: number;
  /** DRIFT_CHECK (default every-cycle): when hand edits in TeamViewer are looked for and put back. */
  driftCheck?: DriftCheck;
  /** QUARANTINE_FAILURE_PERCENT and QUARANTINE_MIN_FAILURES. */
  quarantine?: QuarantineSettings;
  /** Where each user change is logged (Entra's provisioning logs). */
  logs?: { append(records: ProvisioningLogRecord[]): Promise<void>; enforceRetention(now?: Date): Promise<unknown> };
  now?: () => Date;
}

export interface CycleOptions {
  dryRun?: boolean;
  trigger: CycleRecord['trigger'];
  onProgress?: (progress: { phase: CyclePhase; done: number; total: number }) => void;
}

export type CyclePhase = 'reading Entra ID' | 'reading TeamViewer' | 'planning' | 'applying' | 'finished';

export type ActionStatus = 'success' | 'failure' | 'skipped' | 'warning' | 'planned' | 'staged';

export interface ActionReport {
  kind: ActionKind;
  status: ActionStatus;
  entraId: string;
  userPrincipalName: string;
  teamViewerId: string | null;
  changes: AttributeChange[];
  reason?: string;
  error?: { code: string; message: string };
  /** The action puts back a change made in TeamViewer by hand (the reason says which). */
  drift?: true;
}

export interface CycleReport {
  cycleId: string;
  kind: CycleKind;
  dryRun: boolean;
  result: CycleRecord['result'];
  startedAt: string;
  finishedAt: string;
  imported: number;
  counts: CycleCounts;
  actions: ActionReport[];
  error?: { code: string; message: string };
}

/** A running cycle that wrote no progress for this long was interrupted (the process died). */
export const HEARTBEAT_STALE_MS = 2 * 60_000;
const HEARTBEAT_EVERY_MS = 15_000;
const MAX_FAILURES_KEPT = 50;
const MAX_DRIFT_KEPT = 20;
/**
 * Links a full cycle records anew at most (drift the planner leaves alone, values an older version
 * never recorded): state writes that change nothing in TeamViewer, so they never crowd out real work.
 */
const MAX_REFRESHES = 1_000;
/** How the cycle's phases read in a CYCLE_BUDGET_EXCEEDED message. */
const READING: Record<string, string> = {
  'reading Entra ID': 'reading Entra ID (Microsoft Graph)',
  'reading TeamViewer': "reading TeamViewer's users and tvsync's links (Table Storage)",
  planning: 'planning (looking up deleted users in Microsoft Graph, reading the guard state)',
};
/**
 * Errors after which no further TeamViewer write is attempted in this cycle: a rejected token,
 * or a token that may not create users. A 403 on one PATCH (e.g. a TeamViewer administrator the
 * token may not modify) fails that user only.
 */
function isFatal(action: Action, code: string): boolean {
  return code === 'TEAMVIEWER_UNAUTHORIZED' || (code === 'TEAMVIEWER_FORBIDDEN' && action.kind === 'create');
}



export class CycleAbortedError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'CycleAbortedError';
  }
}

function errorInfo(err: unknown): { code: string; message: string } {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
  const message = redactText(err instanceof Error ? err.message : String(err));
  return { code, message };
}

export async function runCycle(deps: CycleDeps, options: CycleOptions): Promise<CycleReport> {
  const now = deps.now ?? (() => new Date());
  const dryRun = options.dryRun ?? false;
  const log = deps.logger;
  const startedAt = now();
  const recent = await deps.state.listCycles(10);
  if (!dryRun) await closeInterruptedCycles(deps, recent, startedAt);
  const config = deps.config ?? DEFAULT_SYNC_CONFIG;
  const hash = configHash(config);
  const lastGood = recent.find((c) => !c.dryRun && (c.result === 'succeeded' || c.result === 'partial'));
  // A changed scope or mapping means every user must be looked at again: a new initial cycle.
  // No watermark (first run, or a restart cleared it) means a new initial cycle too.
  const watermarked = (await deps.state.getMeta<Watermark>(WATERMARK_KEY)) !== null;
  // A cycle cut by its time budget is continued by the next one, of the same kind.
  const continued = recent.find((c) => !c.dryRun && c.result !== 'running');
  const continuing = !dryRun && continued?.budgetReached ? continued : undefined;
  let kind: CycleKind = continuing ? continuing.kind : lastGood && watermarked && (lastGood.configHash === undefined || lastGood.configHash === hash) ? 'incremental' : 'initial';
  if (lastGood && kind === 'initial') log.info('scope, scoping filters or mappings changed since the last cycle: this is a new initial cycle', { previous: lastGood.configHash, now: hash });
  const cycleId = dryRun ? `dry-run-${deps.state.newCycleId(startedAt)}` : deps.state.newCycleId(startedAt);

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
  const progress = (phase: CyclePhase) => {
    record.phase = phase;
    options.onProgress?.({ phase, done: record.done ?? 0, total: record.planned });
  };
  if (!dryRun) await deps.state.createCycle(record);
  log.info(`cycle ${cycleId} started`, { cycleId, kind, dryRun, trigger: options.trigger });

  const reports: ActionReport[] = [];
  let lastBeat = Date.now();
  // Progress writes are chained, so the final write can never be overtaken by a late heartbeat
  // (which would leave a finished cycle looking `running`).
  let writes: Promise<void> = Promise.resolve();
  const beat = async (force = false) => {
    if (dryRun) return;
    if (!force && Date.now() - lastBeat < HEARTBEAT_EVERY_MS) return;
    lastBeat = Date.now();
    record.heartbeatAt = now().toISOString();
    const snapshot: CycleRecord = structuredClone(record);
    // A failed progress write is logged, never fatal: the next beat or the final write repairs it.
    writes = writes
      .then(() => deps.state.updateCycle(snapshot))
      .catch((err) => log.warn('could not write cycle progress', { cycleId, error: errorInfo(err).message }));
    await writes;
  };
  const heartbeat = setInterval(() => void beat(), HEARTBEAT_EVERY_MS);
  heartbeat.unref();
  // A dry run is a person waiting at a terminal, not the host's time limit: it has no deadline.
  const deadline = cycleDeadline({
    budgetSeconds: dryRun ? undefined : deps.timeBudgetSeconds,
    graceSeconds: deps.callTimeoutSeconds ?? 30,
    startedAt: startedAt.getTime(),
    doing: () => READING[record.phase ?? ''] ?? record.phase ?? 'reading',
  });
  const reading = deadline.reading;
  const driftCheck = deps.driftCheck ?? 'every-cycle';
  const compared = comparedAttributes(config);

  try {
    progress('reading Entra ID');
    const guardBefore = await deps.state.getMeta<GuardState>(GUARD_KEY);
    const escrows = new Map((await deps.state.listEscrows()).map((e) => [e.entraId, e]));
    const lastCycle = recent.find((c) => !c.dryRun && c.id !== cycleId);
    const delta = dryRun ? null : await readDeltas(deps, {
      attributes: attributesNeeded(config),
      canSkip: kind === 'incremental' && lastCycle?.result === 'succeeded' && !lastCycle.budgetReached && !guardBefore?.value.staged && !guardBefore?.value.allowance && !config.expandNestedGroups && escrows.size === 0,
      configHash: hash,
      now: startedAt,
      signal: reading,
    }, cycleId);
    if (delta?.expired && kind === 'incremental') {
      kind = 'initial';
      record.kind = 'initial';
      log.warn(`cycle ${cycleId}: the Graph delta token expired; this is a new initial cycle`, { cycleId });
    }
    // Users TeamViewer listed in a quiet cycle that found drift: the full read below plans from it.
    let listed: TeamViewerUser[] | null = null;
    if (delta?.unchanged) {
      // Nothing changed in Entra: no full read, no plan — unless TeamViewer was changed by hand.
      progress('reading TeamViewer');
      const check = await checkDrift(deps, driftCheck, compared, reading);
      if (!check.found) {
        // Nothing changed since the last cycle, which succeeded: everything it left in place is still
        // in place. Carried over from its counts (no need to read every link for a number).
        const prev = lastCycle?.counts;
        record.imported = lastCycle?.imported ?? 0;
        record.counts.unchanged = prev ? prev.unchanged + prev.created + prev.updated + prev.enabled + prev.disabled + prev.linked : 0;
        record.result = 'succeeded';
        await deps.state.putMeta<Watermark>(WATERMARK_KEY, delta.watermark, delta.etag);
        log.info(`cycle ${cycleId}: nothing changed in Entra ID since the last cycle (${delta.requests} Graph requests)${check.listed ? ' nor in TeamViewer' : ''}; nothing to write`, { cycleId, graphRequests: delta.requests });
        throw new NothingChanged();
      }
      log.info(`cycle ${cycleId}: ${check.drifted} managed user(s) changed in TeamViewer by hand and ${check.vanished} no longer listed; reading Entra ID to put them back`, { cycleId, drifted: check.drifted, vanished: check.vanished });
      listed = check.listed;
      delta.watermark.lastFullReadAt = startedAt.toISOString();
      progress('reading Entra ID');
    }
    const { users } = await deps.entra.readAssignedUsers({ scope: config.scope, expandNestedGroups: config.expandNestedGroups, attributes: attributesNeeded(config), signal: reading });
    record.imported = users.length;
    progress('reading TeamViewer');
    const [links, teamViewer, owner] = await Promise.all([
      raceAbort(deps.state.listLinks(), reading),
      listed ?? deps.teamViewer.listUsers({ signal: reading }),
      deps.teamViewer.getTokenOwner({ signal: reading }).catch((err) => {
        if (reading.aborted) throw err;
        log.warn('could not find the account that owns the TeamViewer token', { cycleId, error: errorInfo(err).message });
        return null;
      }),
    ]);
    // Without knowing the token's owner, a deactivation could lock tvsync out (and the admin
    // with it): hold every deactivation back until the owner can be identified.
    const ownerUnknown = owner === null;
    if (ownerUnknown) log.warn('deactivations are held back this cycle: the account that owns the TeamViewer token could not be identified (the token needs "Account management: view account data")', { cycleId });
    progress('planning');
    const desired = users.map((u) => mapUser(u, config));
    // Linked users Entra no longer returned: soft-deleted ones are told apart from unassigned ones
    // (and are deactivated even with SKIP_OUT_OF_SCOPE_DELETIONS).
    const read = new Set(users.map((u) => u.id.toLowerCase()));
    const unseen = links.filter((l) => !read.has(l.entraId.toLowerCase())).map((l) => l.entraId);
    const deleted = unseen.length > 0 ? await deps.entra.readDeletedUserIds(unseen, { signal: reading }) : new Set<string>();
    const goneReasons = new Map([...deleted].map((id) => [id, 'deleted in Entra ID (soft-deleted: restorable for 30 days)']));
    const result = plan({ users: desired, links, teamViewer, protectedTeamViewerIds: new Set(owner ? [owner.id] : []), skipOutOfScopeDeletions: config.skipOutOfScopeDeletions, goneReasons });
    // Repairs of hand edits are marked (or, with DRIFT_CHECK=off, taken out) before the guard
    // judges the plan: a repair that deactivates counts like any other deactivation.
    const drift = markDrift(result.actions, { links, teamViewer, mode: driftCheck, compared });
    result.actions = drift.actions;
    if (drift.leftAlone > 0) log.info(`cycle ${cycleId}: ${drift.leftAlone} change(s) made in TeamViewer by hand left as they are (DRIFT_CHECK=off)`, { cycleId, leftAlone: drift.leftAlone });
    const guard = await guardDeactivations(deps, result, {
      ownerUnknown,
      managed: links.filter((l) => l.teamViewerId).length,
      inScope: desired.filter((u) => u.entitled).length,
      imported: users.length,
      cycleId,
      startedAt,
      dryRun,
    });
    if (!dryRun && deps.timeBudgetSeconds && deadline.elapsedSeconds() > deps.timeBudgetSeconds / 2) {
      log.warn(`cycle ${cycleId}: reading and planning took ${Math.round(deadline.elapsedSeconds())} s, more than half of CYCLE_TIME_BUDGET_SECONDS (${deps.timeBudgetSeconds} s); little time is left to apply changes: raise the budget`, { cycleId, readSeconds: Math.round(deadline.elapsedSeconds()) });
    }
    record.counts.unchanged = result.unchanged;
    record.planned = result.actions.length;
    log.info(`cycle ${cycleId} planned ${result.actions.length} actions for ${users.length} users (${result.unchanged} unchanged)`, { cycleId, imported: users.length, planned: result.actions.length, unchanged: result.unchanged });
    await beat(true);

    progress('applying');
    const linkByEntra = new Map(links.map((l) => [l.entraId, l]));
    let abort: { code: string; message: string } | null = null;
    let budgetReached = false;
    // Actions that got past the time budget: none at all means reading used the whole budget, and
    // a continuation would only read and stop again, for ever.
    let started = 0;
    // Provisioning logs: one record per user change, written in batches as work completes.
    let logBuffer: ProvisioningLogRecord[] = [];
    const flushLogs = async () => {
      if (!deps.logs || logBuffer.length === 0) return;
      const batch = logBuffer;
      logBuffer = [];
      await deps.logs.append(batch).catch((err) => log.warn('could not write provisioning logs', { cycleId, error: errorInfo(err).message }));
    };
    await mapWithConcurrency(result.actions, Math.max(1, deps.concurrency), async (action) => {
      const actionStarted = Date.now();
      if (!abort && !budgetReached && deadline.passed()) {
        budgetReached = true;
        record.budgetReached = true;
        log.warn(`cycle ${cycleId} reached its time budget (${deps.timeBudgetSeconds} s); the next heartbeat continues it`, { cycleId });
      }
      if (!abort && !budgetReached) started++;
      if (!abort && deps.signal?.aborted) {
        abort = errorInfo(deps.signal.reason);
        log.error(`cycle ${cycleId} stops writing: ${abort.message}`, { cycleId, code: abort.code });
      }
      let report: ActionReport = abort
        ? { ...reportOf(action, 'skipped'), reason: `not attempted: the cycle stopped after ${abort.code}` }
        : budgetReached
          ? { ...reportOf(action, 'skipped'), reason: 'not yet: the cycle reached its time budget; the next heartbeat continues' }
        : guard.held.has(action)
          ? { ...reportOf(action, 'staged'), kind: 'disable' as const, reason: `staged, not applied: ${guard.holdMessage}` }
          : waiting(escrows.get(action.entraId), action, startedAt)
            ? { ...reportOf(action, 'skipped'), reason: escrowReason(escrows.get(action.entraId)!) }
          : dryRun
          ? dryRunReport(action)
          : await applyAction(action, linkByEntra.get(action.entraId), deps, now, deadline.inFlight);
      const cut = isCutOff(report);
      if (cut) report = cutOffReport(report);
      if (cut && !budgetReached) {
        // Work cut off at the deadline is work left: the next heartbeat continues (never a quiet cycle).
        budgetReached = true;
        record.budgetReached = true;
        log.warn(`cycle ${cycleId} reached its deadline with calls in flight; the next heartbeat continues it`, { cycleId });
      }
      if (report.status === 'failure' && report.error && isFatal(action, report.error.code) && !abort) {
        abort = report.error;
        log.error(`cycle ${cycleId} stops writing: ${report.error.message}`, { cycleId, code: report.error.code });
      }
      if (!dryRun && !abort) await recordEscrow(deps, escrows.get(action.entraId), report, action, now(), deps.intervalMinutes ?? 40);
      if (!dryRun && deps.logs) {
        const entry = logRecordFromAction(report, { cycleId, time: now(), durationMs: Date.now() - actionStarted });
        if (entry) logBuffer.push(entry);
        if (logBuffer.length >= 100) await flushLogs();
      }
      count(record, report);
      if (report.drift) keepDrift(record, report, startedAt);
      reports.push(report);
      record.done = (record.done ?? 0) + 1;
      progress('applying');
      await beat();
    });

    await flushLogs();
    if (budgetReached && started === 0) {
      // Reading and planning took the whole budget: nothing was applied, and a continuation would
      // do the same. Fail, saying what to change, and let the next cycle come at the interval.
      budgetReached = false;
      delete record.budgetReached;
      abort = {
        code: 'CYCLE_BUDGET_EXCEEDED',
        message: `the cycle's time budget (CYCLE_TIME_BUDGET_SECONDS = ${deps.timeBudgetSeconds} s) ran out before anything could be applied: reading and planning took ${Math.round(deadline.elapsedSeconds())} s. Raise CYCLE_TIME_BUDGET_SECONDS well above the time a full read takes`,
      };
      log.error(`cycle ${cycleId}: ${abort.message}`, { cycleId, code: abort.code });
    }
    if (!dryRun && !abort && !budgetReached) await refreshLinks(deps, drift.refresh, compared, now, cycleId);
    if (!dryRun && deps.logs) await deps.logs.enforceRetention(now()).catch((err) => log.warn('could not apply the provisioning log retention', { cycleId, error: errorInfo(err).message }));
    // An escrow lives only while its user still has a change to make: one whose user needs nothing
    // any more (fixed by hand, left scope) is dropped, so it cannot hold up quiet cycles forever.
    if (!dryRun && !abort) {
      const pending = new Set(result.actions.filter((a) => a.kind !== 'skip').map((a) => a.entraId));
      for (const id of escrows.keys()) if (!pending.has(id)) await deps.state.deleteEscrow(id).catch(() => undefined);
    }
    const failed = record.counts.failed;
    record.result = abort ? 'failed' : failed > 0 ? 'partial' : 'succeeded';
    if (abort) record.error = abort;
    if (delta && !abort) await deps.state.putMeta<Watermark>(WATERMARK_KEY, delta.watermark, delta.etag).catch((err) => log.warn('could not save the delta watermark; the next cycle reads everything', { cycleId, error: errorInfo(err).message }));
    await guard.finish(reports, !abort && !budgetReached);
    // Deactivations held for want of the token owner are work not done: say so (and no quiet shortcut next time).
    if (guard.heldForOwner > 0 && record.result === 'succeeded') record.result = 'partial';
  } catch (err) {
    if (err instanceof NothingChanged) {
      // The shortcut above finished the cycle.
    } else {
    record.result = 'failed';
    record.error = errorInfo(err);
    log.error(`cycle ${cycleId} failed before planning finished: ${record.error.message}`, { cycleId, code: record.error.code });
    }
  } finally {
    clearInterval(heartbeat);
    deadline.clear();
  }

  record.finishedAt = now().toISOString();
  record.heartbeatAt = record.finishedAt;
  if (!dryRun) {
    // Quarantine moves with every real cycle: entered or prolonged on a cause an admin must fix,
    // ended by any cycle that got through.
    try {
      const row = await deps.state.getMeta<Quarantine>(QUARANTINE_KEY);
      const c = record.counts;
      const next = nextQuarantine(row?.value ?? null, { result: record.result, error: record.error, attempted: c.created + c.updated + c.enabled + c.disabled + c.linked + c.failed, failed: c.failed }, deps.quarantine ?? DEFAULT_QUARANTINE, now());
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
  let stateError: { code: string; message: string } | undefined;
  if (!dryRun) {
    await writes;
    // The TeamViewer work is done: a failed final write must not hide the report from the caller.
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        await deps.state.updateCycle(record);
        stateError = undefined;
        break;
      } catch (err) {
        stateError = { code: 'STATE_WRITE_FAILED', message: `the cycle's result could not be saved to state (status will show it as interrupted): ${errorInfo(err).message}` };
      }
    }
    if (stateError) log.error(stateError.message, { cycleId });
  }
  progress('finished');
  log.info(`cycle ${cycleId} ${record.result}`, { cycleId, result: record.result, ...record.counts });
  const warnings = reports.filter((r) => r.status === 'warning').length;
  if (record.counts.failed > 0 || warnings > 0) {
    // Counts only: who and why live in state (status, tvsync status), not in Application Insights.
    log.warn(`cycle ${cycleId}: ${record.counts.failed} user(s) failed and ${warnings} need attention; run "tvsync status" or open the status page for who and why`, { cycleId, failed: record.counts.failed, warnings });
  }
  return {
    cycleId,
    kind: record.kind,
    dryRun,
    result: record.result,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    imported: record.imported,
    counts: record.counts,
    actions: reports,
    ...(record.error ?? stateError ? { error: record.error ?? stateError } : {}),
  };
}

/** The guard's verdict for one cycle, and how to record what became of it. */
interface GuardRun {
  /** Deactivations held back (staged) this cycle. */
  held: ReadonlySet<Action>;
  /** Why they are held, for their reports. */
  holdMessage: string;
  /** Deactivations turned into warnings because the token owner is unknown. */
  heldForOwner: number;
  /** After applying: uses the allowance up when `ok` and every deactivation it released succeeded. */
  finish(reports: readonly ActionReport[], ok: boolean): Promise<void>;
}

/**
 * The accidental-deletion guard (shared/sync/guard.ts): releases what an admin allowed, judges
 * every other deactivation, holds them back when there are too many or the read looks short, and
 * saves the guard's state before anything is applied. Without the token owner nothing is
 * deactivated and the guard's state is left exactly as it was: this cycle decided nothing about it.
 */
async function guardDeactivations(
  deps: CycleDeps,
  result: Plan,
  ctx: { ownerUnknown: boolean; managed: number; inScope: number; imported: number; cycleId: string; startedAt: Date; dryRun: boolean },
): Promise<GuardRun> {
  const log = deps.logger;
  const { cycleId } = ctx;
  const deactivating = result.actions.filter(deactivates);
  if (ctx.ownerUnknown) {
    result.actions = result.actions.map((a): Action => deactivates(a)
      ? { entraId: a.entraId, userPrincipalName: a.userPrincipalName, kind: 'skip', warning: true, teamViewerId: ('teamViewerId' in a && a.teamViewerId) || undefined, reason: 'deactivation held back: the account that owns the TeamViewer token could not be identified; grant the token "Account management: view account data"' }
      : a);
    return { held: new Set(), holdMessage: '', heldForOwner: deactivating.length, finish: async () => undefined };
  }
  const loaded = await loadGuard(deps.state);
  const judgement = judge({
    state: loaded.value,
    deactivations: deactivating.map(heldUser),
    allowedIds: loaded.allowedIds,
    stagedIds: loaded.stagedIds,
    managed: ctx.managed,
    inScope: ctx.inScope,
    imported: ctx.imported,
    settings: deps.guard ?? DEFAULT_GUARD,
    cycleId,
    at: ctx.startedAt.toISOString(),
    newSetId: deps.state.newIdSetId(ctx.startedAt),
  });
  const { decision, next } = judgement;
  const allowance = loaded.value.allowance;
  if (judgement.droppedLegacyAllowance) log.warn(`cycle ${cycleId}: the allowance granted by ${allowance?.by} at ${allowance?.grantedAt} comes from an older version that did not record which users it released; it is dropped and the deactivations are judged again (allow them again if they are held)`, { cycleId });
  if (judgement.released.size > 0) log.warn(`cycle ${cycleId}: applying ${judgement.released.size} deactivation(s) allowed by ${allowance?.by} at ${allowance?.grantedAt}`, { cycleId, released: judgement.released.size });
  if (judgement.held.size > 0 && decision.hold) log.warn(`cycle ${cycleId}: ${decision.message}; run "tvsync allow-deactivations" to apply them`, { cycleId, staged: judgement.held.size, newlyHeld: next.staged?.newlyHeld });

  let etag = loaded.etag;
  let current = loaded.value;
  let stale = false;
  /** Saves the guard's state; an admin who changed it meanwhile wins, and the next cycle re-reads it. */
  const save = async (value: GuardState, newSet: { setId: string; ids: string[] } | null): Promise<void> => {
    if (ctx.dryRun || stale) return;
    if (!newSet && JSON.stringify(value) === JSON.stringify(current)) {
      current = value;
      return;
    }
    try {
      etag = await commitGuard(deps.state, { previous: current, next: value, etag, newSet }, log);
      current = value;
    } catch (err) {
      if ((err as { code?: string }).code !== 'STATE_CONFLICT') throw err;
      stale = true;
      log.warn('the deactivation guard changed during the cycle; the next cycle re-reads it', { cycleId });
    }
  };
  await save(next, judgement.newSet);
  const held = new Set(deactivating.filter((a) => judgement.held.has(a.entraId.toLowerCase())));
  return {
    held,
    holdMessage: decision.hold ? decision.message : '',
    heldForOwner: 0,
    async finish(reports, ok) {
      if (!ok || stale || !next.allowance) return;
      const succeeded = new Set(reports.filter((r) => r.status === 'success').map((r) => r.entraId.toLowerCase()));
      if (![...judgement.released].every((id) => succeeded.has(id))) return;
      await save(consumeAllowance(next, { count: judgement.released.size, cycleId, at: ctx.startedAt.toISOString() }), null);
    },
  };
}

function heldUser(a: Action): HeldUser {
  return { entraId: a.entraId, userPrincipalName: a.userPrincipalName, teamViewerId: 'teamViewerId' in a ? (a.teamViewerId ?? null) : null, reason: 'reason' in a ? a.reason : 'deactivate' };
}

/**
 * The guard's row with the ids it names. A set can vanish between reading the row and the set
 * only when an admin's allow-deactivations replaced it meanwhile: then the row is read again.
 */
async function loadGuard(state: GuardStore): Promise<{ value: GuardState; etag: string | null; allowedIds: Set<string>; stagedIds: Set<string> | null }> {
  for (let attempt = 1; ; attempt++) {
    const { value, etag } = await readGuard(state);
    try {
      const allowedIds = value.allowance?.setId ? await readIds(state, value.allowance.setId, value.allowance.count) : new Set<string>();
      const stagedIds = value.staged?.setId ? await readIds(state, value.staged.setId, value.staged.count) : null;
      return { value, etag, allowedIds, stagedIds };
    } catch (err) {
      if ((err as { code?: string }).code !== 'STATE_NOT_FOUND' || attempt >= 3) throw err;
    }
  }
}

/** Actions an escrow holds back until its next attempt; deactivations and unlinks are never held. */
function waiting(escrow: Escrow | undefined, action: Action, now: Date): boolean {
  if (!escrow || action.kind === 'disable' || action.kind === 'unlink' || action.kind === 'skip') return false;
  return Date.parse(escrow.nextAttemptAt) > now.getTime();
}

function escrowReason(e: Escrow): string {
  return `escrowed: failed ${e.attempts} time(s) since ${e.firstFailedAt} (last: ${e.code} — ${e.message}); next attempt ${e.nextAttemptAt}`;
}

/** Transient trouble is retried at the next cycle; anything else backs off, up to a day. */
const RETRY_NEXT_CYCLE = new Set(['TEAMVIEWER_TRANSIENT', 'TEAMVIEWER_TIMEOUT', 'TEAMVIEWER_THROTTLED', 'STATE_UNAVAILABLE']);

async function recordEscrow(deps: CycleDeps, existing: Escrow | undefined, report: ActionReport, action: Action, at: Date, intervalMinutes: number): Promise<void> {
  try {
    if (report.status === 'failure' && report.error) {
      const attempts = (existing?.attempts ?? 0) + 1;
      const backoffMinutes = RETRY_NEXT_CYCLE.has(report.error.code) || attempts === 1 ? 0 : Math.min(24 * 60, intervalMinutes * 2 ** (attempts - 2));
      await deps.state.putEscrow({
        entraId: action.entraId,
        userPrincipalName: action.userPrincipalName,
        action: report.kind,
        code: report.error.code,
        message: report.error.message.slice(0, 500),
        attempts,
        firstFailedAt: existing?.firstFailedAt ?? at.toISOString(),
        lastFailedAt: at.toISOString(),
        nextAttemptAt: new Date(at.getTime() + backoffMinutes * 60_000).toISOString(),
      });
    } else if (existing && report.status === 'success') {
      await deps.state.deleteEscrow(action.entraId);
    }
  } catch (err) {
    deps.logger.warn('could not record an escrow; the user is retried next cycle', { entraId: action.entraId, error: errorInfo(err).message });
  }
}

/** Ends a cycle early when the deltas say nothing changed (not an error). */
class NothingChanged extends Error {}

interface DeltaOutcome {
  /** True when every delta was empty and the full read may be skipped. */
  unchanged: boolean;
  /** True when a delta token had expired (the cycle is then a new initial one). */
  expired: boolean;
  watermark: Watermark;
  etag: string | null;
  requests: number;
}

/**
 * Resumes (or starts) the delta rounds before the full read — see shared/sync/watermark.ts for
 * why the order matters and when the full read may be skipped.
 */
async function readDeltas(deps: CycleDeps, options: { attributes: string[]; canSkip: boolean; configHash: string; now: Date; signal: AbortSignal }, cycleId: string): Promise<DeltaOutcome> {
  const { signal } = options;
  const row = await raceAbort(deps.state.getMeta<Watermark>(WATERMARK_KEY), signal);
  const previous = row?.value.configHash === options.configHash ? row.value : null;
  const fingerprint = await deps.entra.readAssignmentFingerprint({ signal });
  let requests = fingerprint.requests;
  const groupsSame = previous ? sameIds(previous.groupIds, fingerprint.groupIds) : false;
  let expired = false;
  let users: Awaited<ReturnType<EntraSource['readUserChanges']>> | null = null;
  let groups: Awaited<ReturnType<EntraSource['readGroupMemberChanges']>> | null = null;
  if (previous) {
    try {
      // The same $select as the full read: a change to an attribute a filter or mapping reads must show.
      users = await deps.entra.readUserChanges(previous.usersDeltaLink, options.attributes, { signal });
      if (groupsSame) groups = await deps.entra.readGroupMemberChanges(fingerprint.groupIds, previous.groupsDeltaLink || null, { signal });
    } catch (err) {
      if ((err as { code?: string }).code !== 'GRAPH_DELTA_EXPIRED') throw err;
      expired = true;
      users = null;
      groups = null;
    }
  }
  // Start fresh rounds where there is nothing to resume (first cycle, new configuration, expired
  // token, a different set of assigned groups): costly once, then a request or two per cycle.
  const startedUsers = users ?? (await deps.entra.readUserChanges(null, options.attributes, { signal }));
  const startedGroups = groups ?? (await deps.entra.readGroupMemberChanges(fingerprint.groupIds, null, { signal }));
  requests += (users ? users.requests : 0) + (groups ? groups.requests : 0) + (users ? 0 : startedUsers.requests) + (groups ? 0 : startedGroups.requests);
  const fresh = !previous || expired || !groupsSame;
  const nothing = !fresh && users !== null && groups !== null
    && previous!.assignments === fingerprint.fingerprint
    && users.changed.length === 0 && users.removed.length === 0
    && groups.added.length === 0 && groups.removed.length === 0 && groups.removedGroups.length === 0 && groups.groupsWithNestedChanges.length === 0;
  const fullReadDue = !previous || options.now.getTime() - Date.parse(previous.lastFullReadAt) >= FULL_READ_EVERY_MS;
  const unchanged = options.canSkip && nothing && !fullReadDue;
  deps.logger.debug(`cycle ${cycleId}: deltas read`, { cycleId, requests, unchanged, fresh, expired });
  return {
    unchanged,
    expired,
    requests,
    etag: row?.etag ?? null,
    watermark: {
      configHash: options.configHash,
      usersDeltaLink: startedUsers.deltaLink,
      groupsDeltaLink: startedGroups.deltaLink,
      groupIds: fingerprint.groupIds,
      assignments: fingerprint.fingerprint,
      lastFullReadAt: unchanged ? previous!.lastFullReadAt : options.now.toISOString(),
    },
  };
}

/** What a quiet cycle's drift check found. */
interface QuietCheck {
  /** True when a managed user was changed in TeamViewer by hand or is no longer listed. */
  found: boolean;
  drifted: number;
  vanished: number;
  /** TeamViewer's users, when they were listed (for the full read that puts them back). */
  listed: TeamViewerUser[] | null;
}

/**
 * A quiet cycle (nothing changed in Entra) with DRIFT_CHECK=every-cycle lists TeamViewer and
 * compares it with what tvsync wrote (shared/sync/drift.ts); the listing also proves the token.
 * Otherwise only the token is checked, so a revoked token is noticed this cycle and not at the
 * next change.
 */
async function checkDrift(deps: CycleDeps, mode: DriftCheck, compared: readonly DriftAttribute[], signal: AbortSignal): Promise<QuietCheck> {
  if (mode !== 'every-cycle' || compared.length === 0) {
    await deps.teamViewer.testConnection({ signal });
    return { found: false, drifted: 0, vanished: 0, listed: null };
  }
  const [listed, links] = await Promise.all([deps.teamViewer.listUsers({ signal }), raceAbort(deps.state.listLinkDigests(), signal)]);
  const { drifted, vanished } = findDrift(links, listed, compared);
  return { found: drifted.length + vanished.length > 0, drifted: drifted.length, vanished: vanished.length, listed };
}

/** The action's call was still in flight at the cycle's deadline and was cut off. */
function isCutOff(report: ActionReport): boolean {
  return report.status === 'failure' && isCycleDeadline(report.error);
}

/** Work cut off at the deadline is work not finished, not a failure of the user: skipped, no escrow. */
function cutOffReport(report: ActionReport): ActionReport {
  const { error, ...rest } = report;
  return { ...rest, status: 'skipped', reason: `not finished: ${error!.message}; the next heartbeat continues` };
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
async function refreshLinks(deps: CycleDeps, refresh: readonly LinkRefresh[], compared: readonly DriftAttribute[], now: () => Date, cycleId: string): Promise<void> {
  const batch = refresh.slice(0, MAX_REFRESHES);
  if (batch.length === 0) return;
  let failed = 0;
  await mapWithConcurrency(batch, Math.max(1, deps.concurrency), async ({ link, current }) => {
    await deps.state.putLink(refreshed(link, current, compared, now().toISOString())).catch(() => failed++);
  });
  deps.logger.debug(`cycle ${cycleId}: recorded TeamViewer's values on ${batch.length - failed} link(s)${refresh.length > batch.length ? ` (${refresh.length - batch.length} left for the next full read)` : ''}`, { cycleId, refreshed: batch.length - failed, failed });
}

/** Marks cycles left `running` by a process that died as failed, so status never shows a ghost. */
async function closeInterruptedCycles(deps: CycleDeps, recent: CycleRecord[], _at: Date): Promise<void> {
  // A real cycle runs only under the run lease, which this cycle now holds: any other record
  // still `running` belongs to a process that died or lost the lease. (One that lost it may still
  // write its own final record later; that record is the truth and replaces this one.)
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

function dryRunReport(action: Action): ActionReport {
  if (action.kind === 'fail') return { ...reportOf(action, 'failure'), error: { code: action.code, message: action.reason } };
  if (action.kind === 'skip') return reportOf(action, action.warning ? 'warning' : 'skipped');
  return reportOf(action, 'planned');
}

function reportOf(action: Action, status: ActionStatus): ActionReport {
  return {
    kind: action.kind,
    status,
    entraId: action.entraId,
    userPrincipalName: action.userPrincipalName,
    teamViewerId: 'teamViewerId' in action && action.teamViewerId ? action.teamViewerId : null,
    changes: 'changes' in action ? action.changes : action.kind === 'create' ? createChanges(action.draft) : [],
    ...('reason' in action ? { reason: action.reason } : {}),
    ...(action.drift ? { reason: action.drift, drift: true as const } : {}),
  };
}

function createChanges(draft: TeamViewerUserDraft): AttributeChange[] {
  return Object.entries(draft)
    .filter(([, v]) => v !== undefined)
    .map(([attribute, value]) => ({ attribute, old: null, new: value as string | boolean }));
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

function writtenOf(user: TeamViewerUser, previous?: Link['written']): Link['written'] {
  return { ...previous, userName: user.userName, displayName: user.displayName, active: user.active };
}

/**
 * Applies one planned action (also used by provision on demand). Never throws: failures are
 * reports. `signal` cuts off its TeamViewer calls (the cycle's deadline).
 */
export async function applyAction(action: Action, link: Link | undefined, deps: CycleDeps, now: () => Date, signal?: AbortSignal): Promise<ActionReport> {
  const state = deps.state;
  const tv = { signal };
  const stamp = () => now().toISOString();
  const linkFor = (user: TeamViewerUser): Link => ({
    entraId: action.entraId,
    teamViewerId: user.id,
    userName: user.userName,
    userPrincipalName: action.userPrincipalName,
    written: writtenOf(user, link?.written),
    active: user.active,
    createdAt: link?.createdAt ?? stamp(),
    updatedAt: stamp(),
  });
  const fail = (err: unknown): ActionReport => {
    const info = errorInfo(err);
    deps.logger.debug(`${action.kind} failed for ${action.userPrincipalName}: ${info.message}`, { entraId: action.entraId, code: info.code });
    return { ...reportOf(action, 'failure'), error: info };
  };

  try {
    switch (action.kind) {
      case 'fail':
        return { ...reportOf(action, 'failure'), error: { code: action.code, message: action.reason } };
      case 'skip':
        if (action.warning) deps.logger.debug(`skipped ${action.userPrincipalName}: ${action.reason}`, { entraId: action.entraId });
        return reportOf(action, action.warning ? 'warning' : 'skipped');
      case 'unlink':
        if (action.teamViewerId && (await deps.teamViewer.getUser(action.teamViewerId, tv))) {
          return { ...reportOf(action, 'warning'), reason: `TeamViewer user ${action.teamViewerId} was missing from the listing but exists; the link is kept and checked again next cycle` };
        }
        await state.deleteLink(action.entraId);
        return reportOf(action, 'success');
      case 'create':
        if (action.replacesTeamViewerId && (await deps.teamViewer.getUser(action.replacesTeamViewerId, tv))) {
          return { ...reportOf(action, 'warning'), reason: `TeamViewer user ${action.replacesTeamViewerId} was missing from the listing but exists; nothing created, checked again next cycle` };
        }
        return await applyCreate(action, link, deps, linkFor, stamp, signal);
      case 'link': {
        if (Object.keys(action.patch).length === 0 && action.current) {
          // Nothing to write: TeamViewer already holds what it should, and the link records that,
          // so a later hand edit shows as drift.
          await state.putLink(linkFor(action.current));
          return { ...reportOf(action, 'success'), teamViewerId: action.teamViewerId };
        }
        const match: TeamViewerUser = { id: action.teamViewerId, userName: action.userName, displayName: null, givenName: null, familyName: null, email: null, active: true };
        // Record the tie first: if the PATCH below fails, the user is still ours next cycle.
        await state.putLink({ ...linkFor(match), written: link?.written ?? {} });
        if (Object.keys(action.patch).length > 0) {
          const updated = await deps.teamViewer.patchUser(action.teamViewerId, action.patch, tv);
          await state.putLink(linkFor(updated));
        }
        return { ...reportOf(action, 'success'), teamViewerId: action.teamViewerId };
      }
      case 'update':
      case 'enable':
      case 'disable': {
        const updated = await deps.teamViewer.patchUser(action.teamViewerId, action.patch, tv);
        await state.putLink(linkFor(updated));
        return reportOf(action, 'success');
      }
    }
  } catch (err) {
    return fail(err);
  }
}

async function applyCreate(
  action: Extract<Action, { kind: 'create' }>,
  link: Link | undefined,
  deps: CycleDeps,
  linkFor: (user: TeamViewerUser) => Link,
  stamp: () => string,
  signal: AbortSignal | undefined,
): Promise<ActionReport> {
  const { draft } = action;
  const tv = { signal };
  await deps.state.putLink({
    entraId: action.entraId,
    teamViewerId: null,
    userName: draft.userName,
    userPrincipalName: action.userPrincipalName,
    written: {},
    active: draft.active,
    createdAt: link?.createdAt ?? stamp(),
    updatedAt: stamp(),
    pending: 'create',
  });
  if (action.replacesTeamViewerId) {
    deps.logger.debug(`TeamViewer user ${action.replacesTeamViewerId} linked to ${action.userPrincipalName} no longer exists; creating a new one`, { entraId: action.entraId });
  }
  try {
    const created = await deps.teamViewer.createUser(draft, tv);
    await deps.state.putLink(linkFor(created));
    return { ...reportOf(action, 'success'), teamViewerId: created.id };
  } catch (err) {
    const code = errorInfo(err).code;
    const mayHaveApplied = (err as { mayHaveApplied?: boolean }).mayHaveApplied === true;
    if (code !== 'TEAMVIEWER_CONFLICT' && !mayHaveApplied) {
      // The create certainly did not happen: drop the intent so state holds no half link.
      if (code === 'TEAMVIEWER_BAD_REQUEST') await deps.state.deleteLink(action.entraId).catch(() => undefined);
      throw err;
    }
    // 409 (someone has this login) or a create whose answer was lost: look before deciding.
    const found = (await deps.teamViewer.findByUserName(draft.userName, tv)).filter((u) => u.userName.toLowerCase() === draft.userName.toLowerCase());
    if (found.length !== 1) {
      if (code === 'TEAMVIEWER_CONFLICT') {
        await deps.state.deleteLink(action.entraId).catch(() => undefined);
        const err409 = new Error(
          found.length === 0
            ? `TeamViewer refused to create ${draft.userName} (409: the email address is taken) and no user of your company has exactly that userName: it is registered to a TeamViewer account outside your company, or to one of yours under a different letter case. Ask the owner to release it, or change the user's UPN.`
            : `TeamViewer refused to create ${draft.userName} (409) and ${found.length} users match it; link one by hand.`,
        );
        throw Object.assign(err409, { code: 'TEAMVIEWER_CONFLICT' });
      }
      throw err;
    }
    const match = found[0];
    // One TeamViewer user, one Entra user: never take over a user another link already holds.
    const holder = (await deps.state.listLinks()).find((l) => l.teamViewerId === match.id && l.entraId !== action.entraId);
    if (holder) {
      await deps.state.deleteLink(action.entraId).catch(() => undefined);
      throw Object.assign(new Error(`TeamViewer user ${match.id} "${match.userName}" is already linked to another Entra user (${holder.entraId}); not linked twice. If that person left and the login was reused, run "tvsync unlink ${holder.entraId}"`), { code: 'USERNAME_CONFLICT' });
    }
    deps.logger.debug(`linked ${action.userPrincipalName} to existing TeamViewer user ${match.id} after ${code}`, { entraId: action.entraId });
    await deps.state.putLink(linkFor(match));
    const { patch } = diff(action.desired, match);
    if (Object.keys(patch).length > 0) await deps.state.putLink(linkFor(await deps.teamViewer.patchUser(match.id, patch, tv)));
    return { ...reportOf(action, 'success'), kind: 'link', teamViewerId: match.id };
  }
}
