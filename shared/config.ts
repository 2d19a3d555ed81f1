/**
 * Settings: every setting tvsync reads is declared once in SETTING_SPECS and parsed once by
 * loadSettings().
 *
 * Invariants:
 * - Nothing else in the code base reads process.env for a tvsync setting; the infra
 *   consistency test relies on SETTING_SPECS being the complete list.
 * - A bad or missing setting never surfaces one at a time: loadSettings collects every problem
 *   and throws one SettingsError naming each of them.
 * - Secret values are registered with the logger's redactor as soon as they are read, and are
 *   never quoted back in an error.
 * - Sources, as the Functions host does it: the process environment wins over the `Values` of
 *   local.settings.json (read from the working directory when present).
 */
import fs from 'node:fs';
import path from 'node:path';
import { registerSecret } from './log';
import { isLoopbackHost } from './net';
import { DEFAULT_MAPPINGS, parseMappings, type SyncConfig } from './sync/mapping';
import { parseScopingFilters } from './sync/scoping';
import { parseThreshold, type GuardSettings } from './sync/guard';
import type { QuarantineSettings } from './sync/quarantine';
import { DRIFT_CHECKS, type DriftCheck } from './sync/drift';
import type { GroupSettings } from './domain/group-model';
import { checkGroupNamePrefix, parseGroupRoles } from './sync/group-roles';
import { locateJsonError } from './json-position';

export interface SettingSpec {
  name: string;
  /** Required settings have no default and must be present (see `requiredUnless`). */
  required: boolean;
  /** Present for optional settings that have a default. */
  default?: string;
  /** Required unless one of these settings is present (identity-based storage). */
  requiredUnless?: string[];
  secret?: boolean;
  /** Read as given, not trimmed (a prefix may end in a space). */
  keepWhitespace?: boolean;
  description: string;
  example: string;
}

