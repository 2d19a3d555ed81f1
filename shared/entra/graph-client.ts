/**
 * The Microsoft Graph transport: a Graph SDK client wired to a TokenCredential, and a requester
 * that turns every failure into an EntraReadError, follows pages and runs $batch calls.
 *
 * Invariants:
 * - A read either returns everything Graph has or throws: a page or batch item that failed, a
 *   body without `value`, or a nextLink we will not follow (another origin, not https) all throw.
 *   A delta round also throws when its last page has no deltaLink, or one we would not follow.
 * - Tokens only ever go to the configured Graph origin: the SDK attaches them only to Graph hosts
 *   and `customHosts` (compared by hostname, port ignored), and we refuse nextLinks to any other
 *   origin before they are sent.
 * - 429/503/504 are retried at most `maxRetries` times, waiting what Retry-After says, but never
 *   longer than `maxRetryAfterSeconds` per wait; beyond that the read fails with GRAPH_THROTTLED /
 *   GRAPH_UNAVAILABLE and `retryAfter`, so a cycle is not parked for minutes.
 * - Every HTTP attempt (the SDK's own 429/503/504 retries included) and every token request gets
 *   at most `timeoutMs`, body included. The SDK does not retry an attempt that got no answer, so
 *   the requester does: a timed-out call is tried at most TIMEOUT_RETRIES + 1 times, with the same
 *   back-off as a network failure, then fails with GRAPH_TIMEOUT naming the call and the timeout.
 *   A call therefore fails within timeoutMs × (TIMEOUT_RETRIES + 1) plus its back-off
 *   (delaySeconds × (1 + 2) = 6 s by default); a token request that hangs counts the same way.
 * - A requester given a `signal` starts no attempt, and no wait, after it aborted, and stops the
 *   attempt in flight: the call rejects with the signal's reason, never as a timeout.
 */
import {
  AuthenticationHandler,
  Client,
  GraphClientError,
  GraphError,
  HTTPMessageHandler,
  RedirectHandler,
  RedirectHandlerOptions,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
  type Context,
  type Middleware,
  type MiddlewareOptions,
  type ShouldRetry,
} from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { redactText, registerSecret, silentLogger, type Logger } from '../log';
import { InsecureUrlError } from '../net';
import { parseRetryAfter, sleep } from '../http/retry';
import { abortReason, attemptDeadline, formatDuration, isCallTimeout, withTokenTimeout, type AttemptDeadline } from '../http/timeout';
import { EntraReadError, type EntraReadErrorCode, type GraphPermission } from './errors';

export interface GraphRetryOptions {
  /** Retries after the first attempt, for 429/503/504 and network failures (default 5, at most 10). */
  maxRetries?: number;
  /** Base wait in seconds when Graph sends no Retry-After (default 2); grows with each retry. */
  delaySeconds?: number;
  /** Longest single wait we accept from Retry-After (default 120 s); longer ⇒ fail with retryAfter. */
  maxRetryAfterSeconds?: number;
}

export interface GraphClientOptions {
  /** e.g. https://graph.microsoft.com (requests go to {graphBaseUrl}/v1.0/...). */
  graphBaseUrl: string;
  credential: TokenCredential;
  logger?: Logger;
  retry?: GraphRetryOptions;
  /** Per HTTP attempt and per token request (GRAPH_TIMEOUT_SECONDS; default 30 s). */
  timeoutMs?: number;
}

interface ClientSettings {
  origin: string;
  retry: Required<GraphRetryOptions>;
  logger: Logger;
  timeoutMs: number;
}

const DEFAULT_RETRY: Required<GraphRetryOptions> = { maxRetries: 5, delaySeconds: 2, maxRetryAfterSeconds: 120 };
const DEFAULT_TIMEOUT_MS = 30_000;
/** Retries of a call whose attempt timed out: a Graph that hung three times in a row is down. */
export const TIMEOUT_RETRIES = 2;
const PUBLIC_GRAPH = 'https://graph.microsoft.com';
const API_VERSION = 'v1.0';

/** What createGraphClient knew about each client, for requesters built on it later. */
const settingsByClient = new WeakMap<Client, ClientSettings>();

/**
 * Thrown by the credential wrapper. It extends GraphClientError because the SDK rethrows those
 * untouched, while any other error is flattened into a GraphError that no longer says "token".
 */
