/**
 * Managed identity emulator: the App Service / Functions token endpoint (api-version 2019-08-01)
 * that @azure/identity's ManagedIdentityCredential (through MSAL's AppService source) calls when
 * IDENTITY_ENDPOINT and IDENTITY_HEADER are set:
 *
 *   GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>[&client_id=<id>]
 *   X-IDENTITY-HEADER: <IDENTITY_HEADER>
 *   → 200 { access_token, expires_on: "<unix seconds>", resource, token_type: "Bearer", client_id }
 *
 * Invariant: a token is valid only if this emulator issued it and it has not expired; tokens are
 * opaque random strings, so nothing downstream can forge or decode one.
 *
 * Beware when testing through @azure/identity: MSAL keeps the managed identity source (endpoint,
 * header, network client) and its token cache in static fields, i.e. once per process. A test file
 * should start one identity emulator, point the environment at it before the first token request,
 * and get a fresh token (for a failure test) by asking for a new resource (a new Graph port).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';

export interface IdentityEmulatorOptions {
  /** The secret the caller must send in X-IDENTITY-HEADER; random when omitted. */
  header?: string;
  /** Client id of the user-assigned identity; when set, any other client_id is refused. */
  clientId?: string;
  /** Token lifetime in seconds (default 3600). */
  lifetimeSeconds?: number;
}

export interface IdentityRequest {
  resource: string | null;
  clientId: string | null;
  apiVersion: string | null;
  /** 0: never answered (hang). */
  status: number;
}

export interface IdentityEmulator {
  /** Value for IDENTITY_ENDPOINT. */
  endpoint: string;
  /** Value for IDENTITY_HEADER. */
  header: string;
  /** Every token issued so far (tests assert none leaks into an error or a log). */
  issued: Set<string>;
  isValid(token: string): boolean;
  /** The next `times` token requests get `status` (default 500); `fail(0)` clears it. */
  fail(times: number, status?: number): void;
  /** The next `times` token requests are never answered (the connection stays open); `hang(0)` clears it. */
  hang(times: number): void;
  /** Connections `hang` holds that the client has not closed yet. */
  hanging(): number;
  requests: IdentityRequest[];
  close(): Promise<void>;
}

const API_VERSION = '2019-08-01';

export async function startIdentityEmulator(options: IdentityEmulatorOptions = {}): Promise<IdentityEmulator> {
  const header = options.header ?? randomBytes(16).toString('hex');
  const lifetime = options.lifetimeSeconds ?? 3600;
  const expiries = new Map<string, number>();
  const issued = new Set<string>();
  const requests: IdentityRequest[] = [];
  let failures = { remaining: 0, status: 500 };
  let hangs = 0;
  const held = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const resource = url.searchParams.get('resource');
    const clientId = url.searchParams.get('client_id');
    const apiVersion = url.searchParams.get('api-version');
    const reply = (status: number, body: Record<string, unknown>): void => {
      requests.push({ resource, clientId, apiVersion, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    // App Service answers errors as { statusCode, message, correlationId }; MSAL reads `message`.
    const refuse = (status: number, message: string): void =>
      reply(status, { statusCode: status, message, correlationId: randomBytes(8).toString('hex') });

    if (req.method !== 'GET') return refuse(405, 'Only GET is supported.');
    const sent = req.headers['x-identity-header'];
    if (sent === undefined) return refuse(400, 'The X-IDENTITY-HEADER header is missing.');
    if (sent !== header) return refuse(401, 'The X-IDENTITY-HEADER header is not valid.');
    if (apiVersion !== API_VERSION) return refuse(400, `Unsupported api-version "${apiVersion ?? ''}"; use ${API_VERSION}.`);
    if (!resource) return refuse(400, 'The resource parameter is missing.');
    if (options.clientId !== undefined && clientId !== null && clientId !== options.clientId) {
      return refuse(400, 'Unable to load the proper Managed Identity: unknown client_id.');
    }
    if (options.clientId === undefined && clientId !== null) {
      return refuse(400, 'Unable to load the proper Managed Identity: no user-assigned identity is configured.');
    }
    if (hangs > 0) {
      hangs--;
      requests.push({ resource, clientId, apiVersion, status: 0 });
      held.add(req.socket);
      req.socket.once('close', () => held.delete(req.socket));
      return;
    }
    if (failures.remaining > 0) {
      failures.remaining--;
      return refuse(failures.status, `The managed identity endpoint failed (emulated ${failures.status}).`);
    }

    const token = randomBytes(24).toString('base64url');
    const expiresOn = Math.floor(Date.now() / 1000) + lifetime;
    issued.add(token);
    expiries.set(token, expiresOn);
    // expires_on is a string of unix seconds in the real response; MSAL coerces it.
    reply(200, {
      access_token: token,
      expires_on: String(expiresOn),
      resource,
      token_type: 'Bearer',
      client_id: clientId ?? options.clientId ?? '00000000-0000-0000-0000-00000000e5e5',
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}/msi/token`,
    header,
    issued,
    requests,
    isValid(token: string): boolean {
      const expiresOn = expiries.get(token);
      return expiresOn !== undefined && expiresOn * 1000 > Date.now();
    },
    fail(times: number, status = 500): void {
      failures = { remaining: Math.max(0, times), status };
    },
    hang(times: number): void {
      hangs = Math.max(0, times);
    },
    hanging: () => held.size,
    close(): Promise<void> {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