export const SETTING_SPECS: readonly SettingSpec[] = [
  {
    name: 'AzureWebJobsStorage',
    required: true,
    requiredUnless: ['AzureWebJobsStorage__accountName', 'AzureWebJobsStorage__tableServiceUri'],
    secret: true,
    description: 'Storage for state tables (and the Functions host). A connection string, or `UseDevelopmentStorage=true` for Azurite on 127.0.0.1:10002. In Azure, leave it unset and use the identity-based `AzureWebJobsStorage__*` settings.',
    example: 'UseDevelopmentStorage=true',
  },
  {
    name: 'AzureWebJobsStorage__accountName',
    required: false,
    default: '',
    description: 'Identity-based storage: the storage account name; tables are reached at https://<name>.table.core.windows.net with the managed identity.',
    example: 'sttvsyncprod',
  },
  {
    name: 'AzureWebJobsStorage__tableServiceUri',
    required: false,
    default: '',
    description: 'Identity-based storage: the table endpoint, when it is not the public-cloud default derived from the account name.',
    example: 'https://sttvsyncprod.table.core.windows.net',
  },
  {
    name: 'AzureWebJobsStorage__credential',
    required: false,
    default: '',
    description: 'Identity-based storage: `managedidentity` (set by the Bicep template).',
    example: 'managedidentity',
  },
  {
    name: 'AzureWebJobsStorage__clientId',
    required: false,
    default: '',
    description: 'Identity-based storage: client id of the user-assigned managed identity used for storage.',
    example: '00000000-0000-0000-0000-000000000000',
  },
  {
    name: 'AZURE_CLIENT_ID',
    required: false,
    default: '',
    description: 'Client id of the user-assigned managed identity (or app registration) DefaultAzureCredential uses for Microsoft Graph.',
    example: '00000000-0000-0000-0000-000000000000',
  },
  {
    name: 'ENTRA_SERVICE_PRINCIPAL_ID',
    required: true,
    description: 'Object id of the TeamViewer enterprise application\'s service principal (Enterprise applications → TeamViewer → Object ID).',
    example: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b',
  },
  {
    name: 'GRAPH_BASE_URL',
    required: false,
    default: 'https://graph.microsoft.com',
    description: 'Microsoft Graph root; requests go to {GRAPH_BASE_URL}/v1.0/…. Change only for national clouds or the emulator.',
    example: 'https://graph.microsoft.com',
  },
  {
    name: 'GRAPH_TIMEOUT_SECONDS',
    required: false,
    default: '30',
    description: 'Seconds one Microsoft Graph request, or one managed-identity token request, may take before it is abandoned (1–300). A timed-out request is tried at most 3 times, then the cycle fails with GRAPH_TIMEOUT.',
    example: '30',
  },
  {
    name: 'TEAMVIEWER_SCIM_URL',
    required: false,
    default: 'https://webapi.teamviewer.com/scim/v2',
    description: 'TeamViewer SCIM 2.0 base URL.',
    example: 'https://webapi.teamviewer.com/scim/v2',
  },
  {
    name: 'TEAMVIEWER_API_TOKEN',
    required: true,
    secret: true,
    description: 'TeamViewer script token with User management (create, edit, view users). In Azure: a Key Vault reference.',
    example: '@Microsoft.KeyVault(VaultName=kv-tvsync;SecretName=teamviewer-api-token)',
  },
  {
    name: 'TEAMVIEWER_CONCURRENCY',
    required: false,
    default: '16',
    description: 'The most TeamViewer calls in flight at once (1–64). tvsync starts at 4 (or this, if lower), adds one while TeamViewer answers without throttling, and halves on throttling.',
    example: '16',
  },
  {
    name: 'TEAMVIEWER_TIMEOUT_SECONDS',
    required: false,
    default: '30',
    description: 'Seconds one TeamViewer request (SCIM or Web API) may take before it is abandoned (1–300). A timed-out request is tried at most 3 times (a create only once), then the call fails with TEAMVIEWER_TIMEOUT.',
    example: '30',
  },
  {
    name: 'SYNC_SCHEDULE',
    required: false,
    default: '0 */5 * * * *',
    description: 'NCRONTAB (6 fields) of the timer heartbeat. Each beat runs a cycle when one is due.',
    example: '0 */5 * * * *',
  },
  {
    name: 'SYNC_INTERVAL_MINUTES',
    required: false,
    default: '40',
    description: 'Minutes between the starts of two cycles (5–1440).',
    example: '40',
  },
  {
    name: 'SYNC_SCOPE',
    required: false,
    default: 'assigned',
    description: '`assigned`: users assigned to the app directly or through a group (Entra\'s default); `all`: every user in the tenant (then scoping filters decide).',
    example: 'assigned',
  },
  {
    name: 'EXPAND_NESTED_GROUPS',
    required: false,
    default: 'false',
    description: '`true` brings in members of groups nested inside assigned groups (Entra cannot do this); `false` takes direct members only, as Entra does.',
    example: 'false',
  },
  {
    name: 'SCOPING_FILTERS',
    required: false,
    default: '',
    description: 'Entra-style scoping filters as JSON: clauses ANDed within a filter, filters ORed. Empty: everyone in scope.',
    example: '[{"name":"Sales","clauses":[{"attribute":"department","operator":"EQUALS","value":"Sales"}]}]',
  },
  {
    name: 'ATTRIBUTE_MAPPINGS',
    required: false,
    default: '',
    description: 'Attribute mappings as JSON (replaces the TeamViewer gallery defaults). Each: target, one of source/constant/expression, apply always|create, default.',
    example: '[{"target":"userName","source":"userPrincipalName"},{"target":"displayName","expression":"Join(\" \", [givenName], [surname])"}]',
  },
  {
    name: 'SKIP_OUT_OF_SCOPE_DELETIONS',
    required: false,
    default: 'false',
    description: '`true` leaves users who leave scope (unassigned or filtered out) active in TeamViewer; disabled and deleted accounts are still deactivated.',
    example: 'false',
  },
  {
    name: 'GROUP_PROVISIONING',
    required: false,
    default: 'off',
    description: '`assigned`: every group assigned to the TeamViewer enterprise application becomes a TeamViewer user group with the provisioned members (needs the token right User groups: create, delete, edit, read, and a Tensor licence); `off`: users only.',
    example: 'assigned',
  },
  {
    name: 'GROUP_NAME_PREFIX',
    required: false,
    default: '',
    keepWhitespace: true,
    description: 'Put before the Entra display name to make the TeamViewer group name (at most 50 characters; trailing spaces are kept). Changing it renames every linked group.',
    example: 'Entra - ',
  },
  {
    name: 'GROUP_ROLES',
    required: false,
    default: '',
    description: 'JSON list of {"group": "<Entra group object id or exact display name>", "role": "<TeamViewer role name or id>"}: that group\'s TeamViewer user group gets that role. Empty: roles are left alone.',
    example: '[{"group":"Helpdesk","role":"Support agent"}]',
  },
  {
    name: 'DEACTIVATION_THRESHOLD',
    required: false,
    default: '500',
    description: 'Accidental-deletion guard: most deactivations one cycle may apply — a count (Entra\'s default is 500) or a share of managed users such as `15%`. Above it they are held back until `tvsync allow-deactivations`.',
    example: '15%',
  },
  {
    name: 'SUSPICIOUS_DROP_PERCENT',
    required: false,
    default: '25',
    description: 'When Entra returns this percentage fewer users in scope than the last good read, or more, deactivations are held back as a suspicious read; a drop of under 10 users needs half, and a read with no user in scope always holds. 0 turns the check off.',
    example: '25',
  },
  {
    name: 'CYCLE_TIME_BUDGET_SECONDS',
    required: false,
    default: '540',
    description: 'A cycle stops starting work after this many seconds and the next heartbeat continues it, so it always ends before the host\'s time limit (540 fits the Consumption plan\'s 10 minutes).',
    example: '540',
  },
  {
    name: 'DRIFT_CHECK',
    required: false,
    default: 'every-cycle',
    description: 'When changes made in TeamViewer by hand to the users tvsync manages (a leaver re-enabled, a display name edited) are found and put back: `every-cycle` (every quiet cycle lists TeamViewer\'s users), `daily` (at the daily full read), or `off` (hand edits are left as they are).',
    example: 'every-cycle',
  },
  {
    name: 'QUARANTINE_FAILURE_PERCENT',
    required: false,
    default: '40',
    description: 'Quarantine when more than this share of a cycle\'s changes failed (and at least QUARANTINE_MIN_FAILURES did), as Entra: 40%.',
    example: '40',
  },
  {
    name: 'QUARANTINE_MIN_FAILURES',
    required: false,
    default: '5000',
    description: 'The failure-share rule applies from this many failed changes in one cycle (Entra: 5,000).',
    example: '5000',
  },
  {
    name: 'NOTIFY_EMAIL_TO',
    required: false,
    default: '',
    description: 'Comma-separated addresses for failure emails (quarantine, held-back deactivations, no successful cycle, recovery). Empty: no email.',
    example: 'it-operations@contoso.com',
  },
  {
    name: 'ACS_EMAIL_SENDER',
    required: false,
    default: '',
    description: 'Sender address on a domain connected to the Azure Communication Services resource (needed with NOTIFY_EMAIL_TO).',
    example: 'DoNotReply@0000aaaa-1111-2222-3333-444455556666.azurecomm.net',
  },
  {
    name: 'ACS_EMAIL_ENDPOINT',
    required: false,
    default: '',
    description: 'Azure Communication Services endpoint, reached with the managed identity (or use ACS_EMAIL_CONNECTION_STRING).',
    example: 'https://acs-tvsync.europe.communication.azure.com',
  },
  {
    name: 'ACS_EMAIL_CONNECTION_STRING',
    required: false,
    default: '',
    secret: true,
    description: 'Azure Communication Services connection string (`endpoint=…;accesskey=…`), instead of ACS_EMAIL_ENDPOINT with the identity.',
    example: 'endpoint=https://acs-tvsync.europe.communication.azure.com/;accesskey=<secret>',
  },
  {
    name: 'STATUS_PAGE_URL',
    required: false,
    default: '',
    description: 'Address of the status page, linked from every email (set by the Bicep template).',
    example: 'https://func-tvsync-abc123.azurewebsites.net/api/status',
  },
  {
    name: 'ALERT_AFTER_MISSED_CYCLES',
    required: false,
    default: '3',
    description: 'Email when no cycle has succeeded for this many intervals (including "never succeeded").',
    example: '3',
  },
  {
    name: 'LOG_RETENTION_DAYS',
    required: false,
    default: '30',
    description: 'Days provisioning logs are kept in Table Storage (1–3650).',
    example: '30',
  },
  {
    name: 'STATE_TABLE_PREFIX',
    required: false,
    default: 'tvsync',
    description: 'Prefix of the state tables (letters and digits, starting with a letter, at most 20).',
    example: 'tvsync',
  },
  {
    name: 'LOG_LEVEL',
    required: false,
    default: 'info',
    description: 'debug, info, warn or error.',
    example: 'info',
  },
];

