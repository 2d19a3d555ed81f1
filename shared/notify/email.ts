/**
 * Failure emails through Azure Communication Services (@azure/communication-email), signed with
 * the access key from ACS_EMAIL_CONNECTION_STRING or authorised by the managed identity against
 * ACS_EMAIL_ENDPOINT.
 *
 * Invariants:
 * - `send` never throws. Every outcome is a value; a failure is logged once with a `code` the
 *   caller can act on, and the caller decides when to try again. An email must never fail a cycle.
 * - The access key never leaves this module: it is registered as a secret, our messages never
 *   quote the connection string (the SDK's own parse error does, so we parse it ourselves), and
 *   every message we return or log goes through `redactText`.
 * - A send takes at most `timeoutMs` in all (token, SDK retries, Retry-After waits and status
 *   polls): one abort signal covers the whole send and every request in it, so a request that
 *   never gets an answer is cut off (its socket closed), not left behind.
 * - Once ACS has accepted a message it counts as sent (`ok: true`, `status: 'Running'` if the
 *   delivery was not confirmed in time): reporting it as failed would make the caller send it again.
 */
import { randomUUID } from 'node:crypto';
import { EmailClient, type EmailClientOptions, type EmailMessage } from '@azure/communication-email';
import type { TokenCredential } from '@azure/identity';
import { redactText, registerSecret, type Logger } from '../log';
import { isLoopbackHost } from '../net';
import { formatDuration, isCallTimeout } from '../http/timeout';
import { plainTextSafe } from './escape';
import { renderNotification, type Notification } from './templates';

export interface EmailSettings {
  /** NOTIFY_EMAIL_TO, already split into addresses. */
  to: string[];
  /** ACS_EMAIL_SENDER: an address on a domain connected to the ACS resource. */
  sender: string;
  /** ACS_EMAIL_CONNECTION_STRING (`endpoint=…;accesskey=…`); used when set. */
  connectionString?: string;
  /** ACS_EMAIL_ENDPOINT, used with `credential` (the managed identity) when there is no connection string. */
  endpoint?: string;
  credential?: TokenCredential;
  /** Link to the status page, put in every email whose notification does not carry one. */
  statusUrl?: string;
}

export interface EmailNotifierOptions {
  /** Upper bound on one `send`, everything included (default 30 s). */
  timeoutMs?: number;
  /** Delay between status polls while ACS reports Running (default 2 s, the SDK's). */
  pollIntervalMs?: number;
  /** The SDK's retry of 5xx, 408 and 429-with-Retry-After (default: its own, 3 retries from 1 s). */
  retry?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
}

export type EmailErrorCode =
  /** Settings incomplete or malformed (recipients, sender, connection string, endpoint). */
  | 'EMAIL_NOT_CONFIGURED'
  /** Plain http to a host that is not loopback, or the managed identity over http. */
  | 'EMAIL_INSECURE_ENDPOINT'
  /** ACS refused the access key or the identity's token (401/403). */
  | 'EMAIL_UNAUTHORIZED'
  /** No token for the managed identity. */
  | 'EMAIL_CREDENTIAL_UNAVAILABLE'
  /** 429 after the SDK's retries, or a Retry-After longer than the time left. */
  | 'EMAIL_THROTTLED'
  /** 5xx after the SDK's retries. */
  | 'EMAIL_SERVICE_UNAVAILABLE'
  /** Another 4xx: ACS will not take this message as it is (e.g. an unverified sender domain). */
  | 'EMAIL_REJECTED'
  /** ACS accepted the message, then reported the delivery Failed or Canceled. */
  | 'EMAIL_DELIVERY_FAILED'
  /** Could not reach the endpoint. */
  | 'EMAIL_UNREACHABLE'
  /** Nothing was accepted within `timeoutMs`. */
  | 'EMAIL_TIMEOUT'
  | 'EMAIL_SEND_FAILED';

export type EmailSendResult =
  | { ok: true; id: string; status: 'Succeeded' | 'Running' }
  | { ok: false; code: EmailErrorCode; message: string; status?: number; retryAfterSeconds?: number };

type EmailFailure = Extract<EmailSendResult, { ok: false }>;

const DEFAULT_TIMEOUT_MS = 30_000;
const ADDRESS = /^[^@\s<>"]+@[^@\s<>"]+$/;

