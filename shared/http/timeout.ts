/**
 * Per-attempt deadlines for every outbound call, and the one error that says a call ran out of
 * time.
 *
 * Invariants:
 * - An attempt made under `attemptDeadline(ms, caller)` is aborted `ms` after it started at the
 *   latest, or as soon as the caller's signal aborts, whichever comes first; `timedOut()` tells the
 *   two apart, so a caller's own deadline is never reported as the far side timing out.
 * - `withTokenTimeout` returns (or throws) within its timeout whatever the credential underneath
 *   does: @azure/identity's managed-identity credential ignores GetTokenOptions.abortSignal and
 *   requestOptions.timeout (it calls MSAL with the resource only), so a hung token endpoint is
 *   raced, and `timeoutHttpClient` (passed to the credential as its httpClient) aborts the hung
 *   request underneath so its socket does not stay open.
 * - A CallTimeoutError names the target, the call (method and path, never a query string) and the
 *   timeout; nothing else, so it never carries a token or a user's name.
 */
import { DefaultAzureCredential, type AccessToken, type GetTokenOptions, type TokenCredential } from '@azure/identity';
import { createDefaultHttpClient, type HttpClient } from '@azure/core-rest-pipeline';

/** "30 s", or "250 ms" below a second: how a timeout reads in a message. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(1))} s`;
}

/** A call that got no (complete) answer within its timeout. */
export class CallTimeoutError extends Error {
  readonly code = 'CALL_TIMEOUT';
  constructor(
    /** Who did not answer, e.g. "Table Storage at sttvsync.table.core.windows.net". */
    readonly target: string,
    /** Method and path without the query, e.g. "GET /tvsyncLinks()". */
    readonly call: string,
    readonly timeoutMs: number,
  ) {
    super(`${target} did not answer ${call} within ${formatDuration(timeoutMs)}`);
    this.name = 'CallTimeoutError';
  }
}

export function isCallTimeout(error: unknown): error is CallTimeoutError {
  return error instanceof CallTimeoutError;
}

/** Anything with the shape of an AbortSignal (the Azure SDK's AbortSignalLike included). */
export interface SignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface AttemptDeadline {
  /** Aborted when the timeout passes or the caller's signal aborts. */
  readonly signal: AbortSignal;
  /** True once the timeout (not the caller) aborted the attempt. */
  timedOut(): boolean;
  /** Stops the timer and lets go of the caller's signal; call it when the attempt is over. */
  clear(): void;
}

/** A deadline for one attempt: `timeoutMs` from now, or earlier when `caller` aborts. */
export function attemptDeadline(timeoutMs: number, caller?: SignalLike | null): AttemptDeadline {
  const controller = new AbortController();
  let fired = false;
  const onCallerAbort = () => controller.abort(caller?.reason);
  const timer = setTimeout(() => {
    fired = true;
    controller.abort(new DOMException(`no answer within ${formatDuration(timeoutMs)}`, 'TimeoutError'));
  }, timeoutMs);
  // A deadline never keeps the process alive on its own.
  timer.unref?.();
  if (caller?.aborted) onCallerAbort();
  else caller?.addEventListener('abort', onCallerAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => fired,
    clear() {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
    },
  };
}

/** What a caller's signal was aborted with, as an Error to throw. */
export function abortReason(signal: SignalLike): Error {
  const reason = signal.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error(typeof reason === 'string' ? reason : 'the call was cancelled'), { name: 'AbortError', code: 'ABORTED' });
}

/** Settles with `promise`, or rejects as soon as `signal` aborts (the promise is left to settle unseen). */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Who answers token requests, as messages name it. */
export const TOKEN_ENDPOINT = "The managed identity's token endpoint";

/**
 * `credential`, but every getToken settles within `timeoutMs` (a CallTimeoutError naming the
 * managed identity) and honours the caller's abortSignal. The credential also gets the
 * signal and the timeout, for the credentials that honour them.
 */
export function withTokenTimeout(credential: TokenCredential, timeoutMs: number, target = TOKEN_ENDPOINT): TokenCredential {
  return {
    async getToken(scopes: string | string[], options: GetTokenOptions = {}): Promise<AccessToken | null> {
      const deadline = attemptDeadline(timeoutMs, options.abortSignal);
      try {
        const request = credential.getToken(scopes, {
          ...options,
          abortSignal: deadline.signal,
          requestOptions: { ...options.requestOptions, timeout: options.requestOptions?.timeout ?? timeoutMs },
        });
        return await raceAbort(request, deadline.signal);
      } catch (error) {
        if (deadline.timedOut()) throw new CallTimeoutError(target, `the token request for ${scopeName(scopes)}`, timeoutMs);
        throw error;
      } finally {
        deadline.clear();
      }
    },
  };
}

/** "https://graph.microsoft.com" for a scope like https://graph.microsoft.com/.default. */
function scopeName(scopes: string | string[]): string {
  const scope = Array.isArray(scopes) ? (scopes[0] ?? '') : scopes;
  return scope.replace(/\/\.default$/, '');
}

/**
 * The Azure SDK's own HTTP client, with a deadline on every request (headers and body): for
 * credentials, whose options take an httpClient but no per-request timeout.
 */
export function timeoutHttpClient(timeoutMs: number, target: string): HttpClient {
  const inner = createDefaultHttpClient();
  return {
    async sendRequest(request) {
      const caller = request.abortSignal;
      const deadline = attemptDeadline(timeoutMs, caller);
      request.abortSignal = deadline.signal;
      try {
        return await inner.sendRequest(request);
      } catch (error) {
        if (deadline.timedOut()) throw new CallTimeoutError(target, `${request.method} ${new URL(request.url).pathname}`, timeoutMs);
        throw error;
      } finally {
        deadline.clear();
        request.abortSignal = caller;
      }
    },
  };
}

/**
 * DefaultAzureCredential (managed identity in Azure, client secret or Azure CLI elsewhere) whose
 * every HTTP request is cut off after `timeoutMs`. Callers still wrap it in withTokenTimeout:
 * MSAL keeps the first managed-identity HTTP client of a process for good, and a credential that
 * runs a tool (Azure CLI) makes no HTTP request at all.
 */
export function azureCredential(timeoutMs: number, managedIdentityClientId?: string): TokenCredential {
  return new DefaultAzureCredential({
    ...(managedIdentityClientId ? { managedIdentityClientId } : {}),
    httpClient: timeoutHttpClient(timeoutMs, TOKEN_ENDPOINT),
  });
}
