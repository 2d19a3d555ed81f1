/**
 * Settings → adapters: the one place that opens the state tables and builds the Graph, TeamViewer
 * and email clients, each with its timeout.
 *
 * Invariants:
 * - Token requests get the Graph timeout: the token endpoint and Graph are Microsoft's side alike,
 *   and every credential is wrapped so a hung token endpoint cannot hold a call.
 * - Email goes through the managed identity unless a connection string is given.
 */
import type { TokenCredential } from '@azure/identity';
import type { Settings } from '../config';
import type { Logger } from '../log';
import { createGraphClient } from '../entra/graph-client';
import { EntraReader } from '../entra/reader';
import { azureCredential, withTokenTimeout } from '../http/timeout';
import { EmailNotifier } from '../notify/email';
import { GroupStateStore } from '../state/groups';
import { ProvisioningLogStore } from '../state/logs';
import { StateStore } from '../state/store';
import type { ClientTuning, StorageTarget } from '../state/target';
import { TeamViewerClient } from '../teamviewer/client';
import { TeamViewerUserGroups } from '../teamviewer/usergroups';

export interface Adapters {
  store: StateStore;
  logs: ProvisioningLogStore;
  entra: EntraReader;
  teamViewer: TeamViewerClient;
  /** Null when NOTIFY_EMAIL_TO is empty. */
  notifier: EmailNotifier | null;
  /**
   * User groups (GROUP_PROVISIONING=assigned): the group state tables and TeamViewer's Web API for
   * user groups, through the same client (pool, retries, throttling). Null when off: no table is
   * opened, no call made.
   */
  groups: { state: GroupStateStore; teamViewer: TeamViewerUserGroups } | null;
}

export async function openAdapters(settings: Settings, options: { logger: Logger; credential?: TokenCredential; stateTuning?: ClientTuning }): Promise<Adapters> {
  const { logger } = options;
  const tokenTimeoutMs = settings.graphTimeoutSeconds * 1000;
  const credential = options.credential ?? azureCredential(tokenTimeoutMs);
  const target = storageTarget(settings, credential);
  const groupsOn = settings.groups.provisioning === 'assigned';
  const [store, logs, groupState] = await Promise.all([
    StateStore.open(target, { tablePrefix: settings.tablePrefix, logger, tuning: options.stateTuning }),
    ProvisioningLogStore.open(target, { tablePrefix: settings.tablePrefix, retentionDays: settings.logRetentionDays, logger, tuning: options.stateTuning }),
    groupsOn ? GroupStateStore.open(target, { tablePrefix: settings.tablePrefix, logger, tuning: options.stateTuning }) : null,
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
  const groups = groupState ? { state: groupState, teamViewer: new TeamViewerUserGroups(teamViewer) } : null;
  return { store, logs, entra, teamViewer, notifier, groups };
}

function storageTarget(settings: Settings, credential: TokenCredential): StorageTarget {
  if (settings.storage.kind === 'connectionString') return { kind: 'connectionString', connectionString: settings.storage.connectionString };
  const storageCredential = settings.storage.clientId ? azureCredential(settings.graphTimeoutSeconds * 1000, settings.storage.clientId) : credential;
  return { kind: 'identity', tableServiceUri: settings.storage.tableServiceUri, credential: withTokenTimeout(storageCredential, settings.graphTimeoutSeconds * 1000) };
}
