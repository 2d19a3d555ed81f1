/**
 * Azure Communication Services Email emulator: the two calls `EmailClient.beginSend()` and
 * `pollUntilDone()` of @azure/communication-email make (api-version 2025-09-01 in SDK 1.1.0):
 *
 *   POST /emails:send?api-version=…            body: EmailMessage (senderAddress, content, recipients, headers)
 *     → 202 { id, status: "Running" }, Operation-Location: {endpoint}/emails/operations/{id}?api-version=…
 *   GET  /emails/operations/{id}?api-version=… → 200 { id, status: "Succeeded" | "Failed" | "Running", error? }
 *
 * Errors are ACS's shape: { error: { code, message } } with an x-ms-error-code header. A send that
 * repeats an Operation-Id already accepted is answered with that operation and sends nothing more.
 *
 * Invariant: nothing is accepted without a valid credential. A request signed with the access key
 * (what the SDK does when built from `endpoint=…;accesskey=…`) must carry x-ms-date (within 15
 * minutes), x-ms-content-sha256 equal to the base64 SHA-256 of the body actually received, and
 *   Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<b64>
 * where Signature = base64(HMAC-SHA256(base64decode(key),
 *   "VERB\n" + pathname[?searchParams] + "\n" + <signed header values joined by ';'>))
 * (@azure/communication-common's communicationAccessKeyCredentialPolicy). Anything else is 401.
 * A bearer token is accepted only when `isValidToken` says so. Faults are injected after
 * authentication, so a wrong key is always a 401 whatever faults are pending.
 *
 * The SDK refuses bearer tokens over plain http, so the managed-identity path needs `tls: true`
 * (the test certificate in ./certs; the client trusts it through NODE_EXTRA_CA_CERTS).
 */
import type http from 'node:http';
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { listenOnLoopback } from './loopback';

export const ACS_EMAIL_API_VERSION = '2025-09-01';
const MAX_CLOCK_SKEW_MS = 15 * 60_000;

export interface AcsEmailEmulatorOptions {
  /** Base64 access key; random when omitted. */
  accessKey?: string;
  /** Accepts `Authorization: Bearer <t>` when this returns true (the managed-identity path). */
  isValidToken?: (token: string) => boolean;
  /** Serve https with the test certificate (needed by the SDK for bearer tokens). */
  tls?: boolean;
}

export interface AcsEmailMessage {
  /** The operation id the send was accepted under. */
  id: string;
  sender: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  plainText: string | undefined;
  html: string | undefined;
  /** Custom email headers the client asked for. */
  headers: Record<string, string>;
}

export interface AcsEmailRequest {
  method: string;
  path: string;
  apiVersion: string | null;
  auth: 'hmac' | 'bearer' | 'none';
  status: number;
  /** The Operation-Id header the client sent, if any. */
  operationId: string | null;
}

export interface AcsEmailFault {
  /** HTTP status to answer, e.g. 500, 503 or 429 (default 500). */
  status?: number;
  /** Instead of answering, read the request and never answer (the connection stays open). */
  hang?: boolean;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Retry-After header, in seconds. */
  retryAfter?: number;
  /** Which calls fail: the send (default), the status poll, or both. */
  on?: 'send' | 'status' | 'any';
}

export type AcsOperationStatus = 'Succeeded' | 'Failed' | 'Running';

export interface AcsEmailEmulator {
  /** http(s)://127.0.0.1:PORT */
  endpoint: string;
  accessKey: string;
  /** `endpoint=<endpoint>/;accesskey=<key>`, as the Azure portal shows it (trailing slash included). */
  connectionString: string;
  /** Messages accepted for delivery (not those whose operation ends Failed). */
  messages: AcsEmailMessage[];
  requests: AcsEmailRequest[];
  inject(fault: AcsEmailFault): void;
  clearFaults(): void;
  /** Connections a hanging fault holds that the client has not closed yet. */
  hanging(): number;
  /** What the status poll reports for operations accepted from now on (default Succeeded). */
  setOutcome(status: AcsOperationStatus): void;
  close(): Promise<void>;
}

interface Operation {
  id: string;
  status: AcsOperationStatus;
}

type Verdict = { auth: 'hmac' | 'bearer' } | { auth: 'hmac' | 'bearer' | 'none'; denied: string };

