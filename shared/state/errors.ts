/**
 * Errors from the state layer. A caller decides on `code`; the other fields say what the error
 * concerns (endpoint host, table, row) so an operator can find it in Storage Explorer.
 *
 * Invariant: an error built here never carries a secret. Messages pass through `redactText`, and
 * no raw SDK error is kept as `cause`: its request would hold the SAS token or signed headers.
 */
import { RestError } from '@azure/data-tables';
import { redactText } from '../log';
import { isCallTimeout } from '../http/timeout';

export type StateErrorCode =
  /** Network failure, timeout, throttling (429) or a 5xx: worth retrying later. */
  | 'STATE_UNAVAILABLE'
  /** 401/403 or no token from the identity: fix the key, SAS or role assignment. */
  | 'STATE_AUTH'
  /** A conditional write lost (etag mismatch, row already exists or gone): re-read and decide again. */
  | 'STATE_CONFLICT'
  /** A row exists but cannot be decoded: an operator has to look at it; nothing may be guessed. */
  | 'STATE_CORRUPT'
  /** A value over the 64 KiB property limit, or a key over 1 KiB: refused before anything is written. */
  | 'STATE_TOO_LARGE'
  /** An updateCycle for a cycle that was never created. */
  | 'STATE_NOT_FOUND'
  /** A caller bug: empty key, malformed cycle id, a count that is not a non-negative integer. */
  | 'STATE_INVALID_ARGUMENT'
  /** The connection string or table prefix cannot be used as given. */
  | 'STATE_CONFIG'
  /** Plain http to a host that is not loopback: refused before any request. */
  | 'STATE_INSECURE_ENDPOINT'
  /** Any other answer from the service (an unexpected 4xx such as TableNotFound). */
  | 'STATE_REQUEST_FAILED';

export interface StateErrorDetails {
  /** HTTP status of the failed request, when there was a response. */
  status?: number;
  /** The service's own error code (e.g. UpdateConditionNotSatisfied) or the socket error (ECONNREFUSED). */
  serviceCode?: string;
  /** host[:port] of the table endpoint. */
  host?: string;
  table?: string;
  partitionKey?: string;
  /** The RowKey as stored (escaped), i.e. what Storage Explorer shows. */
  rowKey?: string;
  /** Which store operation failed, e.g. "putMeta". */
  operation?: string;
}

export class StateError extends Error {
  readonly code: StateErrorCode;
  readonly status?: number;
  readonly serviceCode?: string;
  readonly host?: string;
  readonly table?: string;
  readonly partitionKey?: string;
  readonly rowKey?: string;
  readonly operation?: string;

  constructor(code: StateErrorCode, message: string, details: StateErrorDetails = {}) {
    super(redactText(message));
    this.name = 'StateError';
    this.code = code;
    for (const [key, value] of Object.entries(details)) {
      if (value !== undefined) Object.assign(this, { [key]: typeof value === 'string' ? redactText(value) : value });
    }
  }
}

/** A conditional write lost the race; the row changed (or appeared, or vanished) since it was read. */
export class StateConflictError extends StateError {
  constructor(message: string, details: StateErrorDetails = {}) {
    super('STATE_CONFLICT', message, details);
    this.name = 'StateConflictError';
  }
}

export function isStateError(error: unknown, code?: StateErrorCode): error is StateError {
  return error instanceof StateError && (code === undefined || error.code === code);
}

export function isRestError(error: unknown): error is RestError {
  return error instanceof RestError || (error instanceof Error && error.name === 'RestError');
}

/** The service's error code (x-ms-error-code, or a batch's sub-response code), else the socket error. */
export function serviceCodeOf(error: RestError): string | undefined {
  const details = error.details as { errorCode?: unknown } | undefined;
  const fromService = typeof details?.errorCode === 'string' ? details.errorCode : error.response?.headers.get('x-ms-error-code');
  return fromService ?? error.code;
}

const IDENTITY_FAILURES = new Set(['AuthenticationError', 'CredentialUnavailableError', 'AggregateAuthenticationError']);

/** One mapping from an SDK failure to a StateError a caller can act on, for every state table. */
export function toStateError(error: unknown, details: StateErrorDetails): StateError {
  if (error instanceof StateError) return error;
  const { operation, table, host, partitionKey, rowKey, status, serviceCode } = details;
  const where = rowKey !== undefined ? ` row ${rowKey}` : partitionKey !== undefined ? ` day ${partitionKey}` : '';
  const what = `${operation} on ${table}${where}`;
  const said = error instanceof Error ? ` (${error.message.split('\n')[0]})` : '';
  if (isCallTimeout(error)) {
    // The table itself, or the token for it: either way a transient outage, retried next cycle.
    const message = error.target.startsWith('Table Storage') ? `${error.message} (${what})` : `${error.message}, so ${what} at ${host} was not attempted`;
    return new StateError('STATE_UNAVAILABLE', message, { ...details, serviceCode: 'TIMEOUT' });
  }
  if (error instanceof Error && IDENTITY_FAILURES.has(error.name)) {
    return new StateError('STATE_AUTH', `no token for Table Storage at ${host}, so ${what} was not attempted${said}`, details);
  }
  if (status === 401 || status === 403) {
    return new StateError(
      'STATE_AUTH',
      `Table Storage at ${host} refused ${what}: HTTP ${status}${serviceCode ? ` ${serviceCode}` : ''}; check the account key, SAS or the identity's Storage Table Data Contributor role`,
      details,
    );
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return new StateError('STATE_UNAVAILABLE', `Table Storage at ${host} did not answer ${what} in time`, details);
  }
  if (isRestError(error) && (status === undefined || status === 408 || status === 429 || status >= 500)) {
    const why = status === undefined ? (serviceCode ?? 'network error') : `HTTP ${status}`;
    return new StateError('STATE_UNAVAILABLE', `Table Storage at ${host} is unavailable (${why}) for ${what}${said}`, details);
  }
  if (status === 409 || status === 412) return new StateConflictError(`conflict in ${what} at ${host}${said}`, details);
  const answer = status ? `: HTTP ${status}${serviceCode ? ` ${serviceCode}` : ''}` : '';
  return new StateError('STATE_REQUEST_FAILED', `Table Storage at ${host} failed ${what}${answer}${said}`, details);
}
