/**
 * The composition root: the one place that turns Settings into adapters and wires them to the
 * use cases (run a cycle, status, test connection). functions/, the CLI and the demo all go
 * through here, so there is one implementation of each power.
 */
import type { TokenCredential } from '@azure/identity';
import type { Settings } from './config';
import type { Logger } from './log';
import { redactText } from './log';
import { createGraphClient } from './entra/graph-client';
import { EntraReader } from './entra/reader';
import { TeamViewerClient } from './teamviewer/client';
import { StateStore } from './state/store';
import type { ClientTuning, StorageTarget } from './state/target';
import { runCycle, type CycleOptions, type CycleReport } from './sync/cycle';
import { acquireLease, LeaseHeldError } from './sync/lease';
import { EMPTY_GUARD_STATE, GUARD_KEY, stagedAllowed, type GuardState, type StagedDeactivations } from './sync/guard';
import { allowStaged } from './sync/guard-state';
import { unlinkUser, type UnlinkResult } from './unlink';
import { mapWithConcurrency } from './http/pool';
import { WATERMARK_KEY } from './sync/watermark';
import { QUARANTINE_KEY, type Quarantine } from './sync/quarantine';
import { provisionOnDemand, type ProvisionResult } from './provision';
import { ProvisioningLogStore } from './state/logs';
import { EmailNotifier } from './notify/email';
import { ALERTS_KEY, decideAlerts, nextAlertState, type AlertState } from './notify/alerts';

/** An operator's "run now": the next heartbeat starts a cycle whatever the interval says. */
export const RUN_NOW_KEY = 'runNow';
import { sleep } from './http/retry';
import { azureCredential, withTokenTimeout } from './http/timeout';
import { buildStatus, nextRunAt, type StatusDocument } from './status';

export interface App {
  settings: Settings;
  store: StateStore;
  /** Provisioning logs: one record per user change, kept LOG_RETENTION_DAYS. */
  logs: ProvisioningLogStore;
  entra: EntraReader;
  teamViewer: TeamViewerClient;
  logger: Logger;
  runCycle(options: CycleOptions & { waitMs?: number }): Promise<CycleReport>;
  /** Runs a cycle when one is due (the timer's heartbeat); returns null when it is not. */
  beat(trigger: CycleOptions['trigger']): Promise<CycleReport | null>;
  status(now?: Date): Promise<StatusDocument>;
  /**
   * Releases exactly the deactivations the guard holds back now (every held user, by Entra object
   * id), for the next cycle; any other deactivation is judged again. Null when none are staged.
   */
  allowDeactivations(by: string): Promise<StagedDeactivations | null>;
  /** Entra's five steps for one user (object id or UPN). */
  provision(query: string, options?: { dryRun?: boolean }): Promise<ProvisionResult>;
  /**
   * Entra's "restart provisioning": forgets the delta watermark, escrows and the failure quarantine
   * (the next cycle is a new initial cycle). The accidental-deletion guard is kept whole: its
   * baseline, the staged deactivations and any allowance. `full` also marks every link to be
   * matched again by userName when its user is next read; no link is dropped, so users who left are
   * still deactivated. Runs under the run lease.
   */
  restart(options: { full: boolean; by: string }): Promise<RestartResult>;
  /**
   * Drops one user's link (by object id or userPrincipalName), under the run lease; without
   * `confirm` only says what it would do. For a login reused by a new person (USERNAME_CONFLICT).
   */
  unlink(query: string, options: { by: string; confirm: boolean }): Promise<UnlinkResult>;
  /** Asks the timer for a cycle at its next beat. */
  requestRun(by: string): Promise<void>;
  testConnection(): Promise<ConnectionCheck[]>;
}

export interface RestartResult {
  full: boolean;
  /** Links marked to be matched again by userName (full only). */
  rematching: number;
  /** Deactivations that stay held back until allowed. */
  stagedKept: number;
}

export interface ConnectionCheck {
  target: 'Microsoft Graph' | 'TeamViewer' | 'Table Storage';
  ok: boolean;
  detail: string;
  code?: string;
}