export type StorageSetting =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; tableServiceUri: string; clientId: string | null };

export interface Settings {
  storage: StorageSetting;
  servicePrincipalId: string;
  graphBaseUrl: string;
  teamViewerScimUrl: string;
  teamViewerToken: string;
  teamViewerConcurrency: number;
  /** GRAPH_TIMEOUT_SECONDS: per Graph request and per managed-identity token request. */
  graphTimeoutSeconds: number;
  /** TEAMVIEWER_TIMEOUT_SECONDS: per TeamViewer request. */
  teamViewerTimeoutSeconds: number;
  syncSchedule: string;
  syncIntervalMinutes: number;
  tablePrefix: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Scope, scoping filters, mappings, skip-out-of-scope-deletions. */
  sync: SyncConfig;
  /** GROUP_PROVISIONING, GROUP_NAME_PREFIX, GROUP_ROLES. */
  groups: GroupSettings;
  /** The accidental-deletion guard. */
  guard: GuardSettings;
  logRetentionDays: number;
  quarantine: QuarantineSettings;
  /** Failure emails; null when NOTIFY_EMAIL_TO is empty. */
  email: { to: string[]; sender: string; connectionString?: string; endpoint?: string; statusUrl?: string } | null;
  alertAfterMissedCycles: number;
  cycleTimeBudgetSeconds: number;
  driftCheck: DriftCheck;
}

