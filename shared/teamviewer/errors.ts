/**
 * Typed errors of the TeamViewer adapter: every failure a caller can see is a TeamViewerError
 * whose `code` says what to do about it.
 *
 * Invariant: no message or detail ever contains the API token. Server-supplied text is passed
 * through `scrub` (the token, bearer headers, and anything registered with registerSecret are
 * masked) and shortened before it becomes part of a message.
 *
 * TeamViewer answers in two shapes and both are read: the Web API shape
 * `{ error, error_description, error_code }` (auth, throttling) and the SCIM Error schema
 * `{ schemas, status, scimType, detail }` (everything on /scim/v2).
 */
import { redactText } from '../log';
import { formatDuration } from '../http/timeout';

export type TeamViewerErrorCode =
  | 'TEAMVIEWER_UNAUTHORIZED'
  | 'TEAMVIEWER_FORBIDDEN'
  | 'TEAMVIEWER_THROTTLED'
  | 'TEAMVIEWER_CONFLICT'
  | 'TEAMVIEWER_BAD_REQUEST'
  | 'TEAMVIEWER_NOT_FOUND'
  | 'TEAMVIEWER_TRANSIENT'
  /** No answer within TEAMVIEWER_TIMEOUT_SECONDS, after the retries (a create is never retried: see mayHaveApplied). */
  | 'TEAMVIEWER_TIMEOUT'
  | 'TEAMVIEWER_PROTOCOL'
  /** A 403 that is not throttling on a user-group or role call: no *User groups* right, or no Tensor licence. */
  | 'TEAMVIEWER_GROUPS_FORBIDDEN'
  /** A user group with that name (compared without case) exists: list the groups and adopt it. */
  | 'TEAMVIEWER_GROUP_NAME_TAKEN';

export interface TeamViewerErrorInit {
  code: TeamViewerErrorCode;
  message: string;
  method: string;
  path: string;
  status?: number;
  retryAfterSeconds?: number;
  scimType?: string;
  detail?: string;
  userName?: string;
  mayHaveApplied?: boolean;
  timeoutMs?: number;
  cause?: unknown;
}

export class TeamViewerError extends Error {
  override readonly name = 'TeamViewerError';
  readonly code: TeamViewerErrorCode;
  /** HTTP status, when TeamViewer answered at all. */
  readonly status?: number;
  /** What TeamViewer asked for with Retry-After, when it did (throttling, 503). */
  readonly retryAfterSeconds?: number;
  /** SCIM scimType (e.g. "uniqueness") or the Web API `error` code (e.g. "rate_limit_reached"). */
  readonly scimType?: string;
  /** TeamViewer's own explanation, scrubbed of secrets. */
  readonly detail?: string;
  /** The user the call concerned, when there was one. */
  readonly userName?: string;
  /**
   * True when a write was sent but its answer was lost (timeout, dropped connection): it may have
   * been carried out. For a create, look the user up (findByUserName) before creating again.
   */
  readonly mayHaveApplied: boolean;
  readonly method: string;
  /** Path below the base URL, without the query string (e.g. "/Users/u123"). */
  readonly path: string;
  /** TEAMVIEWER_TIMEOUT: the per-attempt timeout that ran out. */
  readonly timeoutMs?: number;

  constructor(init: TeamViewerErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.scimType = init.scimType;
    this.detail = init.detail;
    this.userName = init.userName;
    this.mayHaveApplied = init.mayHaveApplied ?? false;
    this.method = init.method;
    this.path = init.path;
    this.timeoutMs = init.timeoutMs;
  }
}

export function isTeamViewerError(e: unknown): e is TeamViewerError {
  return e instanceof TeamViewerError;
}

/** What a request was for, in words an admin reads in a log: "create user alice@contoso.com". */
export interface RequestContext {
  method: string;
  path: string;
  /** The call goes to the Web API (/api/v1), not SCIM. */
  webApi?: boolean;
  action: string;
  userName?: string;
  /** The token, so it can be masked should a server echo it. */
  secret: string;
}

const MAX_DETAIL = 300;

export function scrub(text: string, secret: string): string {
  let out = secret ? text.split(secret).join('[redacted]') : text;
  out = redactText(out);
  return out.length > MAX_DETAIL ? `${out.slice(0, MAX_DETAIL)}…` : out;
}

interface ErrorBody {
  /** Web API `error`, or SCIM `scimType`. */
  kind?: string;
  detail?: string;
}

/** Reads either error shape; tolerates an empty, non-JSON or unexpected body. */
function readErrorBody(text: string): ErrorBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text.trim() ? { detail: text.trim() } : {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const body = parsed as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  return {
    kind: str(body.scimType) ?? str(body.error),
    detail: str(body.detail) ?? str(body.error_description) ?? str(body.message) ?? str(body.error),
  };
}

function isRateLimit(status: number, body: ErrorBody, retryAfterSeconds: number | undefined): boolean {
  if (status === 429) return true;
  if (status !== 403) return false;
  if (body.kind === 'rate_limit_reached') return true;
  // A permission problem never comes with Retry-After; and some gateways only say it in words.
  return retryAfterSeconds !== undefined || /rate.?limit|too many/i.test(body.detail ?? '');
}