export class GraphCredentialError extends GraphClientError {
  constructor(reason: string) {
    super(reason);
    Object.setPrototypeOf(this, GraphCredentialError.prototype);
    this.name = 'GraphCredentialError';
  }
}

/**
 * No token within the timeout: a transient outage of the token endpoint, retried like a network
 * failure, never a credential problem (which would quarantine tvsync). Not a GraphCredentialError.
 */
export class GraphTokenTimeoutError extends GraphClientError {
  constructor(readonly timeoutMs: number, readonly target: string) {
    super(`${target} did not answer the token request for Microsoft Graph within ${formatDuration(timeoutMs)}`);
    Object.setPrototypeOf(this, GraphTokenTimeoutError.prototype);
    this.name = 'GraphTokenTimeoutError';
  }
}

/** Names @azure/identity gives its failures, for clients not built by createGraphClient. */
const CREDENTIAL_ERROR_NAMES = new Set([
  'GraphCredentialError',
  'AggregateAuthenticationError',
  'CredentialUnavailableError',
  'AuthenticationError',
  'AuthenticationRequiredError',
]);

function describeCredentialFailure(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const clipped = text.replace(/\s+/g, ' ').trim();
  return redactText(clipped.length > 800 ? `${clipped.slice(0, 800)}…` : clipped);
}

function guardCredential(credential: TokenCredential, timeoutMs: number): TokenCredential {
  const timed = withTokenTimeout(credential, timeoutMs);
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      let token: AccessToken | null;
      try {
        token = await timed.getToken(scopes, options);
      } catch (error) {
        if (isCallTimeout(error)) throw new GraphTokenTimeoutError(error.timeoutMs, error.target);
        throw new GraphCredentialError(describeCredentialFailure(error));
      }
      if (!token?.token) throw new GraphCredentialError('the credential returned no token');
      // Masks the token wherever it might later appear in a log line or an error message.
      registerSecret(token.token);
      return token;
    },
  };
}

/** A Graph SDK client for `graphBaseUrl` that gets its tokens from `credential`. */
export function createGraphClient(options: GraphClientOptions): Client {
  const base = new URL(options.graphBaseUrl);
  // The SDK attaches tokens only to https URLs, so a plain-http Graph would get none.
  if (base.protocol !== 'https:') throw new InsecureUrlError(`GRAPH_BASE_URL must use https: ${base.origin}`);
  if (base.pathname !== '/' || base.search !== '' || base.hash !== '') {
    // The SDK reads the first path segment of an absolute URL (a nextLink) as the API version.
    throw new RangeError(`GRAPH_BASE_URL must be an origin without a path, e.g. ${PUBLIC_GRAPH} (got ${base.href})`);
  }
  const logger = options.logger ?? silentLogger;
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  retry.maxRetries = Math.max(0, Math.min(10, Math.floor(retry.maxRetries)));
  retry.delaySeconds = Math.max(0, Math.min(180, retry.delaySeconds));
  const timeoutMs = Math.max(1, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);

  const authProvider = new TokenCredentialAuthenticationProvider(guardCredential(options.credential, timeoutMs), {
    scopes: [`${base.origin}/.default`],
  });
  const shouldRetry: ShouldRetry = (_delay, attempt, request, _options, response) => {
    const retryAfter = parseRetryAfter(response.headers.get('Retry-After'));
    if (retryAfter !== undefined && retryAfter > retry.maxRetryAfterSeconds) return false;
    const url = typeof request === 'string' ? request : 'url' in request ? request.url : request.href;
    logger.warn('Microsoft Graph asked us to slow down; retrying', {
      status: response.status,
      retryAfterSeconds: retryAfter,
      retry: attempt + 1,
      maxRetries: retry.maxRetries,
      path: graphCallPath(url),
    });
    return true;
  };
  const middleware = [
    new AuthenticationHandler(authProvider),
    new RetryHandler(new RetryHandlerOptions(retry.delaySeconds, retry.maxRetries, shouldRetry)),
    new RedirectHandler(new RedirectHandlerOptions()),
    new TelemetryHandler(),
    // Below the retry handler: each attempt gets its own deadline.
    new AttemptTimeoutHandler(timeoutMs),
    new HTTPMessageHandler(),
  ];
  const client = Client.initWithMiddleware({
    baseUrl: base.origin,
    defaultVersion: API_VERSION,
    middleware,
    // Compared with the URL's hostname, port stripped (GraphRequestUtil.isValidEndpoint).
    customHosts: base.hostname === 'graph.microsoft.com' ? undefined : new Set([base.hostname]),
  });
  settingsByClient.set(client, { origin: base.origin, retry, logger, timeoutMs });
  return client;
}

