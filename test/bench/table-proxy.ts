/**
 * A counting proxy between tvsync and Azurite: every Table Storage request goes through it, so
 * the benchmark can say how many requests (transactions) and entity operations a cycle cost.
 *
 * A `$batch` (entity-group transaction) is one request and one transaction holding N operations;
 * any other request is one transaction of one operation. Bodies and headers pass unchanged
 * (Shared Key signatures cover the path, not the host, so the proxy's port does not matter).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TableCounts {
  /** HTTP requests = transactions (a $batch counts once). */
  transactions: number;
  /** Entity operations: one per plain request, N per $batch. */
  operations: number;
  /** Plain reads (GET: queries and point reads). */
  reads: number;
  /** Plain writes (POST, PUT, PATCH, MERGE, DELETE outside a batch). */
  writes: number;
  /** $batch requests and the operations inside them. */
  batches: number;
  batchedOperations: number;
}

export interface TableProxy {
  port: number;
  counts(): TableCounts;
  reset(): void;
  close(): Promise<void>;
}

const emptyCounts = (): TableCounts => ({ transactions: 0, operations: 0, reads: 0, writes: 0, batches: 0, batchedOperations: 0 });

/** Request lines of the operations inside a multipart $batch body ("PUT http://… HTTP/1.1"). */
const OPERATION_LINE = /^(GET|POST|PUT|PATCH|MERGE|DELETE) \S+ HTTP\/1\.1\r?$/gm;

export async function startTableProxy(target: { host: string; port: number }): Promise<TableProxy> {
  let counts = emptyCounts();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const count = (method: string, url: string, body: Buffer): void => {
    counts.transactions++;
    if (method === 'POST' && /\/\$batch(\?|$)/.test(url)) {
      const operations = body.toString('latin1').match(OPERATION_LINE)?.length ?? 0;
      counts.batches++;
      counts.batchedOperations += operations;
      counts.operations += operations;
      return;
    }
    counts.operations++;
    if (method === 'GET' || method === 'HEAD') counts.reads++;
    else counts.writes++;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const method = (req.method ?? 'GET').toUpperCase();
      count(method, req.url ?? '/', body);
      const upstream = http.request(
        { host: target.host, port: target.port, method, path: req.url, headers: req.headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    counts: () => ({ ...counts }),
    reset: () => {
      counts = emptyCounts();
    },
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
