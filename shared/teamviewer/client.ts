/**
 * The TeamViewer SCIM 2.0 client: users only (TeamViewer's SCIM API has no DELETE; deprovisioning
 * is `active: false`), plus the Web API's /account to learn who owns the token, and `webApi` for
 * the Web API adapters beside it (user groups: usergroups.ts), so they share its pool and pauses.
 *
 * Retries, and the one thing a caller must know about them:
 * - Throttling (403 `rate_limit_reached`, or 429) and transient failures (5xx, timeouts, dropped
 *   connections) are retried with exponential backoff and full jitter, honouring Retry-After
 *   (on 429, 403 and 503 alike; never waiting longer than maxDelayMs), at most `maxRetries` times; then the TeamViewerError
 *   is thrown. A throttled answer pauses every call of this client, not just the one that got it,
 *   because TeamViewer limits per token.
 * - Every attempt gets at most `timeoutMs` (TEAMVIEWER_TIMEOUT_SECONDS), body included. An attempt
 *   that timed out is retried at most TIMEOUT_RETRIES times (a TeamViewer that hung three times in a
 *   row is down), with the same backoff; then TEAMVIEWER_TIMEOUT names the call and the timeout. So
 *   a call that times out fails within timeoutMs × (TIMEOUT_RETRIES + 1) plus its backoff.
 * - A POST (create) that timed out or whose connection dropped is NOT retried: TeamViewer may
 *   have created the user and a blind retry would then fail with 409 or, worse, race another
 *   writer. It throws TEAMVIEWER_TIMEOUT or TEAMVIEWER_TRANSIENT with `mayHaveApplied: true`; the
 *   caller must look the user up (findByUserName) before creating again. PATCH is a replace, so
 *   repeating it is harmless and it is retried like a GET.
 * - A call given a `signal` starts no attempt or wait after it aborted and stops the attempt in
 *   flight; it rejects with the signal's reason (never as a timeout, never retried).
 *
 * How many requests are in flight adapts to what TeamViewer takes (shared/http/pool.ts, adaptive):
 * the client starts at 4, goes up by one after about a window of clean answers, up to
 * `concurrency` (TEAMVIEWER_CONCURRENCY, the maximum), and halves on a throttled answer, once per
 * burst. TeamViewer documents no rate, so the client finds it instead of being told it. Once
 * throttled, it also learns how many requests per second TeamViewer accepted (shared/http/pacer.ts)
 * and spaces its requests to just below that, probing upwards slowly: in flight bounds load, the
 * pacer bounds rate, and with fast answers only the rate keeps the token clear of its limit.
 *
 * Invariants: never more requests are in flight than the pool's current limit allows, and never
 * more than `concurrency`, however many calls a caller starts at once (one shared pool; a call
 * keeps its slot while it waits to retry after a 5xx or a timeout, so backing off really lowers
 * the load, and gives it back while it waits after throttling, taking one again before any later
 * call, so a halved limit holds for its retry too; when the limit is halved, calls already running
 * keep their slot and no new one starts until fewer than the new limit run). The token is sent
 * only in the Authorization header, never follows a redirect, and never appears in an error or a
 * log line.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { requireSecureUrl } from '../net';
import type { TeamViewerPatch, TeamViewerUser, TeamViewerUserDraft } from '../domain/model';
import { createAdaptivePool, mapWithConcurrency, type AdaptivePool, type Answer, type Sent } from '../http/pool';
import { RatePacer } from '../http/pacer';
import { parseRetryAfter, sleep, withRetry } from '../http/retry';
import { abortReason, attemptDeadline } from '../http/timeout';
import {
  errorFromNetwork,
  errorFromResponse,
  isTeamViewerError,
  protocolError,
  TeamViewerError,
  type RequestContext,
} from './errors';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const SSO_SCHEMA = 'urn:ietf:params:scim:schemas:extension:teamviewer:1.0:SsoUser';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export interface TeamViewerClientOptions {
  /** SCIM base, e.g. https://webapi.teamviewer.com/scim/v2 (http only to loopback hosts). */
  baseUrl: string;
  token: string;
  /** The most requests in flight at once (default 16); the client starts at min(4, this) and adapts. */
  concurrency?: number;
  /** Retries of throttled and transient failures (default 5). */
  maxRetries?: number;
  /** Per attempt, body included (TEAMVIEWER_TIMEOUT_SECONDS; default 30000). */
  timeoutMs?: number;
  /** Users per page when listing (default 500). */
  pageSize?: number;
  /** First backoff cap (default 1000); doubles per retry up to maxDelayMs (default 60000). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  logger?: Logger;
}

export interface TeamViewerTokenOwner {
  id: string;
  userName: string;
  name: string;
}

export interface TeamViewerClientStats {
  /** HTTP attempts made (retries included). */
  requests: number;
  retries: number;
  /** Answers that were throttling (403 rate_limit_reached or 429). */
  throttled: number;
  /** Requests allowed in flight now (it adapts between 1 and TEAMVIEWER_CONCURRENCY). */
  concurrency: number;
  /** The highest `concurrency` has been. */
  peakConcurrency: number;
  /** Times throttling halved `concurrency`. */
  concurrencyLowered: number;
}