export interface AppOptions {
  logger: Logger;
  /** Defaults to DefaultAzureCredential (managed identity in Azure, client secret or Azure CLI elsewhere). */
  credential?: TokenCredential;
  /** Table Storage clients' retries and per-request timeout (default 30 s); tests shorten them. */
  stateTuning?: ClientTuning;
}

function storageTarget(settings: Settings, credential: TokenCredential): StorageTarget {
  if (settings.storage.kind === 'connectionString') return { kind: 'connectionString', connectionString: settings.storage.connectionString };
  const storageCredential = settings.storage.clientId ? azureCredential(settings.graphTimeoutSeconds * 1000, settings.storage.clientId) : credential;
  return { kind: 'identity', tableServiceUri: settings.storage.tableServiceUri, credential: withTokenTimeout(storageCredential, settings.graphTimeoutSeconds * 1000) };
}

export async function createApp(settings: Settings, options: AppOptions): Promise<App> {
  const { logger } = options;
  // Token requests get the Graph timeout: the token endpoint and Graph are Microsoft's side alike.
  const tokenTimeoutMs = settings.graphTimeoutSeconds * 1000;
  const credential = options.credential ?? azureCredential(tokenTimeoutMs);
  const target = storageTarget(settings, credential);
  const [store, logs] = await Promise.all([
    StateStore.open(target, { tablePrefix: settings.tablePrefix, logger, tuning: options.stateTuning }),
    ProvisioningLogStore.open(target, { tablePrefix: settings.tablePrefix, retentionDays: settings.logRetentionDays, logger, tuning: options.stateTuning }),
  ]);
  const graph = createGraphClient({ graphBaseUrl: settings.graphBaseUrl, credential, logger, timeoutMs: settings.graphTimeoutSeconds * 1000 });
  const entra = new EntraReader({ client: graph, servicePrincipalId: settings.servicePrincipalId, logger });
  const teamViewer = new TeamViewerClient({
    baseUrl: settings.teamViewerScimUrl,
    token: settings.teamViewerToken,
    concurrency: settings.teamViewerConcurrency,
    timeoutMs: settings.teamViewerTimeoutSeconds * 1000,
    logger,
  });

  const notifier = settings.email
    ? new EmailNotifier({ ...settings.email, ...(settings.email.endpoint && !settings.email.connectionString ? { credential: withTokenTimeout(credential, tokenTimeoutMs) } : {}) }, logger)
    : null;

  /**
   * Failure emails: evaluated after every real cycle and at heartbeats with no cycle, always under
   * the run lease (one evaluator), see shared/notify/alerts.ts. Never throws.
   */
  const evaluateAlerts = async () => {
    if (!notifier) return;
    try {
      const now = new Date();
      const [row, quarantine, guard, cycles] = await Promise.all([
        store.getMeta<AlertState>(ALERTS_KEY),
        store.getMeta<Quarantine>(QUARANTINE_KEY),
        store.getMeta<GuardState>(GUARD_KEY),
        store.listCycles(20),
      ]);
      const state: AlertState = { sent: {}, ...row?.value };
      const staged = guard?.value.staged && !stagedAllowed(guard.value) ? guard.value.staged : null;
      const decision = decideAlerts(state, {
        quarantine: quarantine?.value ?? null,
        staged,
        release: guard?.value.lastRelease ?? null,
        cycles: cycles.filter((c) => !c.dryRun),
        intervalMinutes: settings.syncIntervalMinutes,
        alertAfterMissedCycles: settings.alertAfterMissedCycles,
        now,
      });
      const delivered: string[] = [];
      for (const item of decision.due) {
        const result = await notifier.send(item.notification);
        if (result.ok) delivered.push(item.key);
        else logger.warn(`could not send the ${item.notification.kind} email (retried later): ${result.code} ${result.message}`);
      }
      let recoveryDelivered = false;
      if (decision.recovery) {
        const result = await notifier.send(decision.recovery);
        recoveryDelivered = result.ok;
        if (!result.ok) logger.warn(`could not send the recovery email (retried later): ${result.code} ${result.message}`);
      }
      const next = nextAlertState(state, decision, delivered, recoveryDelivered, now);
      if (JSON.stringify(next) !== JSON.stringify(state)) await store.putMeta(ALERTS_KEY, next, row?.etag ?? null);
    } catch (err) {
      logger.warn(`could not evaluate failure emails: ${redactText((err as Error).message)}`);
    }
  };

  const requestRun = async (by: string): Promise<void> => {
    await store.putMeta(RUN_NOW_KEY, { requestedAt: new Date().toISOString(), by });
  };

  /** At a heartbeat with no cycle: evaluate the emails if no cycle holds the lease (it will, at its end). */
  const alertsBetweenCycles = async () => {
    if (!notifier) return;
    const lease = await acquireLease(store, { purpose: 'failure emails', logger }).catch(() => null);
    if (!lease) return;
    try {
      await evaluateAlerts();
    } finally {
      await lease.release();
    }
  };

  /** restart --full: every link is matched again by userName when its user is next read; none is dropped. */
  const markForRematch = async (signal: AbortSignal): Promise<number> => {
    const links = await store.listLinks();
    await mapWithConcurrency(links, 16, async (link) => {
      if (signal.aborted) throw signal.reason;
      if (!link.rematch) await store.putLink({ ...link, rematch: true });
    });
    return links.length;
  };

  const deps = { entra, teamViewer, state: store, logger, concurrency: settings.teamViewerConcurrency * 2, config: settings.sync, guard: settings.guard, intervalMinutes: settings.syncIntervalMinutes, logs, quarantine: settings.quarantine, timeBudgetSeconds: settings.cycleTimeBudgetSeconds, callTimeoutSeconds: settings.teamViewerTimeoutSeconds, driftCheck: settings.driftCheck };
  /**
   * A cycle under the run lease (a dry run writes nothing and needs none). With `waitMs`, a
   * held lease is waited for that long before LeaseHeldError is thrown.
   */
  const run = async (cycleOptions: CycleOptions & { waitMs?: number; onLeased?: () => Promise<void> }): Promise<CycleReport> => {
    if (cycleOptions.dryRun) return runCycle(deps, cycleOptions);
    const deadline = Date.now() + (cycleOptions.waitMs ?? 0);
    for (;;) {
      try {
        const lease = await acquireLease(store, { purpose: `${cycleOptions.trigger} cycle`, logger });
        try {
          await cycleOptions.onLeased?.();
          const report = await runCycle({ ...deps, signal: lease.signal }, cycleOptions);
          await evaluateAlerts();
          return report;
        } finally {
          await lease.release();
        }
      } catch (err) {
        if (!(err instanceof LeaseHeldError) || Date.now() >= deadline) throw err;
        await sleep(Math.min(2_000, Math.max(100, deadline - Date.now())));
      }
    }
  };

  return {
    settings,
    store,
    logs,
    entra,
    teamViewer,
    logger,
    runCycle: run,
    async beat(trigger) {
      const now = new Date();
      // Whether a cycle runs elsewhere is the run lease's to say (below), not a heartbeat's age.
      const cycles = await store.listCycles(10);
      const [guard, runNow, quarantine] = await Promise.all([
        store.getMeta<GuardState>(GUARD_KEY),
        store.getMeta<{ requestedAt: string; by: string }>(RUN_NOW_KEY),
        store.getMeta<Quarantine>(QUARANTINE_KEY),
      ]);
      if (quarantine?.value.stopped && !runNow) {
        logger.warn(`no cycle: quarantined since ${quarantine.value.since} (${quarantine.value.reason}) and stopped after 28 days; fix the cause and run "tvsync restart"`);
        await alertsBetweenCycles();
        return null;
      }
      // In quarantine the next attempt follows the back-off (6 h, 12 h, 24 h, daily), not the interval.
      const scheduled = quarantine ? new Date(Math.max(nextRunAt(cycles, settings.syncIntervalMinutes, now).getTime(), Date.parse(quarantine.value.nextAttemptAt))) : nextRunAt(cycles, settings.syncIntervalMinutes, now);
      // A cycle cut by its time budget is continued at once; an allowance or "run now" too.
      const lastReal = cycles.find((c) => !c.dryRun && c.result !== 'running');
      // An allowance makes a cycle due once: not again if a cycle has run since it was granted.
      const allowancePending = guard?.value.allowance && !cycles.some((c) => !c.dryRun && c.startedAt > guard.value.allowance!.grantedAt);
      const due = allowancePending || runNow || lastReal?.budgetReached ? now : scheduled;
      if (due.getTime() > now.getTime()) {
        logger.debug(`no cycle due until ${due.toISOString()}`);
        await alertsBetweenCycles();
        return null;
      }
      try {
        if (runNow) logger.info(`running now, as asked by ${runNow.value.by} at ${runNow.value.requestedAt}`);
        // "Run now" is used up only once this beat holds the lease: if another cycle runs, it stays.
        return await run({ trigger, onLeased: runNow ? () => store.deleteMeta(RUN_NOW_KEY, runNow.etag).catch(() => undefined) : undefined });
      } catch (err) {
        if (!(err instanceof LeaseHeldError)) throw err;
        logger.info(`a cycle is already running elsewhere; this beat does nothing (${err.message})`);
        return null;
      }
    },
    async status(now = new Date()) {
      const [cycles, guard, escrows, quarantine] = await Promise.all([store.listCycles(20), store.getMeta<GuardState>(GUARD_KEY), store.listEscrows(), store.getMeta<Quarantine>(QUARANTINE_KEY)]);
      return buildStatus(cycles, settings.syncIntervalMinutes, now, guard ? { ...EMPTY_GUARD_STATE, ...guard.value } : null, escrows, quarantine?.value ?? null);
    },
    async provision(query, options = {}) {
      return provisionOnDemand({ entra, teamViewer, store, logger, config: settings.sync }, query, options);
    },
    async restart({ full, by }) {
      const lease = await acquireLease(store, { purpose: `restart${full ? ' --full' : ''} by ${by}`, logger });
      try {
        // The guard's row (baseline, staged set, allowance) is not touched: a restart never lets
        // through a deactivation the guard holds back or would hold back.
        await store.deleteMeta(WATERMARK_KEY);
        await store.deleteMeta(QUARANTINE_KEY);
        // Like Entra's restart, the new initial cycle starts at the next heartbeat.
        await requestRun(by);
        for (const escrow of await store.listEscrows()) await store.deleteEscrow(escrow.entraId);
        const rematching = full ? await markForRematch(lease.signal) : 0;
        const guard = await store.getMeta<GuardState>(GUARD_KEY);
        const stagedKept = guard?.value.staged && !stagedAllowed(guard.value) ? guard.value.staged.count : 0;
        logger.warn(`provisioning restarted by ${by}${full ? ` (full: ${rematching} links to be matched again by userName; none dropped)` : ''}; the next cycle is a new initial cycle${stagedKept ? `; ${stagedKept} staged deactivation(s) stay held back until allowed` : ''}`);
        return { full, rematching, stagedKept };
      } finally {
        await lease.release();
      }
    },
    async unlink(query, { by, confirm }) {
      return unlinkUser({ store, teamViewer, logger }, query, { by, confirm });
    },
    requestRun,
    async allowDeactivations(by) {
      return allowStaged(store, by, logger);
    },
    async testConnection() {
      const checks: ConnectionCheck[] = [];
      const attempt = async (target: ConnectionCheck['target'], fn: () => Promise<string>) => {
        try {
          checks.push({ target, ok: true, detail: await fn() });
        } catch (err) {
          const code = (err as { code?: string }).code;
          checks.push({ target, ok: false, detail: redactText((err as Error).message ?? String(err)), ...(code ? { code } : {}) });
        }
      };
      await attempt('Table Storage', async () => {
        const cycles = await store.listCycles(1);
        return `state tables reachable (${cycles.length ? `last cycle ${cycles[0].id}` : 'no cycle yet'})`;
      });
      await attempt('Microsoft Graph', async () => {
        const sp = await entra.getServicePrincipal();
        return `service principal "${sp.displayName}" (appId ${sp.appId}) readable`;
      });
      await attempt('TeamViewer', async () => {
        await teamViewer.testConnection();
        return 'SCIM API accepted the token (GET /Users?filter=userName eq "<random guid>" returned an empty list)';
      });
      return checks;
    },
  };
}