export interface SettingProblem {
  setting: string;
  problem: string;
}

export class SettingsError extends Error {
  readonly code = 'SETTINGS_INVALID';
  constructor(readonly problems: SettingProblem[], readonly sources: string[]) {
    super(
      `tvsync cannot start: ${problems.length} setting${problems.length === 1 ? '' : 's'} ${problems.length === 1 ? 'is' : 'are'} wrong` +
        ` (read from ${sources.join(' and ')}):\n` +
        problems.map((p) => `  - ${p.setting}: ${p.problem}`).join('\n'),
    );
    this.name = 'SettingsError';
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder holding local.settings.json; defaults to the working directory. Null skips the file. */
  localSettingsDir?: string | null;
}

/**
 * Reads local.settings.json `Values` (the file is optional; a malformed one is a settings problem).
 * The file holds the TeamViewer token, so a problem names a line and column, never its text
 * (JSON.parse's own message quotes it). A UTF-8 BOM, as Visual Studio writes, is allowed.
 */
export function readLocalSettings(dir: string): { values: Record<string, string>; problem?: string; file?: string } {
  const file = path.join(dir, 'local.settings.json');
  if (!fs.existsSync(file)) return { values: {} };
  const text = fs.readFileSync(file, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch {
    const at = locateJsonError(text);
    return { values: {}, file, problem: at ? `${file} is not valid JSON: line ${at.line}, column ${at.column}: expected ${at.expected}` : `${file} is not valid JSON` };
  }
  const given = (parsed as { Values?: unknown } | null)?.Values ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    return { values: {}, file, problem: `${file}: "Values" must be an object of setting names and values` };
  }
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(given)) {
    if (value !== null && value !== undefined) values[key] = String(value);
  }
  return { values, file };
}

