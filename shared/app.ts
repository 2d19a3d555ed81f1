/**
 * The composition root: the one place that turns Settings into adapters and wires them to the
 * use cases (run a cycle, status, test connection). functions/, the CLI and the demo all go
 * through here, so there is one implementation of each power.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { Settings } from './config';
import type { Logger } from './log';
import { redactText } from './log';
import { createGraphClient } from './entra/graph-client';
import { EntraReader } from './entra/reader';
import { TeamViewerClient } from './teamviewer/client';
import { StateStore } from './state/store';
import type { StorageTarget } from './state/target';
import { runCycle, type CycleOptions, type CycleReport } from './sync/cycle';
import { acquireLease, LeaseHeldError } from './sync/lease';
import { EMPTY_GUARD_STATE, GUARD_KEY, type GuardState, type StagedDeactivations } from './sync/guard';
import { WATERMARK_KEY } from './sync/watermark';
import { QUARANTINE_KEY, type Quarantine } from './sync/quarantine';
import { provisionOnDemand, type ProvisionResult } from './provision';
import { ProvisioningLogStore } from './state/logs';
import { EmailNotifier } from './notify/email';
import { ALERTS_KEY, decideAlerts, nextAlertState, type AlertState } from './notify/alerts';

/** An operator's "run now": the next heartbeat starts a cycle whatever the interval says. */
export const RUN_NOW_KEY = 'runNow';
import { sleep } from './http/retry';
import { buildStatus, nextRunAt, type StatusDocument } from './status';
import { logCycleRecord } from './cycle-record';

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
  /** Releases the deactivations the guard holds back, for the next cycle. Null when none are staged. */
  allowDeactivations(by: string): Promise<StagedDeactivations | null>;
  /** Entra's five steps for one user (object id or UPN). */
  provision(query: string, options?: { dryRun?: boolean }): Promise<ProvisionResult>;
  /**
   * Entra's "restart provisioning": forgets the delta watermark, escrows and the staged
   * deactivations (the next cycle is a new initial cycle that decides afresh); `full` also drops every link, so
   * matching relinks users by userName. Runs under the run lease.
   */
  restart(options: { full: boolean; by: string }): Promise<{ droppedLinks: number }>;
  /** Asks the timer for a cycle at its next beat. */
  requestRun(by: string): Promise<void>;
  testConnection(): Promise<ConnectionCheck[]>;
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
}

function storageTarget(settings: Settings, credential: TokenCredential): StorageTarget {
  if (settings.storage.kind === 'connectionString') return { kind: 'connectionString', connectionString: settings.storage.connectionString };
  const storageCredential = settings.storage.clientId ? new DefaultAzureCredential({ managedIdentityClientId: settings.storage.clientId }) : credential;
  return { kind: 'identity', tableServiceUri: settings.storage.tableServiceUri, credential: storageCredential };
}

export async function createApp(settings: Settings, options: AppOptions): Promise<App> {
  const { logger } = options;
  const credential = options.credential ?? new DefaultAzureCredential();
  const target = storageTarget(settings, credential);
  const [store, logs] = await Promise.all([
    StateStore.open(target, { tablePrefix: settings.tablePrefix, logger }),
    ProvisioningLogStore.open(target, { tablePrefix: settings.tablePrefix, retentionDays: settings.logRetentionDays, logger }),
  ]);
  const graph = createGraphClient({ graphBaseUrl: settings.graphBaseUrl, credential, logger });
  const entra = new EntraReader({ client: graph, servicePrincipalId: settings.servicePrincipalId, logger });
  const teamViewer = new TeamViewerClient({
    baseUrl: settings.teamViewerScimUrl,
    token: settings.teamViewerToken,
    concurrency: settings.teamViewerConcurrency,
    logger,
  });

  const notifier = settings.email
    ? new EmailNotifier({ ...settings.email, ...(settings.email.endpoint && !settings.email.connectionString ? { credential } : {}) }, logger)
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
      const staged = guard?.value.staged && !guard.value.allowance ? guard.value.staged : null;
      const decision = decideAlerts(state, {
        quarantine: quarantine?.value ?? null,
        staged,
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

  const deps = { entra, teamViewer, state: store, logger, concurrency: settings.teamViewerConcurrency * 2, config: settings.sync, guard: settings.guard, intervalMinutes: settings.syncIntervalMinutes, logs, quarantine: settings.quarantine, timeBudgetSeconds: settings.cycleTimeBudgetSeconds };
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
          logCycleRecord(logger, report, cycleOptions.trigger);
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
        await store.deleteMeta(WATERMARK_KEY);
        await store.deleteMeta(GUARD_KEY);
        await store.deleteMeta(QUARANTINE_KEY);
        // Like Entra's restart, the new initial cycle starts at the next heartbeat.
        await requestRun(by);
        for (const escrow of await store.listEscrows()) await store.deleteEscrow(escrow.entraId);
        let droppedLinks = 0;
        if (full) {
          for (const link of await store.listLinks()) {
            await store.deleteLink(link.entraId);
            droppedLinks++;
          }
        }
        logger.warn(`provisioning restarted by ${by}${full ? ` (full: ${droppedLinks} links dropped; users are matched again by userName)` : ''}; the next cycle is a new initial cycle`);
        return { droppedLinks };
      } finally {
        await lease.release();
      }
    },
    requestRun,
    async allowDeactivations(by) {
      // Conditional write: a cycle finishing at the same moment must not lose the allowance.
      for (let attempt = 0; attempt < 3; attempt++) {
        const row = await store.getMeta<GuardState>(GUARD_KEY);
        const state = { ...EMPTY_GUARD_STATE, ...row?.value };
        if (!state.staged) return null;
        try {
          await store.putMeta<GuardState>(GUARD_KEY, { ...state, allowance: { grantedAt: new Date().toISOString(), by } }, row?.etag ?? null);
          logger.warn(`deactivations allowed by ${by}: ${state.staged.count} held back since ${state.staged.since} will be applied by the next cycle`);
          return state.staged;
        } catch (err) {
          if ((err as { code?: string }).code !== 'STATE_CONFLICT') throw err;
        }
      }
      throw Object.assign(new Error('the deactivation guard kept changing while it was being updated; try again'), { code: 'STATE_CONFLICT' });
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