/** Checks the SDK's HMAC-SHA256 signature (or a bearer token) against the raw request. */
function authenticate(
  req: http.IncomingMessage,
  body: Buffer,
  key: Buffer,
  isValidToken: ((token: string) => boolean) | undefined,
): Verdict {
  const authorization = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (bearer) {
    return isValidToken?.(bearer[1] as string) ? { auth: 'bearer' } : { auth: 'bearer', denied: 'The bearer token is not valid.' };
  }
  const hmac = /^HMAC-SHA256\s+SignedHeaders=([^&]+)&Signature=(\S+)$/i.exec(authorization);
  if (!hmac) return { auth: 'none', denied: 'The Authorization header is missing or malformed.' };

  const signedHeaders = (hmac[1] as string).toLowerCase().split(';');
  for (const required of ['x-ms-date', 'host', 'x-ms-content-sha256']) {
    if (!signedHeaders.includes(required)) return { auth: 'hmac', denied: `The signature must cover ${required}.` };
  }
  const date = Date.parse(String(req.headers['x-ms-date'] ?? ''));
  if (!Number.isFinite(date) || Math.abs(Date.now() - date) > MAX_CLOCK_SKEW_MS) {
    return { auth: 'hmac', denied: 'x-ms-date is missing or more than 15 minutes off.' };
  }
  const bodyHash = createHash('sha256').update(body).digest('base64');
  if (req.headers['x-ms-content-sha256'] !== bodyHash) {
    return { auth: 'hmac', denied: 'x-ms-content-sha256 does not match the request body.' };
  }
  const values: string[] = [];
  for (const name of signedHeaders) {
    const value = req.headers[name];
    if (typeof value !== 'string') return { auth: 'hmac', denied: `Signed header ${name} is missing.` };
    values.push(value);
  }
  // The SDK signs pathname + URLSearchParams re-serialisation of the query; do the same here.
  const url = new URL(req.url ?? '/', 'http://emulator.invalid');
  const query = url.searchParams.toString();
  const stringToSign = `${(req.method ?? '').toUpperCase()}\n${query ? `${url.pathname}?${query}` : url.pathname}\n${values.join(';')}`;
  const expected = createHmac('sha256', key).update(stringToSign).digest();
  const given = Buffer.from(hmac[2] as string, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { auth: 'hmac', denied: 'The HMAC signature does not match.' };
  }
  return { auth: 'hmac' };
}

const stringList = (recipients: unknown): string[] =>
  Array.isArray(recipients)
    ? recipients.map((r) => (r && typeof r === 'object' ? (r as { address?: unknown }).address : undefined)).filter((a): a is string => typeof a === 'string')
    : [];

/** The EmailMessage checks ACS makes before accepting a send; returns the message or why it is refused. */
function parseMessage(body: Buffer, id: string): AcsEmailMessage | string {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return 'The request body is not valid JSON.';
  }
  if (!json || typeof json !== 'object') return 'The request body must be an EmailMessage object.';
  const m = json as Record<string, any>;
  if (typeof m.senderAddress !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(m.senderAddress)) return 'senderAddress is required and must be an email address.';
  const content = m.content as Record<string, unknown> | undefined;
  if (!content || typeof content.subject !== 'string' || content.subject === '') return 'content.subject is required.';
  if (/[\r\n]/.test(content.subject)) return 'content.subject must not contain line breaks.';
  if (typeof content.plainText !== 'string' && typeof content.html !== 'string') return 'content needs plainText or html.';
  const recipients = (m.recipients ?? {}) as Record<string, unknown>;
  const to = stringList(recipients.to);
  const cc = stringList(recipients.cc);
  const bcc = stringList(recipients.bcc);
  if (to.length + cc.length + bcc.length === 0) return 'At least one recipient is required.';
  const headers: Record<string, string> = {};
  if (m.headers && typeof m.headers === 'object') {
    for (const [name, value] of Object.entries(m.headers as Record<string, unknown>)) {
      if (typeof value !== 'string' || /[\r\n]/.test(value) || /[\r\n:]/.test(name)) return `Custom header ${JSON.stringify(name)} is not valid.`;
      headers[name] = value;
    }
  }
  return {
    id,
    sender: m.senderAddress,
    to,
    cc,
    bcc,
    subject: content.subject,
    plainText: typeof content.plainText === 'string' ? content.plainText : undefined,
    html: typeof content.html === 'string' ? content.html : undefined,
    headers,
  };
}