interface Target {
  endpoint: string;
  credential: { key: string } | TokenCredential;
  allowInsecureConnection: boolean;
  via: 'access key' | 'managed identity';
}

/** What the pipeline saw, per send, for the error a caller gets (the SDK's own errors lose some of it). */
interface Observed {
  status?: number;
  retryAfterSeconds?: number;
  errorCode?: string;
  acceptedId?: string;
  operationStatus?: string;
  operationError?: string;
  /** The request last sent ("POST /emails:send"), for a timeout's message. */
  lastCall?: string;
}

export class EmailNotifier {
  // The access key lives only in this #private field, which JSON.stringify and util.inspect do not show.
  readonly #target: Target | EmailFailure;
  private readonly to: string[];
  private readonly sender: string;
  private readonly statusUrl: string | undefined;
  private readonly options: Required<Pick<EmailNotifierOptions, 'timeoutMs'>> & EmailNotifierOptions;

  constructor(settings: EmailSettings, private readonly logger: Logger, options: EmailNotifierOptions = {}) {
    this.options = { ...options, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS };
    this.to = (settings.to ?? []).map((a) => a.trim()).filter((a) => a !== '');
    this.sender = (settings.sender ?? '').trim();
    this.statusUrl = settings.statusUrl;
    this.#target = resolveTarget(settings, this.to);
  }

  async send(message: Notification): Promise<EmailSendResult> {
    const kind = typeof message?.kind === 'string' ? message.kind : 'unknown';
    let result: EmailSendResult;
    try {
      const target = this.#target;
      result = 'ok' in target ? target : await this.deliver(message, target);
    } catch (error) {
      // Only our own bugs land here (deliver classifies what the SDK throws); still a value, never a throw.
      result = failure('EMAIL_SEND_FAILED', `Could not send the email: ${describe(error)}`);
    }
    if (result.ok) {
      const fields = { kind, id: result.id, recipients: this.to.length };
      if (result.status === 'Succeeded') this.logger.info('notification email sent', fields);
      else this.logger.warn('notification email accepted by ACS; delivery not confirmed in time', fields);
    } else {
      this.logger.error('notification email not sent', { kind, code: result.code, status: result.status, retryAfterSeconds: result.retryAfterSeconds, error: result.message });
    }
    return result;
  }

