/**
 * The composition root: the one place that turns Settings into adapters and wires them to the
 * use cases (run a cycle, status, test connection). functions/, the CLI and the demo all go
 * through here, so there is one implementation of each power. It reads as its table of contents:
 * each power is a named function in shared/app/ (or the use case's own module).
 */
import type { TokenCredential } from '@azure/identity';
import type { Settings } from './config';
import type { Logger } from './log';
import type { EntraReader } from './entra/reader';
import type { TeamViewerClient } from './teamviewer/client';
import type { StateStore } from './state/store';
import type { ClientTuning } from './state/target';
import { runCycle, type CycleOptions, type CycleReport } from './sync/cycle';
import { acquireLease, LeaseHeldError } from './sync/lease';
import { EMPTY_GUARD_STATE, GUARD_KEY, type GuardState, type StagedDeactivations } from './sync/guard';
import { allowStaged } from './sync/guard-state';
import { unlinkUser, type UnlinkResult } from './unlink';
import { QUARANTINE_KEY, type Quarantine } from './sync/quarantine';
import { provisionOnDemand, type ProvisionResult } from './provision';
import type { ProvisioningLogStore } from './state/logs';
import type { GroupStateStore } from './state/groups';
import type { TeamViewerUserGroups } from './teamviewer/usergroups';
import { openAdapters } from './app/adapters';
import { failureEmails } from './app/alerts';
import { heartbeat, requestRun } from './app/beat';
import { restartProvisioning, type RestartResult } from './app/restart';
import { testConnections, type ConnectionCheck } from './app/test-connection';

export { RUN_NOW_KEY } from './app/beat';
export type { RestartResult } from './app/restart';
export type { ConnectionCheck } from './app/test-connection';
import { sleep } from './http/retry';
import { buildStatus, type StatusDocument } from './status';
import { logCycleRecord } from './cycle-record';

export interface App {
  settings: Settings;
  store: StateStore;
  /** Provisioning logs: one record per user change, kept LOG_RETENTION_DAYS. */
  logs: ProvisioningLogStore;
  entra: EntraReader;
  teamViewer: TeamViewerClient;
  /** User groups (GROUP_PROVISIONING=assigned): their state and TeamViewer's Web API; null when off. */
  groups: { state: GroupStateStore; teamViewer: TeamViewerUserGroups } | null;
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

export interface AppOptions {
  logger: Logger;
  /** Defaults to DefaultAzureCredential (managed identity in Azure, client secret or Azure CLI elsewhere). */
  credential?: TokenCredential;
  /** Table Storage clients' retries and per-request timeout (default 30 s); tests shorten them. */
  stateTuning?: ClientTuning;
}

export async function createApp(settings: Settings, options: AppOptions): Promise<App> {
  const { logger } = options;
  const { store, logs, entra, teamViewer, notifier, groups } = await openAdapters(settings, options);
  const { evaluate: evaluateAlerts, betweenCycles: alertsBetweenCycles } = failureEmails(store, notifier, settings, logger);
  const deps = cycleDeps(settings, { entra, teamViewer, store, logs, logger, groups });
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
    groups,
    logger,
    runCycle: run,
    beat: (trigger) => heartbeat({ store, logger, intervalMinutes: settings.syncIntervalMinutes, run, alertsBetweenCycles }, trigger),
    status: (now = new Date()) => readStatus(store, settings, now, groups?.state ?? null),
    provision: (query, provisionOptions = {}) => provisionOnDemand({ entra, teamViewer, store, logger, config: settings.sync, ...(groups ? { groups: { ...groups, settings: settings.groups } } : {}) }, query, provisionOptions),
    restart: (restartOptions) => restartProvisioning(store, logger, restartOptions),
    unlink: (query, { by, confirm }) => unlinkUser({ store, teamViewer, logger }, query, { by, confirm }),
    requestRun: (by) => requestRun(store, by),
    allowDeactivations: (by) => allowStaged(store, by, logger),
    testConnection: () => testConnections(store, entra, teamViewer, groups ? { teamViewer: groups.teamViewer, settings: settings.groups } : null),
  };

}

/** What a cycle gets from the settings and adapters. */
function cycleDeps(settings: Settings, adapters: { entra: EntraReader; teamViewer: TeamViewerClient; store: StateStore; logs: ProvisioningLogStore; logger: Logger; groups: App['groups'] }) {
  return {
    entra: adapters.entra,
    teamViewer: adapters.teamViewer,
    state: adapters.store,
    logger: adapters.logger,
    logs: adapters.logs,
    concurrency: settings.teamViewerConcurrency * 2,
    config: settings.sync,
    guard: settings.guard,
    intervalMinutes: settings.syncIntervalMinutes,
    quarantine: settings.quarantine,
    timeBudgetSeconds: settings.cycleTimeBudgetSeconds,
    callTimeoutSeconds: settings.teamViewerTimeoutSeconds,
    driftCheck: settings.driftCheck,
    ...(adapters.groups ? { groups: { settings: settings.groups, teamViewer: adapters.groups.teamViewer, state: adapters.groups.state } } : {}),
  };
}

/** The status document, built from state only (it answers while a cycle runs elsewhere). */
async function readStatus(store: StateStore, settings: Settings, now: Date, groups: GroupStateStore | null): Promise<StatusDocument> {
  const [cycles, guard, escrows, quarantine, groupLinks] = await Promise.all([
    store.listCycles(20), store.getMeta<GuardState>(GUARD_KEY), store.listEscrows(), store.getMeta<Quarantine>(QUARANTINE_KEY),
    // Group links from state only: status never calls TeamViewer.
    groups ? groups.listGroupLinks() : Promise.resolve(null),
  ]);
  return buildStatus(cycles, settings.syncIntervalMinutes, now, guard ? { ...EMPTY_GUARD_STATE, ...guard.value } : null, escrows, quarantine?.value ?? null, groupLinks ? { prefix: settings.groups.prefix, links: groupLinks } : null);
}
