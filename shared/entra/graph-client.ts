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
  type ShouldRetry,
} from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/identity';
import { redactText, registerSecret, silentLogger, type Logger } from '../log';
import { InsecureUrlError } from '../net';
import { parseRetryAfter, sleep } from '../http/retry';
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
}

interface ClientSettings {
  origin: string;
  retry: Required<GraphRetryOptions>;
  logger: Logger;
}

const DEFAULT_RETRY: Required<GraphRetryOptions> = { maxRetries: 5, delaySeconds: 2, maxRetryAfterSeconds: 120 };
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

function guardCredential(credential: TokenCredential): TokenCredential {
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      let token: AccessToken | null;
      try {
        token = await credential.getToken(scopes, options);
      } catch (error) {
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

  const authProvider = new TokenCredentialAuthenticationProvider(guardCredential(options.credential), {
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
      path: safePath(url),
    });
    return true;
  };
  const middleware = [
    new AuthenticationHandler(authProvider),
    new RetryHandler(new RetryHandlerOptions(retry.delaySeconds, retry.maxRetries, shouldRetry)),
    new RedirectHandler(new RedirectHandlerOptions()),
    new TelemetryHandler(),
    new HTTPMessageHandler(),
  ];
  const client = Client.initWithMiddleware({
    baseUrl: base.origin,
    defaultVersion: API_VERSION,
    middleware,
    // Compared with the URL's hostname, port stripped (GraphRequestUtil.isValidEndpoint).
    customHosts: base.hostname === 'graph.microsoft.com' ? undefined : new Set([base.hostname]),
  });
  settingsByClient.set(client, { origin: base.origin, retry, logger });
  return client;
}

/** Path of a Graph URL without its query (skiptokens and filters stay out of logs). */
function safePath(url: string): string {
  try {
    return new URL(url, PUBLIC_GRAPH).pathname;
  } catch {
    return '';
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

/**
 * Sends reads through one client and counts them. Not shared between concurrent reads: the
 * count belongs to one read.
 */
export class GraphRequester {
  /** HTTP calls made (pages, batches, network retries; the SDK's own 429 retries are not seen here). */
  requests = 0;
  private readonly settings: ClientSettings;

  constructor(private readonly client: Client, logger?: Logger) {
    const known = settingsByClient.get(client);
    this.settings = {
      origin: known?.origin ?? PUBLIC_GRAPH,
      retry: known?.retry ?? DEFAULT_RETRY,
      logger: logger ?? known?.logger ?? silentLogger,
    };
  }

  /** One GET; network failures are retried, HTTP failures become EntraReadErrors. */
  async get<T>(pathOrUrl: string, context: GraphCallContext): Promise<T> {
    return this.send(() => this.client.api(pathOrUrl).get() as Promise<T>, context);
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
   * throttled inside a batch are sent again after their Retry-After.
   */
  async collections<T>(requests: CollectionRequest[]): Promise<Map<string, T[]>> {
    const rounds = await this.readCollections<T>(requests, false);
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

  private async readCollections<T>(requests: CollectionRequest[], delta: boolean): Promise<Map<string, { items: T[]; deltaLink?: string }>> {
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
        results.set(request.key, await this.follow<T>(response.body as Record<string, unknown> | undefined, request.context, delta));
      }
    }
    return results;
  }

  /** The items of `body` and of every page after it; with `delta`, the round's deltaLink too. */
  private async follow<T>(first: Record<string, unknown> | undefined, context: GraphCallContext, delta: boolean): Promise<{ items: T[]; deltaLink?: string }> {
    const items: T[] = [];
    const seen = new Set<string>();
    let body = first;
    for (let pageNumber = 1; ; pageNumber++) {
      const concerns = pageNumber > 1 ? `${context.concerns} (page ${pageNumber})` : context.concerns;
      items.push(...this.valueOf<T>(body, concerns));
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
      const body = await this.send(() => this.client.api('/$batch').post(payload) as Promise<unknown>, batchContext);
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
      await sleep((wait ?? 0) * 1000);
      pending = again;
    }
  }

  private async send<T>(call: () => Promise<T>, context: GraphCallContext): Promise<T> {
    const { retry, logger } = this.settings;
    for (let attempt = 0; ; attempt++) {
      this.requests++;
      try {
        return await call();
      } catch (error) {
        if (isNetworkFailure(error) && attempt < retry.maxRetries) {
          const waitMs = Math.round(retry.delaySeconds * 1000 * 2 ** attempt);
          logger.warn('Could not reach Microsoft Graph; retrying', {
            concerns: context.concerns,
            reason: error instanceof Error ? error.message : String(error),
            retry: attempt + 1,
            maxRetries: retry.maxRetries,
            waitMs,
          });
          await sleep(waitMs);
          continue;
        }
        throw toEntraReadError(error, context);
      }
    }
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
