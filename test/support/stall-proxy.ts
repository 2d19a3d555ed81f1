/**
 * A loopback HTTP(S) proxy in front of a real server (Azurite, an emulator) that stalls the
 * requests a rule picks: either it never answers ('no-answer'), or it forwards the request, sends
 * the real status and headers and half of the real body, then stops ('half-body': what a
 * connection that dies mid-answer looks like). Everything else passes through unchanged.
 *
 * Invariant: a stalled connection stays open until the client closes it or close() destroys it,
 * so `stalled()` tells whether a client really gave up on it.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { listenOnLoopback } from '../emulators/loopback';

export interface StallRule {
  mode: 'no-answer' | 'half-body';
  /** How many matching requests it stalls. */
  times: number;
  method?: string;
  /** Only requests whose path (with query, as sent) contains this. */
  pathIncludes?: string;
}

export interface StallProxy {
  /** The proxy's origin, e.g. http://127.0.0.1:PORT: use it instead of the upstream's. */
  url: string;
  stall(rule: StallRule): void;
  /** Every request, in arrival order; `stalled` marks those a rule held. */
  requests: Array<{ method: string; path: string; stalled: boolean }>;
  /** Stalled connections the client has not closed yet. */
  stalled(): number;
  close(): Promise<void>;
}

export async function startStallProxy(upstream: string, options: { tls?: boolean } = {}): Promise<StallProxy> {
  const target = new URL(upstream);
  const rules: StallRule[] = [];
  const held = new Set<Socket>();
  const requests: StallProxy['requests'] = [];

  const take = (method: string, path: string): StallRule | undefined => {
    const index = rules.findIndex((r) => r.times > 0 && (!r.method || r.method.toUpperCase() === method) && (!r.pathIncludes || path.includes(r.pathIncludes)));
    if (index < 0) return undefined;
    const rule = rules[index]!;
    if (--rule.times <= 0) rules.splice(index, 1);
    return rule;
  };

  const hold = (socket: Socket): void => {
    held.add(socket);
    socket.once('close', () => held.delete(socket));
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const rule = take(method, path);
    requests.push({ method, path, stalled: rule !== undefined });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (rule?.mode === 'no-answer') return hold(req.socket);
      const client = target.protocol === 'https:' ? https : http;
      const forward = client.request({
        host: target.hostname,
        port: target.port,
        method,
        path,
        headers: { ...req.headers, host: target.host },
      }, (answer) => {
        const body: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => body.push(chunk));
        answer.on('end', () => {
          const whole = Buffer.concat(body);
          const headers = { ...answer.headers };
          delete headers['transfer-encoding'];
          headers['content-length'] = String(whole.length);
          res.writeHead(answer.statusCode ?? 502, headers);
          if (rule?.mode === 'half-body') {
            res.write(whole.subarray(0, Math.floor(whole.length / 2)));
            return hold(req.socket);
          }
          res.end(whole);
        });
      });
      forward.on('error', () => res.destroy());
      forward.end(Buffer.concat(chunks));
    });
  };

  const { server, origin } = await listenOnLoopback(handler, { tls: options.tls });

  return {
    url: origin,
    requests,
    stall(rule) {
      rules.push({ ...rule });
    },
    stalled: () => held.size,
    close() {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