/**
 * The merged raw settings: local.settings.json Values overlaid by the environment. The CLI also
 * copies these into process.env (as the Functions host does) so DefaultAzureCredential sees them.
 */
export function rawSettings(options: LoadOptions = {}): { values: Record<string, string | undefined>; sources: string[]; problems: SettingProblem[] } {
  const env = options.env ?? process.env;
  const dir = options.localSettingsDir === undefined ? process.cwd() : options.localSettingsDir;
  const sources = ['the environment'];
  const problems: SettingProblem[] = [];
  let local: Record<string, string> = {};
  if (dir !== null) {
    const read = readLocalSettings(dir);
    local = read.values;
    if (read.file) sources.push(read.file);
    if (read.problem) problems.push({ setting: 'local.settings.json', problem: read.problem });
  }
  const values: Record<string, string | undefined> = { ...local };
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined) values[key] = value;
  }
  return { values, sources, problems };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_VAULT_REFERENCE = /^@Microsoft\.KeyVault\(/i;

export function loadSettings(options: LoadOptions = {}): Settings {
  const { values, sources, problems } = rawSettings(options);
  const specs = new Map(SETTING_SPECS.map((s) => [s.name, s]));

  const get = (name: string): string | undefined => {
    const spec = specs.get(name);
    if (!spec) throw new Error(`internal: setting ${name} is not declared in SETTING_SPECS`);
    const raw = values[name];
    const value = raw === undefined ? undefined : spec.keepWhitespace ? raw : raw.trim();
    if (value !== undefined && value !== '' && spec.secret) registerSecret(value);
    if (value !== undefined && KEY_VAULT_REFERENCE.test(value)) {
      problems.push({
        setting: name,
        problem:
          `is an unresolved Key Vault reference (${spec.secret ? 'reference text hidden' : value}). The Functions host replaces it with the secret ` +
          'only when the app\'s identity can read the vault (role "Key Vault Secrets User") and the reference is correct; ' +
          'outside Azure, put the value itself in local.settings.json or the environment.',
      });
      return undefined;
    }
    if (value === undefined || value === '') {
      const excused = spec.requiredUnless?.some((other) => (values[other] ?? '').trim() !== '');
      if (spec.required && !excused) {
        problems.push({ setting: name, problem: `is missing. ${spec.description} Example: ${spec.secret ? '<secret>' : spec.example}` });
        return undefined;
      }
      return spec.default ?? '';
    }
    return value;
  };

  const url = (name: string): string => {
    const value = get(name) ?? '';
    if (!value) return '';
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      problems.push({ setting: name, problem: `"${value}" is not a URL` });
      return '';
    }
    if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
      problems.push({ setting: name, problem: `"${value}" uses plain http to a host that is not loopback; use https` });
    } else if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      problems.push({ setting: name, problem: `"${value}" must be an https URL` });
    } else if (parsed.username || parsed.password || parsed.search || parsed.hash) {
      problems.push({ setting: name, problem: 'must not carry credentials, a query or a fragment' });
    }
    return value.replace(/\/+$/, '');
  };

  const integer = (name: string, min: number, max: number): number => {
    const value = get(name) ?? '';
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      problems.push({ setting: name, problem: `"${value}" must be a whole number from ${min} to ${max}` });
      return min;
    }
    return Number(value);
  };

  const servicePrincipalId = get('ENTRA_SERVICE_PRINCIPAL_ID') ?? '';
  if (servicePrincipalId && !GUID.test(servicePrincipalId)) {
    problems.push({ setting: 'ENTRA_SERVICE_PRINCIPAL_ID', problem: `"${servicePrincipalId}" is not an object id (a GUID such as 3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b)` });
  }

  const teamViewerToken = get('TEAMVIEWER_API_TOKEN') ?? '';
  if (teamViewerToken && /\s/.test(teamViewerToken)) {
    problems.push({ setting: 'TEAMVIEWER_API_TOKEN', problem: 'contains white space (copy the token again, without spaces or line breaks)' });
  }

  const syncSchedule = get('SYNC_SCHEDULE') ?? '';
  const cronProblem = checkNcrontab(syncSchedule);
  if (cronProblem) problems.push({ setting: 'SYNC_SCHEDULE', problem: cronProblem });

  const tablePrefix = get('STATE_TABLE_PREFIX') ?? '';
  if (!/^[A-Za-z][A-Za-z0-9]{0,19}$/.test(tablePrefix)) {
    problems.push({ setting: 'STATE_TABLE_PREFIX', problem: `"${tablePrefix}" must be letters and digits, start with a letter, at most 20 characters` });
  }

  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    problems.push({ setting: 'LOG_LEVEL', problem: `"${logLevel}" must be debug, info, warn or error` });
  }

  const bool = (name: string): boolean => {
    const value = (get(name) ?? 'false').toLowerCase();
    if (value !== 'true' && value !== 'false') problems.push({ setting: name, problem: `"${value}" must be true or false` });
    return value === 'true';
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = get(name) ?? fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    problems.push({ setting: name, problem: `"${value}" must be ${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}` });
    return fallback;
  };
  const scope = get('SYNC_SCOPE') ?? 'assigned';
  if (scope !== 'assigned' && scope !== 'all') problems.push({ setting: 'SYNC_SCOPE', problem: `"${scope}" must be assigned or all` });
  const sync: SyncConfig = {
    scope: scope === 'all' ? 'all' : 'assigned',
    expandNestedGroups: bool('EXPAND_NESTED_GROUPS'),
    skipOutOfScopeDeletions: bool('SKIP_OUT_OF_SCOPE_DELETIONS'),
    filters: [],
    mappings: [...DEFAULT_MAPPINGS],
  };
  const filtersText = get('SCOPING_FILTERS') ?? '';
  if (filtersText) {
    try {
      sync.filters = parseScopingFilters(filtersText);
    } catch (err) {
      const listed = (err as { problems?: Array<{ message: string }> }).problems;
      for (const p of listed?.length ? listed.map((x) => x.message) : [(err as Error).message]) problems.push({ setting: 'SCOPING_FILTERS', problem: p });
    }
  }
  const mappingsText = get('ATTRIBUTE_MAPPINGS') ?? '';
  if (mappingsText) {
    try {
      sync.mappings = parseMappings(mappingsText);
    } catch (err) {
      const listed = (err as { problems?: string[] }).problems;
      for (const p of listed?.length ? listed : [(err as Error).message]) problems.push({ setting: 'ATTRIBUTE_MAPPINGS', problem: p });
    }
  }

  const thresholdText = get('DEACTIVATION_THRESHOLD') ?? '500';
  const threshold = parseThreshold(thresholdText);
  if (!threshold) problems.push({ setting: 'DEACTIVATION_THRESHOLD', problem: `"${thresholdText}" must be a whole number of users (e.g. 500) or a percentage of managed users from 1% to 100% (e.g. 15%)` });
  const guard: GuardSettings = { threshold: threshold ?? { kind: 'count', value: 500 }, suspiciousDropPercent: integer('SUSPICIOUS_DROP_PERCENT', 0, 99) };

  const storage = parseStorage(get, problems);
  const settings: Settings = {
    storage,
    servicePrincipalId,
    graphBaseUrl: url('GRAPH_BASE_URL'),
    teamViewerScimUrl: url('TEAMVIEWER_SCIM_URL'),
    teamViewerToken,
    teamViewerConcurrency: integer('TEAMVIEWER_CONCURRENCY', 1, 64),
    graphTimeoutSeconds: integer('GRAPH_TIMEOUT_SECONDS', 1, 300),
    teamViewerTimeoutSeconds: integer('TEAMVIEWER_TIMEOUT_SECONDS', 1, 300),
    syncSchedule,
    syncIntervalMinutes: integer('SYNC_INTERVAL_MINUTES', 5, 1440),
    tablePrefix,
    logLevel: logLevel as Settings['logLevel'],
    sync,
    guard,
    logRetentionDays: integer('LOG_RETENTION_DAYS', 1, 3650),
    quarantine: { failurePercent: integer('QUARANTINE_FAILURE_PERCENT', 1, 100), minFailures: integer('QUARANTINE_MIN_FAILURES', 1, 1_000_000) },
    email: parseEmail(get, url, problems),
    groups: parseGroups(get, problems),
    alertAfterMissedCycles: integer('ALERT_AFTER_MISSED_CYCLES', 1, 1000),
    cycleTimeBudgetSeconds: integer('CYCLE_TIME_BUDGET_SECONDS', 1, 86_400),
    driftCheck: oneOf('DRIFT_CHECK', DRIFT_CHECKS, 'every-cycle'),
  };
  // Every declared setting is read above; reading the identity pair here keeps get() the only reader.
  get('AzureWebJobsStorage__credential');
  get('AZURE_CLIENT_ID');

  if (problems.length > 0) throw new SettingsError(problems, sources);
  return settings;
}