  private async deliver(notification: Notification, target: Target): Promise<EmailSendResult> {
    const rendered = renderNotification({ ...notification, statusUrl: notification.statusUrl ?? this.statusUrl });
    const observed: Observed = {};
    const client = new EmailClient(target.endpoint, target.credential, clientOptions(target, this.options, observed));
    const email: EmailMessage = {
      senderAddress: this.sender,
      content: rendered,
      recipients: { to: this.to.map((address) => ({ address })) },
      headers: { 'x-tvsync-notification': notification.kind },
      // Click tracking would rewrite the status link; these mails need no engagement data.
      disableUserEngagementTracking: true,
    };

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.options.timeoutMs);
    try {
      // One Operation-Id for the SDK's retries of this send, so ACS can tell a resend from a new email.
      const poller = await client.beginSend(email, {
        operationId: randomUUID(),
        abortSignal: abort.signal,
        ...(this.options.pollIntervalMs === undefined ? {} : { updateIntervalInMs: this.options.pollIntervalMs }),
      });
      const done = await poller.pollUntilDone({ abortSignal: abort.signal });
      if (done.status === 'Succeeded') return { ok: true, id: done.id, status: 'Succeeded' };
      return failure('EMAIL_DELIVERY_FAILED', `ACS reported the email as ${done.status}${done.error?.code ? ` (${done.error.code})` : ''}.`);
    } catch (error) {
      return classify(error, observed, target, abort.signal.aborted, this.options.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }
}

function failure(code: EmailErrorCode, message: string, extra: { status?: number; retryAfterSeconds?: number } = {}): EmailFailure {
  const result: EmailFailure = { ok: false, code, message: redactText(message) };
  if (extra.status !== undefined) result.status = extra.status;
  if (extra.retryAfterSeconds !== undefined) result.retryAfterSeconds = extra.retryAfterSeconds;
  return result;
}

/** Validates the settings once; the result is either where to send or the failure every send reports. */
function resolveTarget(settings: EmailSettings, to: string[]): Target | EmailFailure {
  if (to.length === 0) return failure('EMAIL_NOT_CONFIGURED', 'NOTIFY_EMAIL_TO lists no recipient.');
  const badRecipient = to.find((a) => !ADDRESS.test(a));
  if (badRecipient !== undefined) return failure('EMAIL_NOT_CONFIGURED', `NOTIFY_EMAIL_TO has an entry that is not an email address: "${plainTextSafe(badRecipient)}".`);
  if (!settings.sender || !ADDRESS.test(settings.sender.trim())) return failure('EMAIL_NOT_CONFIGURED', 'ACS_EMAIL_SENDER must be an email address on a domain connected to the Communication Services resource.');

  if (settings.connectionString) {
    const parts = parseConnectionString(settings.connectionString);
    if (parts.accessKey) registerSecret(parts.accessKey);
    if (!parts.endpoint || !parts.accessKey) {
      return failure('EMAIL_NOT_CONFIGURED', 'ACS_EMAIL_CONNECTION_STRING must have the form endpoint=https://<resource>.communication.azure.com/;accesskey=<key>.');
    }
    const checked = checkEndpoint(parts.endpoint, 'ACS_EMAIL_CONNECTION_STRING', false);
    if ('ok' in checked) return checked;
    return { endpoint: checked.endpoint, credential: { key: parts.accessKey }, allowInsecureConnection: checked.insecure, via: 'access key' };
  }
  if (settings.endpoint) {
    if (!settings.credential) return failure('EMAIL_NOT_CONFIGURED', 'ACS_EMAIL_ENDPOINT is set but no managed identity credential was given.');
    const checked = checkEndpoint(settings.endpoint, 'ACS_EMAIL_ENDPOINT', true);
    if ('ok' in checked) return checked;
    return { endpoint: checked.endpoint, credential: settings.credential, allowInsecureConnection: false, via: 'managed identity' };
  }
  return failure('EMAIL_NOT_CONFIGURED', 'Set ACS_EMAIL_CONNECTION_STRING, or ACS_EMAIL_ENDPOINT to use the managed identity.');
}

/** `endpoint=…;accesskey=…`, keys case-insensitive; the key keeps any '=' padding. */
function parseConnectionString(value: string): { endpoint?: string; accessKey?: string } {
  const out: { endpoint?: string; accessKey?: string } = {};
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const v = part.slice(eq + 1).trim();
    if (name === 'endpoint' && v) out.endpoint = v;
    if (name === 'accesskey' && v) out.accessKey = v;
  }
  return out;
}

function checkEndpoint(raw: string, setting: string, bearer: boolean): { endpoint: string; insecure: boolean } | EmailFailure {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return failure('EMAIL_NOT_CONFIGURED', `${setting}: the endpoint is not a URL.`);
  }
  // The SDK takes the resource's root only; a path would be silently mis-signed or rejected.
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    return failure('EMAIL_NOT_CONFIGURED', `${setting}: the endpoint must be the resource root, like https://<resource>.communication.azure.com/ (got ${url.origin}${url.pathname}).`);
  }
  if (url.protocol === 'https:') return { endpoint: url.origin, insecure: false };
  if (url.protocol !== 'http:' || !isLoopbackHost(url.hostname)) {
    return failure('EMAIL_INSECURE_ENDPOINT', `${setting} must use https (plain http is allowed only to loopback hosts): ${url.origin}`);
  }
  if (bearer) {
    return failure('EMAIL_INSECURE_ENDPOINT', `${setting} must use https to send with the managed identity: the SDK never sends a bearer token over http (${url.origin}).`);
  }
  return { endpoint: url.origin, insecure: true };
}

type Policy = NonNullable<EmailClientOptions['additionalPolicies']>[number]['policy'];

