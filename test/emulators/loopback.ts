/** An HTTP or HTTPS (with the test certificate) server on 127.0.0.1 at a free port. */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { certificatePaths } from './graph';

export interface LoopbackServer {
  server: http.Server;
  /** http(s)://127.0.0.1:PORT */
  origin: string;
  port: number;
}

export async function listenOnLoopback(handler: http.RequestListener, options: { tls?: boolean } = {}): Promise<LoopbackServer> {
  let server: http.Server;
  if (options.tls) {
    const { cert, key } = certificatePaths();
    server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler);
  } else {
    server = http.createServer(handler);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { server, port, origin: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}` };
}