function parseEmail(get: (name: string) => string | undefined, url: (name: string) => string, problems: SettingProblem[]): Settings['email'] {
  const to = (get('NOTIFY_EMAIL_TO') ?? '').split(/[,;]/).map((a) => a.trim()).filter(Boolean);
  const sender = get('ACS_EMAIL_SENDER') ?? '';
  const connectionString = get('ACS_EMAIL_CONNECTION_STRING') ?? '';
  const endpoint = url('ACS_EMAIL_ENDPOINT');
  const statusUrl = url('STATUS_PAGE_URL');
  const address = /^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/;
  for (const a of to) if (!address.test(a)) problems.push({ setting: 'NOTIFY_EMAIL_TO', problem: `"${a}" is not an email address` });
  if (to.length === 0) return null;
  if (!address.test(sender)) problems.push({ setting: 'ACS_EMAIL_SENDER', problem: sender ? `"${sender}" is not an email address` : 'is missing: NOTIFY_EMAIL_TO is set, so emails need a sender on your Azure Communication Services domain' });
  if (!connectionString && !endpoint) problems.push({ setting: 'ACS_EMAIL_ENDPOINT', problem: 'is missing: NOTIFY_EMAIL_TO is set, so emails need ACS_EMAIL_ENDPOINT (with the managed identity) or ACS_EMAIL_CONNECTION_STRING' });
  if (connectionString && !/^endpoint=[^;]+;accesskey=[^;]+;?$/i.test(connectionString)) problems.push({ setting: 'ACS_EMAIL_CONNECTION_STRING', problem: 'is not "endpoint=…;accesskey=…" (value hidden)' });
  return { to, sender, ...(connectionString ? { connectionString } : {}), ...(endpoint ? { endpoint } : {}), ...(statusUrl ? { statusUrl } : {}) };
}

