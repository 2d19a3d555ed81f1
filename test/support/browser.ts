/**
 * A real headless Chromium for page tests (Debian's `chromium` driven by playwright-core, no
 * downloaded browser), a loopback HTTP server in front of an Azure Functions handler, and a tiny
 * PNG reader for screenshot checks. Plain functions, no test-framework imports.
 *
 * Invariant: every browser gets a fresh, empty profile that is deleted on close, and is started
 * with the network features that phone home turned off, so a page test talks only to our server.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { HttpRequest, InvocationContext, type HttpHandler, type HttpResponse, type HttpResponseInit } from '@azure/functions';
import { chromium, type BrowserContext, type BrowserContextOptions } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Starts Chromium with a fresh profile. Fails (never skips) when the browser is not installed:
 * CI installs it, so a missing browser is a broken machine, not a reason to test less.
 */
export async function launchChromium(options: BrowserContextOptions = {}): Promise<Chromium> {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH}; the status page tests need it. ` +
        'Install it with: apt-get update && apt-get install -y --no-install-recommends chromium (.ci/run does this in CI)',
    );
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
      ...options,
    });
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        fs.rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
}

export interface HandlerServer {
  url: string;
  /** Every request the server saw, as "METHOD /path?query", in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves an Azure Functions HTTP handler on 127.0.0.1, as the Functions host would call it: the
 * request (method, URL, headers, body) becomes an HttpRequest, the handler's answer is written back.
 */
export async function serveHandler(handler: HttpHandler): Promise<HandlerServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      void (async () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        const body = Buffer.concat(chunks);
        const request = new HttpRequest({
          url: `http://${req.headers.host ?? '127.0.0.1'}${req.url ?? '/'}`,
          method: req.method ?? 'GET',
          headers,
          ...(body.length > 0 ? { body: { bytes: body } } : {}),
        });
        const answer = (await handler(request, new InvocationContext({ functionName: 'page-test' }))) as HttpResponseInit | HttpResponse | undefined;
        const init = (answer ?? {}) as HttpResponseInit;
        const out = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
        let payload: string | Buffer = '';
        if (init.jsonBody !== undefined) {
          payload = JSON.stringify(init.jsonBody);
          if (!out.has('content-type')) out.set('content-type', 'application/json');
        } else if (typeof init.body === 'string') {
          payload = init.body;
        } else if (init.body) {
          throw new Error('serveHandler writes string and JSON bodies only');
        }
        res.writeHead(init.status ?? 200, Object.fromEntries(out.entries()));
        res.end(payload);
      })().catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`handler threw: ${(error as Error).message}`);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('could not read the server address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Png {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, row after row. */
  rgba: Buffer;
}

/** Decodes the PNGs Chromium writes: 8-bit RGB or RGBA, not interlaced. */
export function readPng(data: Buffer): Png {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (!data.subarray(0, 8).equals(signature)) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < data.length) {
    const length = data.readUInt32BE(offset);
    const type = data.toString('latin1', offset + 4, offset + 8);
    const chunk = data.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = chunk.readUInt32BE(0);
      height = chunk.readUInt32BE(4);
      const bitDepth = chunk[8];
      const colorType = chunk[9];
      const interlace = chunk[12];
      if (bitDepth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) {
        throw new Error(`unsupported PNG: bit depth ${bitDepth}, colour type ${colorType}, interlace ${interlace}`);
      }
      channels = colorType === 6 ? 4 : 3;
    } else if (type === 'IDAT') {
      idat.push(chunk);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[out + x - channels]! : 0;
      const b = y > 0 ? pixels[out - stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[out - stride + x - channels]! : 0;
      let value = line[x]!;
      if (filter === 1) value += a;
      else if (filter === 2) value += b;
      else if (filter === 3) value += (a + b) >> 1;
      else if (filter === 4) value += paeth(a, b, c);
      else if (filter !== 0) throw new Error(`unknown PNG filter ${filter}`);
      pixels[out + x] = value & 0xff;
    }
  }
  if (channels === 4) return { width, height, rgba: pixels };
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0, j = 0; i < pixels.length; i += 3, j += 4) {
    rgba[j] = pixels[i]!;
    rgba[j + 1] = pixels[i + 1]!;
    rgba[j + 2] = pixels[i + 2]!;
    rgba[j + 3] = 255;
  }
  return { width, height, rgba };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The most frequent colour of an image and the share of pixels that have it. */
export function dominantColor(png: Png): { r: number; g: number; b: number; share: number } {
  const counts = new Map<number, number>();
  for (let i = 0; i < png.rgba.length; i += 4) {
    const key = (png.rgba[i]! << 16) | (png.rgba[i + 1]! << 8) | png.rgba[i + 2]!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best = 0;
  let bestCount = 0;
  for (const [key, n] of counts) {
    if (n > bestCount) {
      best = key;
      bestCount = n;
    }
  }
  return { r: (best >> 16) & 0xff, g: (best >> 8) & 0xff, b: best & 0xff, share: bestCount / (png.width * png.height) };
}

/** "#1e7b34" → { r, g, b }. */
export function hexColor(hex: string): { r: number; g: number; b: number } {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new Error(`not a #rrggbb colour: ${hex}`);
  return { r: parseInt(m[1]!, 16), g: parseInt(m[2]!, 16), b: parseInt(m[3]!, 16) };
}