/**
 * The path of a Graph URL (absolute, or relative to the version) as logs and errors show it: no
 * query (skiptokens, filters), and every segment that is not an API word — an object id, a UPN —
 * replaced by {id}, e.g. /v1.0/servicePrincipals/{id}/appRoleAssignedTo.
 */
export function graphCallPath(url: string): string {
  let path: string;
  try {
    path = new URL(url, `${PUBLIC_GRAPH}/${API_VERSION}/`).pathname;
  } catch {
    return '';
  }
  if (!/^https?:/i.test(url) && !path.startsWith(`/${API_VERSION}/`)) path = `/${API_VERSION}${path}`;
  return path.split('/').map((segment, i) => (i < 2 || /^[A-Za-z$][A-Za-z.$]*(\(\))?$/.test(segment) ? segment : '{id}')).join('/');
}

/**
 * Per request: the caller's signal in, and each attempt's deadline out, so the requester can tell
 * a timed-out attempt from any other failure whatever shape the SDK gives the error.
 */
class AttemptWatch implements MiddlewareOptions {
  private readonly deadlines: AttemptDeadline[] = [];
  constructor(readonly signal?: AbortSignal) {}
  add(deadline: AttemptDeadline): void {
    this.deadlines.push(deadline);
  }
  /** Whether the last attempt ran out of time (earlier ones were answered, or it would be the last). */
  timedOut(): boolean {
    return this.deadlines.at(-1)?.timedOut() ?? false;
  }
  clear(): void {
    for (const deadline of this.deadlines) deadline.clear();
  }
}

/**
 * Gives every HTTP attempt a deadline. Its signal stays armed after the headers came, so a body
 * that stops half-way is cut off too (the SDK reads it after the middleware chain returned).
 */
class AttemptTimeoutHandler implements Middleware {
  private next: Middleware | undefined;
  constructor(private readonly timeoutMs: number) {}

  async execute(context: Context): Promise<void> {
    const watch = context.middlewareControl?.getMiddlewareOptions(AttemptWatch) as AttemptWatch | undefined;
    const deadline = attemptDeadline(this.timeoutMs, watch?.signal);
    watch?.add(deadline);
    context.options = { ...context.options, signal: deadline.signal };
    await this.next?.execute(context);
  }

  setNext(next: Middleware): void {
    this.next = next;
  }
}

// --- failures ----------------------------------------------------------------------------------

/** What a call reads, so a failure can say what was incomplete and which permission it needs. */
export interface GraphCallContext {
  concerns: string;
  permission: GraphPermission;
  /** How a 404 reads; by default the read is incomplete (something vanished mid-read). */
  notFound?: { code: EntraReadErrorCode; message: string };
  /**
   * The call carries a delta token from an earlier round: a 400 then means Graph cannot use the
   * token any more (GRAPH_DELTA_EXPIRED), not that our query is wrong.
   */
  deltaToken?: boolean;
}

/** Graph's error codes for a delta token it no longer knows (compared lower-case). */
const DELTA_EXPIRED_CODES = new Set(['syncstatenotfound', 'resyncrequired', 'syncstateinvalid']);

interface Failure {
  status: number;
  graphCode?: string;
  graphMessage?: string;
  retryAfter?: number;
  requestId?: string;
}