/** Per call: what a caller may add to any method. */
export interface CallOptions {
  /** Stops the call when it aborts (e.g. a cycle's deadline); it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Retries of a call whose attempt timed out: a TeamViewer that hung three times in a row is down. */
export const TIMEOUT_RETRIES = 2;

interface Call<T> {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  signal?: AbortSignal;
  /** Below the SCIM base, or below the Web API base when `webApi`. */
  path: string;
  query?: string;
  body?: unknown;
  webApi?: boolean;
  action: string;
  userName?: string;
  /** A POST that may be sent again after its answer was lost (adding members, assigning a role). */
  idempotent?: boolean;
  /** False: any 2xx will do and the body is not read (parse gets undefined). */
  readAnswer?: false;
  /** Turns a 2xx JSON body into the result; calls `fail` when it is not what the spec promises. */
  parse: (json: unknown, fail: (problem: string) => never) => T;
}

/**
 * One TeamViewer Web API v1 call (below /api/v1), for adapters beside this client (user groups).
 * It goes through the client's pool, retries, throttling pause and 401 handling, because
 * TeamViewer limits per token: a throttled answer pauses SCIM and Web API calls alike.
 */
export interface WebApiRequest<T> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below /api/v1, e.g. /usergroups/123/members. */
  path: string;
  /** Without the `?`, already encoded. */
  query?: string;
  /** Sent as JSON (arrays too, also on DELETE). */
  body?: unknown;
  /** In words an admin reads in a log: "add 100 members to user group 123". */
  action: string;
  /**
   * A POST whose answer was lost is not sent again (it may have been carried out) unless it is
   * idempotent; PUT, DELETE and GET always are.
   */
  idempotent?: boolean;
  /** False: any 2xx will do and the body is not read (parse gets undefined). */
  readAnswer?: false;
  parse: (json: unknown, fail: (problem: string) => never) => T;
}

type Json = Record<string, unknown>;

/** What the attempts of one call have met so far. */
interface AttemptTally {
  /** Attempts that got no answer within timeoutMs. */
  timeouts: number;
}