function parseGroups(get: (name: string) => string | undefined, problems: SettingProblem[]): GroupSettings {
  const provisioning = get('GROUP_PROVISIONING') ?? 'off';
  if (provisioning !== 'off' && provisioning !== 'assigned') problems.push({ setting: 'GROUP_PROVISIONING', problem: `"${provisioning}" must be off or assigned` });
  const prefix = get('GROUP_NAME_PREFIX') ?? '';
  const prefixProblem = checkGroupNamePrefix(prefix);
  if (prefixProblem) problems.push({ setting: 'GROUP_NAME_PREFIX', problem: prefixProblem });
  const { roles, problems: roleProblems } = parseGroupRoles(get('GROUP_ROLES') ?? '');
  for (const problem of roleProblems) problems.push({ setting: 'GROUP_ROLES', problem });
  return { provisioning: provisioning === 'assigned' ? 'assigned' : 'off', prefix, roles };
}

function parseStorage(get: (name: string) => string | undefined, problems: SettingProblem[]): StorageSetting {
  const connectionString = get('AzureWebJobsStorage') ?? '';
  const accountName = get('AzureWebJobsStorage__accountName') ?? '';
  const tableServiceUri = get('AzureWebJobsStorage__tableServiceUri') ?? '';
  const clientId = get('AzureWebJobsStorage__clientId') ?? '';
  if (connectionString) {
    if (/^UseDevelopmentStorage=true$/i.test(connectionString)) return { kind: 'connectionString', connectionString };
    const parts = new Map(
      connectionString.split(';').filter(Boolean).map((part) => {
        const at = part.indexOf('=');
        return [part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim()] as const;
      }),
    );
    const hasKey = parts.has('accountname') && parts.has('accountkey');
    const hasSas = parts.has('sharedaccesssignature') && (parts.has('tableendpoint') || parts.has('accountname'));
    if (!hasKey && !hasSas) {
      problems.push({
        setting: 'AzureWebJobsStorage',
        problem: 'is not a storage connection string (expected AccountName=…;AccountKey=… or UseDevelopmentStorage=true); value hidden',
      });
    }
    const endpoint = parts.get('tableendpoint');
    if (endpoint) {
      try {
        const parsed = new URL(endpoint);
        if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) {
          problems.push({ setting: 'AzureWebJobsStorage', problem: `TableEndpoint ${parsed.origin} uses plain http to a host that is not loopback; use https` });
        }
      } catch {
        problems.push({ setting: 'AzureWebJobsStorage', problem: 'TableEndpoint is not a URL' });
      }
    } else if ((parts.get('defaultendpointsprotocol') ?? 'https').toLowerCase() === 'http') {
      problems.push({ setting: 'AzureWebJobsStorage', problem: 'DefaultEndpointsProtocol=http is only allowed with a loopback TableEndpoint; use https' });
    }
    return { kind: 'connectionString', connectionString };
  }
  if (tableServiceUri || accountName) {
    if (accountName && !/^[a-z0-9]{3,24}$/.test(accountName)) {
      problems.push({ setting: 'AzureWebJobsStorage__accountName', problem: `"${accountName}" is not a storage account name (3–24 lowercase letters and digits)` });
    }
    const uri = tableServiceUri || `https://${accountName}.table.core.windows.net`;
    try {
      const parsed = new URL(uri);
      if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
        problems.push({ setting: 'AzureWebJobsStorage__tableServiceUri', problem: `"${uri}" must be https` });
      }
    } catch {
      problems.push({ setting: 'AzureWebJobsStorage__tableServiceUri', problem: `"${uri}" is not a URL` });
    }
    if (clientId && !GUID.test(clientId)) {
      problems.push({ setting: 'AzureWebJobsStorage__clientId', problem: `"${clientId}" is not a client id (GUID)` });
    }
    return { kind: 'identity', tableServiceUri: uri.replace(/\/+$/, ''), clientId: clientId || null };
  }
  return { kind: 'connectionString', connectionString: '' };
}