/** Maps what Graph (or the network) answered onto an EntraReadError. */
export function failureToError(failure: Failure, context: GraphCallContext): EntraReadError {
  const { status, graphCode, retryAfter, requestId } = failure;
  const said = failure.graphMessage ? ` Graph said: ${graphCode ? `${graphCode}: ` : ''}${failure.graphMessage}` : '';
  const details = { status: status > 0 ? status : undefined, retryAfter, concerns: context.concerns, graphCode, requestId };
  if (status === 410 || DELTA_EXPIRED_CODES.has((graphCode ?? '').toLowerCase()) || (status === 400 && context.deltaToken)) {
    return new EntraReadError('GRAPH_DELTA_EXPIRED',
      `Microsoft Graph no longer accepts the delta token (${status}) for ${context.concerns}; a new initial round is needed.${said}`, details);
  }
  if (status <= 0) {
    const reason = failure.graphMessage ? ` (${failure.graphMessage})` : '';
    return new EntraReadError('GRAPH_UNAVAILABLE', `Could not reach Microsoft Graph while reading ${context.concerns}, even after retrying${reason}.`, details);
  }
  if (status === 401) {
    return new EntraReadError('GRAPH_UNAUTHORIZED',
      `Microsoft Graph refused the token (401) while reading ${context.concerns}; check that the managed identity belongs to this tenant.${said}`, details);
  }
  if (status === 403) {
    return new EntraReadError('GRAPH_FORBIDDEN',
      `Microsoft Graph denied access (403) while reading ${context.concerns}: the managed identity most likely lacks the application permission ${context.permission} (granted with admin consent).${said}`,
      { ...details, permission: context.permission });
  }
  if (status === 404) {
    const notFound = context.notFound ?? { code: 'GRAPH_INCOMPLETE', message: `${context.concerns} was not found (it may have been deleted during the read)` };
    return new EntraReadError(notFound.code, `${notFound.message}.${said}`, details);
  }
  if (status === 429) {
    return new EntraReadError('GRAPH_THROTTLED',
      `Microsoft Graph is still throttling (429) after the retries while reading ${context.concerns}${retryAfter !== undefined ? `; it asks to wait ${retryAfter} s` : ''}.${said}`, details);
  }
  if (status >= 500) {
    return new EntraReadError('GRAPH_UNAVAILABLE', `Microsoft Graph failed (${status}) while reading ${context.concerns}.${said}`, details);
  }
  return new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph answered ${status} while reading ${context.concerns}.${said}`, details);
}

/** GRAPH_TIMEOUT after the last attempt of a call (or of its token request) ran out of time. */
function timeoutError(context: GraphCallContext, what: { call: string } | { token: string }, timeoutMs: number, attempts: number): EntraReadError {
  const within = `within ${formatDuration(timeoutMs)}${attempts > 1 ? ` (${attempts} attempts)` : ''}`;
  const message = 'token' in what
    ? `${what.token} did not answer the token request for Microsoft Graph ${within}, needed to read ${context.concerns}. This is usually temporary.`
    : `Microsoft Graph did not answer ${what.call} ${within} while reading ${context.concerns}. This is usually temporary.`;
  return new EntraReadError('GRAPH_TIMEOUT', message, { concerns: context.concerns, timeoutMs, call: 'token' in what ? 'token request' : what.call });
}

function isCredentialFailure(error: unknown): boolean {
  if (error instanceof GraphCredentialError) return true;
  const name = (error as { code?: unknown; name?: unknown } | null)?.code ?? (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' && CREDENTIAL_ERROR_NAMES.has(name);
}

/** Any error out of the SDK → EntraReadError. */
export function toEntraReadError(error: unknown, context: GraphCallContext): EntraReadError {
  if (error instanceof EntraReadError) return error;
  if (isCredentialFailure(error)) {
    const reason = error instanceof Error ? redactText(error.message) : 'unknown reason';
    return new EntraReadError('GRAPH_AUTH_FAILED',
      `Could not get a token for Microsoft Graph (needed to read ${context.concerns}): ${reason}`, { concerns: context.concerns });
  }
  if (error instanceof GraphError) {
    return failureToError({
      status: error.statusCode,
      graphCode: error.statusCode > 0 ? error.code ?? undefined : undefined,
      graphMessage: error.message,
      retryAfter: parseRetryAfter(error.headers?.get('Retry-After')),
      requestId: error.requestId ?? undefined,
    }, context);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new EntraReadError('GRAPH_INCOMPLETE', `Reading ${context.concerns} failed: ${message}`, { concerns: context.concerns });
}

/** A network failure (no HTTP answer): worth retrying, unlike a credential failure. */
function isNetworkFailure(error: unknown): boolean {
  return error instanceof GraphError && error.statusCode <= 0 && !isCredentialFailure(error);
}

// --- requests ----------------------------------------------------------------------------------

export interface CollectionRequest {
  /** Caller's key for the result. */
  key: string;
  /** Relative to the version, with query, e.g. /groups/{id}/members/microsoft.graph.user?$select=id. */
  path: string;
  context: GraphCallContext;
}

/** One delta round: everything Graph reported, and the link that starts the next round. */
export interface DeltaRound<T> {
  items: T[];
  deltaLink: string;
}

interface BatchResponse {
  id: string;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

const BATCH_LIMIT = 20;
const RETRYABLE = new Set([429, 503, 504]);

function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const found = Object.keys(headers).find((key) => key.toLowerCase() === name.toLowerCase());
  return found === undefined ? undefined : String(headers[found]);
}

export interface GraphRequesterOptions {
  /**
   * Stops every call of this requester when it aborts (e.g. a cycle's deadline): no new attempt or
   * wait starts, the attempt in flight is cut off, and the call rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * Sends reads through one client and counts them. Not shared between concurrent reads: the
 * count belongs to one read.
 */
export class GraphRequester {
  /** HTTP calls made (pages, batches, network retries; the SDK's own 429 retries are not seen here). */
  requests = 0;
  private readonly settings: ClientSettings;
  private readonly signal: AbortSignal | undefined;

  constructor(private readonly client: Client, logger?: Logger, options: GraphRequesterOptions = {}) {
    const known = settingsByClient.get(client);
    this.settings = {
      origin: known?.origin ?? PUBLIC_GRAPH,
      retry: known?.retry ?? DEFAULT_RETRY,
      logger: logger ?? known?.logger ?? silentLogger,
      timeoutMs: known?.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
    this.signal = options.signal;
  }

  /** One GET; network failures and timeouts are retried, HTTP failures become EntraReadErrors. */
  async get<T>(pathOrUrl: string, context: GraphCallContext): Promise<T> {
    return this.send((watch) => this.client.api(pathOrUrl).middlewareOptions([watch]).get() as Promise<T>, context, `GET ${graphCallPath(pathOrUrl)}`);
  }

  /** Every page of a collection, in order. */
  async *pages<T>(pathOrUrl: string, context: GraphCallContext): AsyncGenerator<T[]> {
    let url = pathOrUrl;
    const seen = new Set<string>();
    for (let pageNumber = 1; ; pageNumber++) {
      const concerns = pageNumber > 1 ? `${context.concerns} (page ${pageNumber})` : context.concerns;
      const body = await this.get<Record<string, unknown>>(url, { ...context, concerns });
      yield this.valueOf<T>(body, concerns);
      const next = this.linkOf(body, '@odata.nextLink', concerns);
      if (next === undefined) return;
      if (seen.has(next)) {
        throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph sent the same nextLink twice while reading ${concerns}; stopping rather than looping.`, { concerns });
      }
      seen.add(next);
      url = next;
    }
  }

  /**
   * Reads many collections with $batch (20 per call) and follows each one's nextLinks. Items
   * throttled inside a batch are sent again after their Retry-After. `consume`, when given, sees
   * each page as it arrives (in request order, page by page); a page it returns true for is not
   * kept, so a caller that turns pages into its own records never holds a collection twice. A read
   * that fails throws as ever: what was consumed is then the caller's to drop.
   */
  async collections<T>(requests: CollectionRequest[], consume?: (key: string, page: T[]) => boolean): Promise<Map<string, T[]>> {
    const rounds = await this.readCollections<T>(requests, false, consume);
    return new Map([...rounds].map(([key, round]) => [key, round.items]));
  }

  /** One delta round: every page from `pathOrUrl` on, and the deltaLink of the last page. */
  async deltaRound<T>(pathOrUrl: string, context: GraphCallContext): Promise<DeltaRound<T>> {
    const body = await this.get<Record<string, unknown>>(pathOrUrl, context);
    return (await this.follow<T>(body, context, true)) as DeltaRound<T>;
  }

  /** Several delta rounds with $batch (20 per call), each followed to its deltaLink. */
  async deltaRounds<T>(requests: CollectionRequest[]): Promise<Map<string, DeltaRound<T>>> {
    return (await this.readCollections<T>(requests, true)) as Map<string, DeltaRound<T>>;
  }

  /**
   * `link` as a path relative to the API version (for $batch), or undefined when it does not
   * point at this client's Graph origin and version — a link we must not send a token to.
   */
  relativeGraphPath(link: string): string | undefined {
    let url: URL;
    try {
      url = new URL(link);
    } catch {
      return undefined;
    }
    if (url.origin !== this.settings.origin || !url.pathname.startsWith(`/${API_VERSION}/`)) return undefined;
    return `${url.pathname.slice(API_VERSION.length + 1)}${url.search}`;
  }

  private async readCollections<T>(requests: CollectionRequest[], delta: boolean, consume?: (key: string, page: T[]) => boolean): Promise<Map<string, { items: T[]; deltaLink?: string }>> {
    const results = new Map<string, { items: T[]; deltaLink?: string }>();
    for (let start = 0; start < requests.length; start += BATCH_LIMIT) {
      const chunk = requests.slice(start, start + BATCH_LIMIT);
      const responses = await this.batch(chunk);
      for (const request of chunk) {
        const response = responses.get(request.key) as BatchResponse;
        if (response.status < 200 || response.status > 299) {
          const error = (response.body as { error?: { code?: string; message?: string } } | undefined)?.error;
          throw failureToError({
            status: response.status,
            graphCode: error?.code,
            graphMessage: error?.message,
            retryAfter: parseRetryAfter(header(response.headers, 'Retry-After')),
            requestId: header(response.headers, 'request-id'),
          }, request.context);
        }
        const sink = consume && ((page: T[]) => consume(request.key, page));
        results.set(request.key, await this.follow<T>(response.body as Record<string, unknown> | undefined, request.context, delta, sink));
      }
    }
    return results;
  }

  /** The items of `body` and of every page after it; with `delta`, the round's deltaLink too. */
  private async follow<T>(first: Record<string, unknown> | undefined, context: GraphCallContext, delta: boolean, sink?: (page: T[]) => boolean): Promise<{ items: T[]; deltaLink?: string }> {
    const items: T[] = [];
    const seen = new Set<string>();
    let body = first;
    for (let pageNumber = 1; ; pageNumber++) {
      const concerns = pageNumber > 1 ? `${context.concerns} (page ${pageNumber})` : context.concerns;
      const page = this.valueOf<T>(body, concerns);
      if (!sink?.(page)) for (const item of page) items.push(item);
      const next = this.linkOf(body, '@odata.nextLink', concerns);
      if (next === undefined) {
        if (!delta) return { items };
        const deltaLink = this.linkOf(body, '@odata.deltaLink', concerns);
        if (deltaLink === undefined) {
          throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph ended ${concerns} with neither a nextLink nor a deltaLink; the round is incomplete.`, { concerns });
        }
        return { items, deltaLink };
      }
      if (seen.has(next)) {
        throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph sent the same nextLink twice while reading ${concerns}; stopping rather than looping.`, { concerns });
      }
      seen.add(next);
      body = await this.get<Record<string, unknown>>(next, { ...context, concerns: `${context.concerns} (page ${pageNumber + 1})` });
    }
  }

  private async batch(requests: CollectionRequest[]): Promise<Map<string, BatchResponse>> {
    const { retry, logger } = this.settings;
    const done = new Map<string, BatchResponse>();
    let pending = requests;
    const batchContext: GraphCallContext = {
      concerns: `a $batch of ${requests.length} reads (${requests[0]?.context.concerns ?? ''}${requests.length > 1 ? ', …' : ''})`,
      permission: requests[0]?.context.permission ?? 'User.Read.All',
    };
    for (let attempt = 0; ; attempt++) {
      const payload = { requests: pending.map((r) => ({ id: r.key, method: 'GET', url: r.path })) };
      const body = await this.send((watch) => this.client.api('/$batch').middlewareOptions([watch]).post(payload) as Promise<unknown>, batchContext, `POST ${graphCallPath('/$batch')}`);
      const responses = (body as { responses?: unknown } | undefined)?.responses;
      if (!Array.isArray(responses)) {
        throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph answered ${batchContext.concerns} without responses.`, { concerns: batchContext.concerns });
      }
      const byId = new Map<string, BatchResponse>();
      for (const response of responses as BatchResponse[]) {
        if (response && typeof response.id === 'string') byId.set(response.id, response);
      }
      const again: CollectionRequest[] = [];
      let wait: number | undefined;
      for (const request of pending) {
        const response = byId.get(request.key);
        if (!response || typeof response.status !== 'number') {
          throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph's $batch answer lacks the response for ${request.context.concerns}.`, { concerns: request.context.concerns });
        }
        if (RETRYABLE.has(response.status) && attempt < retry.maxRetries) {
          const retryAfter = parseRetryAfter(header(response.headers, 'Retry-After'));
          if (retryAfter !== undefined && retryAfter > retry.maxRetryAfterSeconds) {
            done.set(request.key, response);
            continue;
          }
          again.push(request);
          wait = Math.max(wait ?? 0, retryAfter ?? retry.delaySeconds * 2 ** attempt);
        } else {
          done.set(request.key, response);
        }
      }
      if (again.length === 0) return done;
      logger.warn('Microsoft Graph throttled part of a $batch; sending those reads again', {
        items: again.length,
        waitSeconds: wait,
        retry: attempt + 1,
        maxRetries: retry.maxRetries,
      });
      await this.wait((wait ?? 0) * 1000);
      pending = again;
    }
  }

  /**
   * One call (`label` is its method and path, for messages), tried again after a network failure
   * (up to maxRetries) or a timeout (up to TIMEOUT_RETRIES), with the same back-off.
   */
  private async send<T>(call: (watch: AttemptWatch) => Promise<T>, context: GraphCallContext, label: string): Promise<T> {
    const { retry, logger, timeoutMs } = this.settings;
    let timeouts = 0;
    for (let attempt = 0; ; attempt++) {
      if (this.signal?.aborted) throw abortReason(this.signal);
      this.requests++;
      const watch = new AttemptWatch(this.signal);
      try {
        return await call(watch);
      } catch (error) {
        if (this.signal?.aborted) throw abortReason(this.signal);
        const tokenTimeout = error instanceof GraphTokenTimeoutError ? error : undefined;
        const timedOut = tokenTimeout !== undefined || watch.timedOut();
        if (timedOut) timeouts++;
        const retryable = timedOut ? timeouts <= TIMEOUT_RETRIES : isNetworkFailure(error);
        if (retryable && attempt < retry.maxRetries) {
          const waitMs = Math.round(retry.delaySeconds * 1000 * 2 ** attempt);
          logger.warn(timedOut ? 'Microsoft Graph did not answer in time; retrying' : 'Could not reach Microsoft Graph; retrying', {
            call: tokenTimeout ? 'token request' : label,
            concerns: context.concerns,
            reason: timedOut ? `no answer within ${formatDuration(timeoutMs)}` : error instanceof Error ? error.message : String(error),
            retry: attempt + 1,
            maxRetries: timedOut ? Math.min(TIMEOUT_RETRIES, retry.maxRetries) : retry.maxRetries,
            waitMs,
          });
          await this.wait(waitMs);
          continue;
        }
        if (timedOut) throw timeoutError(context, tokenTimeout ? { token: tokenTimeout.target } : { call: label }, timeoutMs, attempt + 1);
        throw toEntraReadError(error, context);
      } finally {
        watch.clear();
      }
    }
  }

  private async wait(ms: number): Promise<void> {
    await sleep(ms, this.signal);
  }

  private valueOf<T>(body: Record<string, unknown> | undefined, concerns: string): T[] {
    const value = body?.value;
    if (!Array.isArray(value)) {
      throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph answered ${concerns} without a list of values.`, { concerns });
    }
    return value as T[];
  }

  /** The nextLink (deltaLink) to follow, or undefined when there is none; throws for one we must not follow. */
  private linkOf(body: Record<string, unknown> | undefined, key: '@odata.nextLink' | '@odata.deltaLink', concerns: string): string | undefined {
    const kind = key === '@odata.nextLink' ? 'nextLink' : 'deltaLink';
    const next = body?.[key];
    if (next === undefined || next === null) return undefined;
    let url: URL | undefined;
    try {
      url = typeof next === 'string' ? new URL(next) : undefined;
    } catch {
      url = undefined;
    }
    if (!url) {
      throw new EntraReadError('GRAPH_INCOMPLETE', `Microsoft Graph sent an unreadable ${kind} while reading ${concerns}; the list is incomplete.`, { concerns });
    }
    if (url.origin !== this.settings.origin || !url.pathname.startsWith(`/${API_VERSION}/`)) {
      // Following it would send our token elsewhere (or read another API version).
      throw new EntraReadError('GRAPH_INCOMPLETE',
        `Microsoft Graph sent a ${kind} to ${url.origin}${url.pathname.split('/').slice(0, 2).join('/')} while reading ${concerns}, not to ${this.settings.origin}/${API_VERSION}; refusing to follow it, so the list is incomplete.`,
        { concerns });
    }
    return next as string;
  }
}