/** The TeamViewerError for a non-2xx answer. */
export function errorFromResponse(
  ctx: RequestContext,
  response: { status: number; bodyText: string; retryAfterSeconds?: number },
): TeamViewerError {
  const { status, retryAfterSeconds } = response;
  const body = readErrorBody(response.bodyText);
  const detail = body.detail === undefined ? undefined : scrub(body.detail, ctx.secret);
  const kind = body.kind === undefined ? undefined : scrub(body.kind, ctx.secret);
  const said = `${status}${kind ? ` ${kind}` : ''}${detail && detail !== kind ? `: ${detail}` : ''}`;
  const base = { method: ctx.method, path: ctx.path, status, scimType: kind, detail, userName: ctx.userName, retryAfterSeconds };
  const make = (code: TeamViewerErrorCode, message: string, extra: Partial<TeamViewerErrorInit> = {}) =>
    new TeamViewerError({ ...base, code, message, ...extra });

  if (status === 401) {
    return make('TEAMVIEWER_UNAUTHORIZED', `TeamViewer rejected the API token (${said}) while trying to ${ctx.action}: `
      + 'check TEAMVIEWER_API_TOKEN. The script token is wrong, expired or was revoked; create a new one in the '
      + 'TeamViewer Management Console and store it where TEAMVIEWER_API_TOKEN points.');
  }
  if (isRateLimit(status, body, retryAfterSeconds)) {
    return make('TEAMVIEWER_THROTTLED', `TeamViewer is rate-limiting this API token (${said}) while trying to ${ctx.action}`
      + `${retryAfterSeconds !== undefined ? `; it asked to wait ${retryAfterSeconds} s` : ''}. `
      + 'The call is retried with backoff and tvsync lowers how many requests it has in flight; if this persists, make sure no other '
      + 'script uses the same token.');
  }
  if (status === 403) {
    return make('TEAMVIEWER_FORBIDDEN', `TeamViewer refused to ${ctx.action} (${said}): the script token lacks a permission. `
      + 'Edit the token in the TeamViewer Management Console and grant User management (create, edit, view users)'
      + `${ctx.path.startsWith('/account') ? ' and Account management (view account data)' : ''}.`);
  }
  if (status === 409) {
    return make('TEAMVIEWER_CONFLICT', `TeamViewer refused to ${ctx.action} (${said}): the email address is already `
      + 'in use by a TeamViewer account, possibly one outside your company. Match the existing account instead, or ask '
      + 'its owner to change or free that address.');
  }
  if (status === 400) {
    return make('TEAMVIEWER_BAD_REQUEST', `TeamViewer rejected the request to ${ctx.action} as invalid (${said}). `
      + 'Check the mapped values (a name must be 2–50 characters, userName a valid email address).');
  }
  if (status === 404) {
    const userPath = /^\/Users\/[^/]+$/.test(ctx.path);
    return make('TEAMVIEWER_NOT_FOUND', userPath
      ? `TeamViewer has no such user (${said}) while trying to ${ctx.action}: it may have been deleted in the TeamViewer Management Console.`
      : `TeamViewer has nothing at ${ctx.method} ${ctx.path} (${said}) while trying to ${ctx.action}: check TEAMVIEWER_SCIM_URL `
        + '(normally https://webapi.teamviewer.com/scim/v2).');
  }
  if (status >= 500 || status === 408) {
    return make('TEAMVIEWER_TRANSIENT', `TeamViewer failed to ${ctx.action} (${said}): a problem on TeamViewer's side, `
      + 'usually temporary. It is retried; if it persists, check https://status.teamviewer.com.');
  }
  return make('TEAMVIEWER_PROTOCOL', `TeamViewer gave an unexpected answer while trying to ${ctx.action} (${said}).`);
}

/** Network-level failures carry a code deep in `cause` (undici wraps the socket error). */
function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Failures where the request provably never reached TeamViewer. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * The TeamViewerError for a request that got no (complete) answer: TEAMVIEWER_TIMEOUT when
 * `timeout` says the attempt ran out of time (after `attempts` timed-out attempts), else
 * TEAMVIEWER_TRANSIENT.
 */
export function errorFromNetwork(ctx: RequestContext, error: unknown, timeout?: { timeoutMs: number; attempts: number }): TeamViewerError {
  const code = networkCode(error);
  const notSent = !timeout && code !== undefined && NOT_SENT.has(code);
  const write = ctx.method !== 'GET';
  // The call as an admin can find it in TeamViewer's API docs; the path has no query string.
  const call = `${ctx.webApi ? 'Web API' : 'SCIM'} ${ctx.method} ${ctx.path}`;
  const what = timeout ? `did not answer ${call} within ${formatDuration(timeout.timeoutMs)}${timeout.attempts > 1 ? ` (${timeout.attempts} attempts)` : ''}`
    : notSent ? `could not be reached (${code})`
    : `dropped the connection${code ? ` (${code})` : ''}`;
  const consequence = write && !notSent
    ? ' The change may or may not have been made; look the user up before trying again.'
    : ' This is usually temporary.';
  return new TeamViewerError({
    code: timeout ? 'TEAMVIEWER_TIMEOUT' : 'TEAMVIEWER_TRANSIENT',
    message: `TeamViewer ${what} while trying to ${ctx.action}.${consequence}`,
    method: ctx.method,
    path: ctx.path,
    userName: ctx.userName,
    detail: timeout ? 'timeout' : code,
    mayHaveApplied: write && !notSent,
    timeoutMs: timeout?.timeoutMs,
    cause: error,
  });
}

/** The TeamViewerError for a 2xx answer we cannot use (not JSON, or missing what the spec promises). */
export function protocolError(ctx: RequestContext, status: number, problem: string): TeamViewerError {
  return new TeamViewerError({
    code: 'TEAMVIEWER_PROTOCOL',
    message: `TeamViewer answered ${status} while trying to ${ctx.action}, but ${scrub(problem, ctx.secret)}. `
      + 'Check TEAMVIEWER_SCIM_URL points at TeamViewer\'s SCIM endpoint; if it does, TeamViewer changed its API.',
    method: ctx.method,
    path: ctx.path,
    status,
    userName: ctx.userName,
    // A 2xx to a write means TeamViewer carried it out, whatever the body says.
    mayHaveApplied: ctx.method !== 'GET',
  });
}
