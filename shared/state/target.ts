/**
 * Where state lives, and the one place a TableClient is built.
 *
 * Invariants:
 * - Plain http goes only to a loopback host (127.0.0.0/8, ::1, localhost). Any other http endpoint
 *   is refused with STATE_INSECURE_ENDPOINT before a request is made, and `allowInsecureConnection`
 *   is set only in the loopback case.
 * - The account key or SAS token is registered as a secret the moment it is parsed, and errors
 *   built here never quote the connection string: they name the endpoint host and the missing part.
 * - Every client has a bounded retry and a per-attempt timeout, so an unreachable endpoint becomes
 *   STATE_UNAVAILABLE in bounded time instead of a hung cycle. The timeout is an abort signal armed
 *   until the body has been read (the SDK's own `request.timeout` stops counting once the headers
 *   came, so a response that stalls half-way would hang forever), and an attempt that ran out of
 *   time fails with a CallTimeoutError naming the table call and the timeout. It is not retried:
 *   a write may have landed.
 */
import {
  AzureNamedKeyCredential,
  AzureSASCredential,
  TableClient,
  type TableServiceClientOptions,
} from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import { registerSecret } from '../log';
import { isLoopbackHost } from '../net';
import { attemptDeadline, CallTimeoutError } from '../http/timeout';
import { StateError } from './errors';

export type StorageTarget =
  /** An account or SAS connection string, or "UseDevelopmentStorage=true" for a local Azurite. */
  | { kind: 'connectionString'; connectionString: string }
  /** Managed identity (AzureWebJobsStorage__accountName / __tableServiceUri). */
  | { kind: 'identity'; tableServiceUri: string; credential: TokenCredential };

/** Azurite's well-known development account. Public by design; it only opens a local emulator. */
export const DEV_ACCOUNT_NAME = 'devstoreaccount1';
export const DEV_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** The connection string of the development account on a local Azurite table endpoint. */
export function devConnectionString(port = 10002, host = '127.0.0.1'): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT_NAME};AccountKey=${DEV_ACCOUNT_KEY};` +
    `TableEndpoint=http://${host}:${port}/${DEV_ACCOUNT_NAME};`
  );
}

/** The public-cloud table endpoint of a storage account, for AzureWebJobsStorage__accountName. */
export function tableServiceUriForAccount(accountName: string): string {
  if (!/^[a-z0-9]{3,24}$/.test(accountName)) {
    throw new StateError('STATE_CONFIG', `"${accountName}" is not a storage account name (3-24 lower-case letters and digits)`);
  }
  return `https://${accountName}.table.core.windows.net`;
}

export type PipelinePolicy = NonNullable<TableServiceClientOptions['additionalPolicies']>[number]['policy'];

/** How hard a client tries. Production uses the defaults; tests shorten them. */
export interface ClientTuning {
  retry?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  /** Per attempt. A timed-out attempt is not retried: a write may have landed. */
  requestTimeoutMs?: number;
  /** Extra policies run on every attempt (tests use them to watch what goes over the wire). */
  policies?: PipelinePolicy[];
}

const DEFAULT_RETRY = { maxRetries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 8_000 };
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

type Credential = AzureNamedKeyCredential | AzureSASCredential | TokenCredential;

interface ResolvedTarget {
  endpoint: URL;
  credential: Credential;
}

/** The validated table endpoint of a target; throws the same errors `tableClient` would. */
export function tableEndpoint(target: StorageTarget): URL {
  return resolve(target).endpoint;
}

export function tableClient(target: StorageTarget, tableName: string, tuning: ClientTuning = {}): TableClient {
  const { endpoint, credential } = resolve(target);
  const timeoutMs = tuning.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const timeoutPolicy: PipelinePolicy = {
    name: 'tvsyncRequestTimeout',
    async sendRequest(request, next) {
      const caller = request.abortSignal;
      const deadline = attemptDeadline(timeoutMs, caller);
      request.abortSignal = deadline.signal;
      try {
        return await next(request);
      } catch (error) {
        if (!deadline.timedOut()) throw error;
        // Method and table only: the query holds filters and, with a SAS, the signature; the
        // entity's keys are in the StateError's own words.
        const path = new URL(request.url).pathname.replace(/\(.+\)$/, '(…)');
        throw new CallTimeoutError(`Table Storage at ${endpoint.host}`, `${request.method} ${path}`, timeoutMs);
      } finally {
        deadline.clear();
        request.abortSignal = caller;
      }
    },
  };
  const options: TableServiceClientOptions = {
    allowInsecureConnection: endpoint.protocol === 'http:',
    retryOptions: { ...DEFAULT_RETRY, ...tuning.retry },
    additionalPolicies: [timeoutPolicy, ...(tuning.policies ?? [])].map((policy) => ({
      policy,
      position: 'perRetry' as const,
    })),
  };
  const url = endpoint.href.replace(/\/+$/, '');
  // The overloads differ only in the credential's type, so pick one per kind for the compiler.
  if (credential instanceof AzureNamedKeyCredential) return new TableClient(url, tableName, credential, options);
  if (credential instanceof AzureSASCredential) return new TableClient(url, tableName, credential, options);
  return new TableClient(url, tableName, credential, options);
}

function resolve(target: StorageTarget): ResolvedTarget {
  if (target.kind === 'identity') {
    return { endpoint: checkEndpoint(target.tableServiceUri, 'tableServiceUri'), credential: target.credential };
  }
  return fromConnectionString(target.connectionString);
}

function fromConnectionString(connectionString: string): ResolvedTarget {
  const parts = new Map<string, string>();
  for (const element of connectionString.split(';')) {
    const at = element.indexOf('=');
    if (at > 0) parts.set(element.slice(0, at).trim().toLowerCase(), element.slice(at + 1).trim());
  }
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') {
    return fromConnectionString(devConnectionString());
  }

  const accountName = parts.get('accountname');
  const accountKey = parts.get('accountkey');
  const sas = parts.get('sharedaccesssignature');
  registerSecret(accountKey);
  registerSecret(sas);

  const explicit = parts.get('tableendpoint');
  const protocol = parts.get('defaultendpointsprotocol') || 'https';
  const suffix = parts.get('endpointsuffix') || 'core.windows.net';
  if (!explicit && !accountName) {
    throw new StateError('STATE_CONFIG', 'the storage connection string has neither TableEndpoint nor AccountName');
  }
  const endpoint = checkEndpoint(explicit || `${protocol}://${accountName}.table.${suffix}`, 'TableEndpoint');

  if (accountKey) {
    if (!accountName) {
      throw new StateError('STATE_CONFIG', 'the storage connection string has an AccountKey but no AccountName', {
        host: endpoint.host,
      });
    }
    return { endpoint, credential: new AzureNamedKeyCredential(accountName, accountKey) };
  }
  if (sas) return { endpoint, credential: new AzureSASCredential(sas) };
  throw new StateError('STATE_CONFIG', 'the storage connection string has neither AccountKey nor SharedAccessSignature', {
    host: endpoint.host,
  });
}

function checkEndpoint(raw: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StateError('STATE_CONFIG', `the storage ${what} is not a URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:') {
    throw new StateError('STATE_CONFIG', `the storage ${what} must be https (got ${url.protocol})`, { host: url.host });
  }
  if (!isLoopbackHost(url.hostname)) {
    throw new StateError(
      'STATE_INSECURE_ENDPOINT',
      `refusing plain http to ${url.host}: state goes over https, or http only to a loopback address (127.0.0.0/8, ::1, localhost)`,
      { host: url.host },
    );
  }
  return url;
}