function clientOptions(target: Target, options: EmailNotifierOptions, observed: Observed): EmailClientOptions {
  // Runs once per attempt (after the SDK's retry policy), so it sees every status, not only the last one.
  const observe: Policy = {
    name: 'tvsyncObserveEmailResponses',
    async sendRequest(request, next) {
      observed.lastCall = `${request.method} ${new URL(request.url).pathname}`;
      const response = await next(request);
      observed.status = response.status;
      observed.retryAfterSeconds = retryAfterSeconds(response.headers.get('retry-after'));
      observed.errorCode = response.headers.get('x-ms-error-code') ?? undefined;
      const body = parseJson(response.bodyAsText);
      if (request.method === 'POST' && response.status >= 200 && response.status < 300 && typeof body?.id === 'string') {
        observed.acceptedId = body.id;
      }
      if (request.method === 'GET' && response.status === 200 && typeof body?.status === 'string') {
        observed.operationStatus = body.status;
        const error = body.error as { code?: unknown } | undefined;
        observed.operationError = typeof error?.code === 'string' ? error.code : undefined;
      }
      return response;
    },
  };
  return {
    allowInsecureConnection: target.allowInsecureConnection,
    additionalPolicies: [{ policy: observe, position: 'perRetry' }],
    ...(options.retry ? { retryOptions: options.retry } : {}),
  };
}

function classify(error: unknown, observed: Observed, target: Target, timedOut: boolean, timeoutMs: number): EmailSendResult {
  const status = observed.status;
  const retryAfter = observed.retryAfterSeconds;
  const acs = `${status ?? ''}${observed.errorCode ? ` ${observed.errorCode}` : ''}`.trim();

  const operation = observed.operationStatus?.toLowerCase();
  if (operation === 'failed' || operation === 'canceled' || operation === 'cancelled') {
    return failure('EMAIL_DELIVERY_FAILED', `ACS accepted the email, then reported it ${observed.operationStatus}${observed.operationError ? ` (${observed.operationError})` : ''}.`);
  }
  if (observed.acceptedId) {
    // Accepted, but the status poll failed or ran out of time: the message is queued at ACS.
    return { ok: true, id: observed.acceptedId, status: 'Running' };
  }

  const name = (error as { name?: unknown } | null)?.name;
  if (isCallTimeout(error)) return failure('EMAIL_TIMEOUT', `No email sent: ${error.message}.`);
  if (name === 'CredentialUnavailableError' || name === 'AuthenticationError' || name === 'AggregateAuthenticationError') {
    return failure('EMAIL_CREDENTIAL_UNAVAILABLE', `No token for ACS Email from the managed identity: ${describe(error)}`);
  }
  if (status === 401 || status === 403) {
    const hint = target.via === 'access key'
      ? 'check the access key in ACS_EMAIL_CONNECTION_STRING (it may have been regenerated)'
      : 'check that the managed identity has a role on the Communication Services resource that allows sending email';
    return failure('EMAIL_UNAUTHORIZED', `ACS Email refused the ${target.via} (HTTP ${acs}): ${hint}.`, { status });
  }
  if (status === 429) {
    return failure('EMAIL_THROTTLED', `ACS Email is throttling sends (HTTP 429)${retryAfter !== undefined ? `; retry after ${retryAfter} s` : ''}.`, { status, retryAfterSeconds: retryAfter });
  }
  if (status !== undefined && status >= 500) {
    return failure('EMAIL_SERVICE_UNAVAILABLE', `ACS Email failed with HTTP ${acs}${timedOut ? ` and did not recover within ${timeoutMs} ms` : ' after the SDK\'s retries'}.`, { status, retryAfterSeconds: retryAfter });
  }
  if (timedOut) {
    return failure('EMAIL_TIMEOUT', `ACS Email did not accept the email within ${formatDuration(timeoutMs)}${observed.lastCall ? ` (no answer to ${observed.lastCall})` : ''}.`);
  }
  if (status !== undefined && status >= 400) {
    return failure('EMAIL_REJECTED', `ACS Email rejected the email (HTTP ${acs}): ${describe(error)}`, { status });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (name === 'RestError' && status === undefined) {
    return failure('EMAIL_UNREACHABLE', `Could not reach ACS Email at ${target.endpoint}${typeof code === 'string' ? ` (${code})` : ''}: ${describe(error)}`);
  }
  return failure('EMAIL_SEND_FAILED', `Could not send the email: ${describe(error)}`, status === undefined ? {} : { status });
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const oneLine = plainTextSafe(redactText(text)).replace(/\s+/g, ' ').trim();
  return oneLine.length > 300 ? `${oneLine.slice(0, 299)}…` : oneLine;
}

function retryAfterSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, Math.ceil((date - Date.now()) / 1000)) : undefined;
}

function parseJson(text: string | null | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