const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A SCIM filter string literal: only `"` and `\` need escaping (RFC 7644 uses JSON strings). */
export function scimString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function readUser(raw: unknown, fail: (problem: string) => never): TeamViewerUser {
  if (!isJson(raw)) fail('a user in the answer is not an object');
  const { id, userName } = raw;
  if (typeof id !== 'string' || id === '') fail('a user in the answer has no id');
  if (typeof userName !== 'string' || userName === '') fail(`user ${id} in the answer has no userName`);
  let active: boolean;
  if (typeof raw.active === 'boolean') active = raw.active;
  else if (typeof raw.active === 'string' && /^(true|false)$/i.test(raw.active)) active = raw.active.toLowerCase() === 'true';
  else fail(`user ${id} in the answer has no active flag`);
  const name = isJson(raw.name) ? raw.name : {};
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const emails = Array.isArray(raw.emails) ? raw.emails.filter(isJson) : [];
  const email = emails.find((e) => e.primary === true) ?? emails[0];
  return {
    id,
    userName,
    displayName: text(raw.displayName) ?? text(name.formatted),
    givenName: text(name.givenName),
    familyName: text(name.familyName),
    email: email ? text(email.value) : null,
    active,
  };
}

function readPage(raw: unknown, fail: (problem: string) => never): { totalResults: number; users: TeamViewerUser[] } {
  if (!isJson(raw)) fail('the list answer is not an object');
  const total = raw.totalResults;
  if (typeof total !== 'number' || !Number.isInteger(total) || total < 0) fail('the list answer has no valid totalResults');
  // RFC 7644 lets a server leave Resources out when nothing matched.
  if (raw.Resources === undefined && total === 0) return { totalResults: 0, users: [] };
  if (!Array.isArray(raw.Resources)) fail('the list answer has no Resources array');
  return { totalResults: total, users: raw.Resources.map((r) => readUser(r, fail)) };
}

export class TeamViewerClient {
  /** The last 401 answer, and the number of the last call made before it came (see attempt). */
  private rejection: Error | null = null;
  private rejectedUpTo = 0;
  /** Calls are numbered as they are made: an order, unlike clock time, has no ties. */
  private callCount = 0;
  private readonly scimBase: string;
  private readonly apiBase: string;
  private readonly token: string;
  private readonly pool: AdaptivePool;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly logger: Logger;
  private readonly counters = { requests: 0, retries: 0, throttled: 0 };
  /** Until when every call waits, after TeamViewer throttled this token. */
  private resumeAt = 0;
  /** The request rate TeamViewer accepts from this token, once it has throttled it. */
  private readonly pacer = new RatePacer();

  constructor(options: TeamViewerClientOptions) {
    const url = requireSecureUrl(options.baseUrl, 'The TeamViewer SCIM URL (TEAMVIEWER_SCIM_URL)');
    if (!options.token || !/^[\x21-\x7e]+$/.test(options.token)) {
      // The token itself must not appear here: only what is wrong with it.
      throw new TeamViewerError({
        code: 'TEAMVIEWER_UNAUTHORIZED',
        message: options.token
          ? 'The TeamViewer API token contains spaces, line breaks or other characters a token never has: copy TEAMVIEWER_API_TOKEN again.'
          : 'No TeamViewer API token was given: set TEAMVIEWER_API_TOKEN to a script token with User management permissions.',
        method: '',
        path: '',
      });
    }
    this.scimBase = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.apiBase = /\/scim\/v2$/i.test(this.scimBase)
      ? this.scimBase.replace(/\/scim\/v2$/i, '/api/v1')
      : `${url.origin}/api/v1`;
    this.token = options.token;
    this.pool = createAdaptivePool(options.concurrency ?? 16);
    this.maxRetries = options.maxRetries ?? 5;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pageSize = options.pageSize ?? 500;
    this.baseDelayMs = options.baseDelayMs ?? 1_000;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.logger = options.logger ?? silentLogger;
  }

  get stats(): Readonly<TeamViewerClientStats> {
    return {
      ...this.counters,
      concurrency: this.pool.limit,
      peakConcurrency: this.pool.peak,
      concurrencyLowered: this.pool.lowered,
    };
  }

  /** Every user of the company. Throws rather than return a partial list. */
  listUsers(options: CallOptions = {}): Promise<TeamViewerUser[]> {
    return this.list(undefined, 'list the users', undefined, options);
  }

  /** Users whose userName is exactly `userName` (TeamViewer compares case-sensitively). */
  findByUserName(userName: string, options: CallOptions = {}): Promise<TeamViewerUser[]> {
    return this.list(`userName eq ${scimString(userName)}`, `look up user ${userName}`, userName, options);
  }

  /** The user, or null when TeamViewer does not know the id. */
  async getUser(id: string, options: CallOptions = {}): Promise<TeamViewerUser | null> {
    try {
      return await this.readUser(id, options);
    } catch (error) {
      if (isTeamViewerError(error) && error.code === 'TEAMVIEWER_NOT_FOUND') return null;
      throw error;
    }
  }

  createUser(draft: TeamViewerUserDraft, options: CallOptions = {}): Promise<TeamViewerUser> {
    const body: Json = {
      schemas: draft.ssoCustomerId ? [USER_SCHEMA, SSO_SCHEMA] : [USER_SCHEMA],
      userName: draft.userName,
      emails: [{ primary: true, value: draft.email ?? draft.userName }],
      active: draft.active,
    };
    if (draft.displayName !== undefined) body.displayName = draft.displayName;
    if (draft.givenName !== undefined || draft.familyName !== undefined) {
      body.name = {
        ...(draft.givenName !== undefined ? { givenName: draft.givenName } : {}),
        ...(draft.familyName !== undefined ? { familyName: draft.familyName } : {}),
      };
    }
    if (draft.preferredLanguage !== undefined) body.preferredLanguage = draft.preferredLanguage;
    if (draft.ssoCustomerId) body[SSO_SCHEMA] = { ssoCustomerId: draft.ssoCustomerId };
    return this.call({
      method: 'POST', path: '/Users', body, action: `create user ${draft.userName}`, userName: draft.userName, parse: readUser, signal: options.signal,
    });
  }

  /** Replaces the given attributes in one PatchOp; an empty patch only reads the user. */
  async patchUser(id: string, patch: TeamViewerPatch, options: CallOptions = {}): Promise<TeamViewerUser> {
    const paths: Array<[keyof TeamViewerPatch, string]> = [
      ['userName', 'userName'],
      ['displayName', 'displayName'],
      ['givenName', 'name.givenName'],
      ['familyName', 'name.familyName'],
      ['email', 'emails.value'],
      ['active', 'active'],
    ];
    const operations = paths
      .filter(([key]) => patch[key] !== undefined)
      .map(([key, path]) => ({ op: 'replace', path, value: patch[key] }));
    if (operations.length === 0) return this.readUser(id, options);
    const user = await this.call({
      method: 'PATCH',
      path: `/Users/${encodeURIComponent(id)}`,
      body: { schemas: [PATCH_SCHEMA], Operations: operations },
      action: `update user ${id}`,
      userName: patch.userName,
      parse: readUser,
      signal: options.signal,
    });
    if (patch.email !== undefined || patch.userName !== undefined) {
      this.logger.info('TeamViewer sends a verification email to the new address of an updated user', { teamViewerId: id });
    }
    return user;
  }

  deactivate(id: string, options: CallOptions = {}): Promise<TeamViewerUser> {
    return this.patchUser(id, { active: false }, options);
  }

  /**
   * What Entra's "Test Connection" does: a filter for a random userName must answer 200 with an
   * empty list. Throws the typed error otherwise (401 wrong token, 403 missing permission, ...).
   */
  async testConnection(options: CallOptions = {}): Promise<void> {
    await this.call({
      signal: options.signal,
      method: 'GET',
      path: '/Users',
      query: `filter=${encodeURIComponent(`userName eq ${scimString(randomUUID())}`)}`,
      action: 'test the connection (look up a random userName)',
      parse: (json, fail) => {
        const page = readPage(json, fail);
        if (page.totalResults !== 0 || page.users.length !== 0) {
          fail('a lookup of a random userName matched users, so the filter was ignored');
        }
      },
    });
  }

  /** The account that owns the token (Web API /account), or null when it has none (404). */
  async getTokenOwner(options: CallOptions = {}): Promise<TeamViewerTokenOwner | null> {
    try {
      return await this.call({
        signal: options.signal,
        method: 'GET',
        path: '/account',
        webApi: true,
        action: 'read the account that owns the API token',
        parse: (json, fail: (problem: string) => never) => {
          if (!isJson(json)) fail('the account answer is not an object');
          const { userid, name, email } = json;
          if (typeof userid !== 'string' && typeof userid !== 'number') fail('the account answer has no userid');
          if (typeof email !== 'string') fail('the account answer has no email');
          const id = typeof userid === 'number' || !userid.startsWith('u') ? `u${userid}` : userid;
          return { id, userName: email, name: typeof name === 'string' ? name : email };
        },
      });
    } catch (error) {
      if (isTeamViewerError(error) && error.code === 'TEAMVIEWER_NOT_FOUND') return null;
      throw error;
    }
  }

  /** A Web API v1 call through this client (see WebApiRequest). */
  webApi<T>(request: WebApiRequest<T>, options: CallOptions = {}): Promise<T> {
    return this.call({ ...request, webApi: true, signal: options.signal });
  }

  private readUser(id: string, options: CallOptions): Promise<TeamViewerUser> {
    return this.call({ method: 'GET', path: `/Users/${encodeURIComponent(id)}`, action: `read user ${id}`, parse: readUser, signal: options.signal });
  }

  /**
   * Pages by what it asked for (startIndex + users received) and totalResults; the startIndex in
   * answers is ignored (TeamViewer's own example answers 0). A page that comes back empty before
   * totalResults is reached is a protocol error, never a silently short list.
   *
   * The first page says how many users there are and how many a page holds (the server may give
   * fewer than asked); the other pages are then read at once (as many in flight as the pool allows),
   * each range filled by further requests if its page came back short.
   */
  private async list(filter: string | undefined, action: string, userName: string | undefined, options: CallOptions): Promise<TeamViewerUser[]> {
    const byId = new Map<string, TeamViewerUser>();
    const filterQuery = filter === undefined ? '' : `filter=${encodeURIComponent(filter)}&`;
    const page = (startIndex: number, count: number) => this.call({
      method: 'GET',
      path: '/Users',
      query: `${filterQuery}startIndex=${startIndex}&count=${count}`,
      action,
      userName,
      signal: options.signal,
      parse: (json, fail) => {
        const result = readPage(json, fail);
        if (result.users.length === 0 && startIndex <= result.totalResults) {
          fail(`the page at startIndex ${startIndex} was empty although totalResults is ${result.totalResults}`);
        }
        return result;
      },
    });
    /** Users from `startIndex` up to (not including) `end`, or to the end of the list if it shrank. */
    const range = async (startIndex: number, end: number): Promise<TeamViewerUser[]> => {
      const users: TeamViewerUser[] = [];
      for (let at = startIndex; at < end;) {
        const answer = await page(at, Math.min(this.pageSize, end - at));
        users.push(...answer.users);
        at += answer.users.length;
        if (answer.users.length === 0 || at > answer.totalResults) break;
      }
      return users;
    };
    const first = await page(1, this.pageSize);
    const perPage = first.users.length;
    const starts: number[] = [];
    if (perPage > 0) for (let at = 1 + perPage; at <= first.totalResults; at += perPage) starts.push(at);
    const rest = await mapWithConcurrency(starts, this.pool.max, (at) => range(at, at + perPage));
    // Users inserted while paging shift later pages, so the same user can come twice.
    for (const user of [first.users, ...rest].flat()) if (!byId.has(user.id)) byId.set(user.id, user);
    return [...byId.values()];
  }

  private call<T>(call: Call<T>): Promise<T> {
    const ctx: RequestContext = {
      method: call.method,
      path: call.path,
      webApi: call.webApi,
      action: call.action,
      userName: call.userName,
      secret: this.token,
    };
    const callNumber = ++this.callCount;
    const tally: AttemptTally = { timeouts: 0 };
    return this.pool.run((slot) => {
      let throttled = false;
      return withRetry(() => this.attempt(call, ctx, callNumber, tally), {
        maxRetries: this.maxRetries,
        baseDelayMs: this.baseDelayMs,
        maxDelayMs: this.maxDelayMs,
        // Waiting after throttling, the call gives its slot back (and takes one again before any
        // later call), so a halved limit holds for the retries too; after a 5xx or a timeout it
        // keeps it, so that backing off lowers the load.
        sleep: (ms) => (throttled ? slot.away(() => sleep(ms, call.signal)) : sleep(ms, call.signal)),
        classify: (error) => {
          if (!isTeamViewerError(error)) return { retry: false };
          // A create whose answer was lost may have landed: the caller looks before creating again.
          const blind = call.method === 'POST' && !call.idempotent && error.mayHaveApplied;
          const retry = error.code === 'TEAMVIEWER_THROTTLED'
            || (error.code === 'TEAMVIEWER_TRANSIENT' && !blind)
            || (error.code === 'TEAMVIEWER_TIMEOUT' && !blind && tally.timeouts <= TIMEOUT_RETRIES);
          return { retry, retryAfterSeconds: error.retryAfterSeconds };
        },
        onRetry: ({ error, retry, delayMs }) => {
          this.counters.retries++;
          const tvError = error as TeamViewerError;
          throttled = tvError.code === 'TEAMVIEWER_THROTTLED';
          if (throttled) this.resumeAt = Math.max(this.resumeAt, Date.now() + delayMs);
          // The message can name the user (create user <login>): it stays at debug, out of
          // Application Insights; the warning carries only the code, method and path.
          this.logger.debug(`${tvError.message} Retry ${retry} of ${this.maxRetries} in ${delayMs} ms.`);
          const what = tvError.code === 'TEAMVIEWER_TIMEOUT' ? `did not answer in ${this.timeoutMs} ms` : `answered ${tvError.code}${tvError.status ? ` (${tvError.status})` : ''}`;
          this.logger.warn(`TeamViewer ${what} to ${call.method} ${call.path}; retry ${retry} of ${this.maxRetries} in ${delayMs} ms`, {
            code: tvError.code, status: tvError.status, method: call.method, path: call.path,
          });
        },
      });
    });
  }

  /** Tells the pool and the pacer how an answer went; true when it lowered either. */
  private answered(sent: Sent, answer: Answer): boolean {
    const lowered = this.pool.answered(sent, answer);
    const paced = this.pacer.answered(answer);
    return lowered !== undefined || paced !== undefined;
  }

  private async attempt<T>(call: Call<T>, ctx: RequestContext, callNumber: number, tally: AttemptTally): Promise<T> {
    if (call.signal?.aborted) throw abortReason(call.signal);
    const pause = this.resumeAt - Date.now();
    if (pause > 0) await sleep(pause, call.signal);
    // Once TeamViewer has throttled this token, requests start no faster than it accepted them.
    await this.pacer.turn(call.signal);
    // Once TeamViewer has rejected the token, calls that were already queued when the answer came
    // are not sent with it: a revoked token stops writes at once, not after the queue drains.
    // Calls made after it (a later cycle, a retry by an operator) go out as usual.
    if (this.rejection && callNumber <= this.rejectedUpTo) throw this.rejection;
    this.counters.requests++;
    const url = `${call.webApi ? this.apiBase : this.scimBase}${call.path}${call.query ? `?${call.query}` : ''}`;
    let status: number;
    let text: string;
    let retryAfter: string | null;
    // Armed until the body is read, so an answer that stops half-way is cut off too.
    const deadline = attemptDeadline(this.timeoutMs, call.signal);
    const sent = this.pool.sent();
    try {
      const response = await fetch(url, {
        method: call.method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          Accept: 'application/scim+json, application/json',
          ...(call.body === undefined ? {} : { 'Content-Type': call.webApi ? 'application/json' : 'application/scim+json' }),
        },
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        // A redirect would carry the token elsewhere (or to plain http): treat it as an answer.
        redirect: 'manual',
        signal: deadline.signal,
      });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      if (deadline.timedOut()) {
        this.answered(sent, 'failed');
        tally.timeouts++;
        throw errorFromNetwork(ctx, error, { timeoutMs: this.timeoutMs, attempts: tally.timeouts });
      }
      if (call.signal?.aborted) throw abortReason(call.signal);
      this.answered(sent, 'failed');
      throw errorFromNetwork(ctx, error);
    } finally {
      deadline.clear();
    }
    if (status < 200 || status > 299) {
      const error = errorFromResponse(ctx, { status, bodyText: text, retryAfterSeconds: parseRetryAfter(retryAfter) });
      if (error.code === 'TEAMVIEWER_THROTTLED') {
        this.counters.throttled++;
        if (this.answered(sent, 'throttled')) {
          this.logger.info(`TeamViewer is throttling this API token: at most ${this.pool.limit} requests in flight${this.pacer.rate !== null ? ` and ${this.pacer.rate} per second` : ''} from now on (TEAMVIEWER_CONCURRENCY ${this.pool.max})`, {
            concurrency: this.pool.limit, maxConcurrency: this.pool.max, requestsPerSecond: this.pacer.rate, status,
          });
        }
      } else {
        this.answered(sent, status >= 500 ? 'failed' : 'clean');
      }
      if (error.code === 'TEAMVIEWER_UNAUTHORIZED') {
        this.rejection = error;
        this.rejectedUpTo = this.callCount;
      }
      throw error;
    }
    this.answered(sent, 'clean');
    const fail = (problem: string): never => {
      throw protocolError(ctx, status, problem);
    };
    if (call.readAnswer === false) return call.parse(undefined, fail);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      fail(text.trim() === '' ? 'the answer was empty' : 'the answer is not JSON');
    }
    return call.parse(json, fail);
  }
}