export async function startAcsEmailEmulator(options: AcsEmailEmulatorOptions = {}): Promise<AcsEmailEmulator> {
  const accessKey = options.accessKey ?? randomBytes(64).toString('base64');
  const key = Buffer.from(accessKey, 'base64');
  const messages: AcsEmailMessage[] = [];
  const requests: AcsEmailRequest[] = [];
  const operations = new Map<string, Operation>();
  let faults: Array<Required<Omit<AcsEmailFault, 'retryAfter'>> & { retryAfter?: number }> = [];
  const held = new Set<Socket>();
  let outcome: AcsOperationStatus = 'Succeeded';
  let endpoint = '';

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://emulator.invalid');
      const apiVersion = url.searchParams.get('api-version');
      const operationHeader = req.headers['operation-id'];
      const record: AcsEmailRequest = {
        method: req.method ?? '',
        path: url.pathname,
        apiVersion,
        auth: 'none',
        status: 0,
        operationId: typeof operationHeader === 'string' ? operationHeader : null,
      };
      requests.push(record);
      const reply = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(payload === undefined ? undefined : JSON.stringify(payload));
      };
      const refuse = (status: number, code: string, message: string, headers: Record<string, string> = {}): void =>
        reply(status, { error: { code, message } }, { 'x-ms-error-code': code, ...headers });

      const verdict = authenticate(req, body, key, options.isValidToken);
      record.auth = verdict.auth;
      if ('denied' in verdict) return refuse(401, 'Denied', `Denied by the resource provider. ${verdict.denied}`);
      if (!apiVersion) return refuse(400, 'MissingApiVersionParameter', 'The api-version query parameter is required.');

      const isSend = req.method === 'POST' && url.pathname === '/emails:send';
      const statusMatch = /^\/emails\/operations\/([^/]+)$/.exec(url.pathname);
      const isStatus = req.method === 'GET' && statusMatch !== null;
      if (!isSend && !isStatus) return refuse(404, 'NotFound', `No route for ${req.method} ${url.pathname}.`);

      const fault = faults.find((f) => f.times > 0 && (f.on === 'any' || (f.on === 'send') === isSend));
      if (fault) {
        fault.times--;
        faults = faults.filter((f) => f.times > 0);
        if (fault.hang) {
          held.add(req.socket);
          req.socket.once('close', () => held.delete(req.socket));
          return;
        }
        const headers: Record<string, string> = fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) };
        const code = fault.status === 429 ? 'TooManyRequests' : fault.status >= 500 ? 'ServiceUnavailable' : 'Failed';
        return refuse(fault.status, code, `Emulated failure (${fault.status}).`, headers);
      }

      if (isStatus) {
        const operation = operations.get(decodeURIComponent(statusMatch![1] as string));
        if (!operation) return refuse(404, 'NotFound', 'No such operation.');
        const payload: Record<string, unknown> = { id: operation.id, status: operation.status };
        if (operation.status === 'Failed') payload.error = { code: 'EmailDroppedAllRecipientsSuppressed', message: 'Message was not delivered (emulated failure).' };
        return reply(200, payload);
      }

      const id = record.operationId ?? randomUUID();
      const parsed = parseMessage(body, id);
      if (typeof parsed === 'string') return refuse(400, 'BadRequest', parsed);
      // A caller-chosen Operation-Id makes the send idempotent: a repeat is the same operation, not a second email.
      if (!operations.has(id)) {
        operations.set(id, { id, status: outcome });
        if (outcome !== 'Failed') messages.push(parsed);
      }
      reply(202, { id, status: 'Running' }, {
        'operation-location': `${endpoint}/emails/operations/${encodeURIComponent(id)}?api-version=${encodeURIComponent(apiVersion)}`,
      });
    });
  };

  const { server, origin } = await listenOnLoopback(handler, { tls: options.tls });
  endpoint = origin;

  return {
    endpoint,
    accessKey,
    connectionString: `endpoint=${endpoint}/;accesskey=${accessKey}`,
    messages,
    requests,
    inject(fault: AcsEmailFault): void {
      faults.push({ status: fault.status ?? 500, hang: fault.hang ?? false, times: fault.times ?? 1, on: fault.on ?? 'send', retryAfter: fault.retryAfter });
    },
    clearFaults(): void {
      faults = [];
    },
    hanging: () => held.size,
    setOutcome(status: AcsOperationStatus): void {
      outcome = status;
    },
    close(): Promise<void> {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