/** Checks the shape of a six-field NCRONTAB expression as the Functions timer trigger takes it. */
export function checkNcrontab(expression: string): string | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6) {
    return `"${expression}" must be an NCRONTAB expression with six fields (second minute hour day month day-of-week), e.g. "0 */5 * * * *"`;
  }
  const ranges: Array<[string, number, number]> = [
    ['second', 0, 59], ['minute', 0, 59], ['hour', 0, 23], ['day', 1, 31], ['month', 1, 12], ['day-of-week', 0, 6],
  ];
  for (let i = 0; i < 6; i++) {
    const [name, min, max] = ranges[i];
    const field = fields[i];
    if (i >= 4 && /^[A-Za-z]{3}([-,][A-Za-z]{3})*$/.test(field)) continue; // JAN, MON-FRI
    for (const part of field.split(',')) {
      const m = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part);
      if (!m) return `"${expression}": the ${name} field "${field}" is not valid NCRONTAB`;
      const bounds = m[1] === '*' ? [] : m[1].split('-').map(Number);
      if (bounds.some((n) => n < min || n > max) || (m[2] !== undefined && Number(m[2]) === 0)) {
        return `"${expression}": the ${name} field "${field}" is out of range (${min}–${max})`;
      }
    }
  }
  return null;
}
