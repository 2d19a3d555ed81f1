/**
 * `tvsync serve` (the real bin, as a child process) against what a web page the operator visits
 * can send it: a plain HTML form POST (no CORS preflight) to the operator routes, and a
 * DNS-rebinding page reading the status and the logs under its own host name. Each is refused
 * before any handler runs, and the state in Azurite shows that nothing changed.
 * Requests go through node:http so that Host, Origin and Sec-Fetch-Site are exactly what a
 * browser would send.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, RUN_NOW_KEY, type App } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { memoryLogger } from '../../shared/log';
import { WATERMARK_KEY } from '../../shared/sync/watermark';
import { freePort } from '../support/ports';
import { expectedInScope, sampleTenant } from '../support/tenant';
import { REPO_ROOT, startWorld, type World } from '../support/world';

let world: World;
let server: ChildProcess;
let output = '';
let port = 0;
/** The same state tables serve uses, read directly to prove a refused request changed nothing. */
let state: App;

interface Answer {
  status: number;
  body: Record<string, any>;
  text: string;
}

/** One request with exactly these headers; Host is serve's own unless given (`''`: none at all). */
function request(method: string, route: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const all: Record<string, string> = { host: `localhost:${port}`, ...headers };
  if (all.host === '') delete all.host;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: `/api/${route}`, headers: all, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let parsed: Record<string, any> = {};
        try {
          parsed = JSON.parse(text) as Record<string, any>;
        } catch {
          // not JSON: the status page, or a CSV
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What a browser sends for `<form method="post" action="http://127.0.0.1:7071/api/…">` on evil.example. */
const formPost = (route: string, body: string) =>
  request('POST', route, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' }, body);

/** What the operator's own tools send: JSON, from serve's origin or from no page at all. */
const ownPost = (route: string, body: unknown = {}) =>
  request('POST', route, { origin: `http://localhost:${port}`, 'content-type': 'application/json' }, JSON.stringify(body));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const status = async () => (await request('GET', 'status', {})).body;

/** Links, watermark, "run now" and the guard's allowance: everything restart and allow change. */
async function snapshot() {
  const [links, watermark, runNow, doc] = await Promise.all([state.store.listLinks(), state.store.getMeta(WATERMARK_KEY), state.store.getMeta(RUN_NOW_KEY), state.status()]);
  return { links: links.length, watermark: watermark?.etag ?? null, runNow: runNow !== null, staged: doc.stagedDeactivations?.count ?? 0, allowed: doc.stagedDeactivations?.allowed ?? false, lastCycle: doc.lastCycle?.id ?? null };
}

beforeAll(async () => {
  world = await startWorld({ tenant: sampleTenant({ users: 30, groups: 2 }) });
  // One deactivation is allowed per cycle: unassigning a few users later holds them back.
  const env = { ...world.env, DEACTIVATION_THRESHOLD: '1' };
  state = await createApp(loadSettings({ env, localSettingsDir: null }), { logger: memoryLogger() });
  port = await freePort();
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-serve-guard-'));
  server = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'tvsync.js'), 'serve', '--port', String(port), '--beat', '1'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor('tvsync serve to listen', async () => (output.includes('tvsync serve:') ? true : undefined));
  await waitFor('the first cycle', async () => ((await status()).lastCycle?.result === 'succeeded' ? true : undefined));
});

afterAll(async () => {
  server?.kill('SIGTERM');
  await new Promise((r) => server?.once('close', r));
  await world?.close();
});

describe('tvsync serve and a web page the operator visits', () => {
  it('When a page posts a plain form to /api/restart?full=true, then it gets 403 and no link is dropped, no restart is asked for', async () => {
    const before = await snapshot();
    expect(before.links).toBe(expectedInScope(world.tenant).size);
    const answer = await formPost('restart?full=true', 'full=true');
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('CROSS_SITE_REQUEST');
    // The same form from a page whose browser sends no Origin (older browsers, some redirects).
    const noOrigin = await request('POST', 'restart?full=true', { 'content-type': 'text/plain' }, '{"full":true}');
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.body.error.code).toBe('JSON_REQUIRED');
    await new Promise((r) => setTimeout(r, 2_500)); // two heartbeats: a restart would start an initial cycle
    expect(await snapshot()).toEqual(before);
  });

  it('When a script of another site sends JSON, then Sec-Fetch-Site or Origin give it away and it gets 403', async () => {
    const before = await snapshot();
    const crossSite = await request('POST', 'restart', { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' }, '{"full":true}');
    expect([crossSite.status, crossSite.body.error.code]).toEqual([403, 'CROSS_SITE_REQUEST']);
    const sameSiteOtherPort = await request('POST', 'restart', { origin: 'http://localhost:3000', 'content-type': 'application/json' }, '{"full":true}');
    expect([sameSiteOtherPort.status, sameSiteOtherPort.body.error.code]).toEqual([403, 'CROSS_SITE_REQUEST']);
    const nullOrigin = await request('POST', 'run', { origin: 'null', 'content-type': 'application/json' }, '{}');
    expect([nullOrigin.status, nullOrigin.body.error.code]).toEqual([403, 'CROSS_SITE_REQUEST']);
    expect(await snapshot()).toEqual(before);
  });

  it('When a DNS-rebinding page reads /api/status and /api/logs under its own host name, then it gets 403 and no data', async () => {
    for (const route of ['status', 'logs', 'logs?format=csv', 'status?format=html']) {
      const answer = await request('GET', route, { host: `rebind.evil.example:${port}`, accept: '*/*' });
      expect(answer.status, route).toBe(403);
      expect(answer.body.error.code).toBe('HOST_NOT_ALLOWED');
      expect(answer.text).not.toContain('@contoso.example');
      expect(answer.text).not.toContain('lastCycle');
    }
    // Serve's own names on another port are foreign too (another page's server could forward to us).
    expect((await request('GET', 'status', { host: 'localhost:1' })).status).toBe(403);
    // No Host at all: node:http itself refuses an HTTP/1.1 request without one (400).
    const noHost = await request('GET', 'status', { host: '' });
    expect([400, 403]).toContain(noHost.status);
    expect(noHost.text).not.toContain('lastCycle');
    // The operator's browser and curl still read it.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `LOCALHOST:${port}`]) {
      const own = await request('GET', 'status', { host });
      expect(own.status, host).toBe(200);
      expect(own.body.health).toBe('healthy');
    }
    const page = await request('GET', 'status', { accept: 'text/html', 'sec-fetch-site': 'none' });
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/<html/i);
  });

  it('When options come in the query string, then the route says to send them in the JSON body and does nothing', async () => {
    const before = await snapshot();
    const answer = await ownPost('restart?full=true');
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toMatch(/options go in a JSON body such as \{"full": …\}, not in the query string/);
    const unknown = await ownPost('restart', { full: true, everything: true });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/unknown option "everything"/);
    const notBoolean = await ownPost('restart', { full: 'true' });
    expect(notBoolean.status).toBe(400);
    expect(await snapshot()).toEqual(before);
  });

  it('When deactivations are held back, then a form post to /api/allow-deactivations is refused and they stay held; the operator\'s own request releases them', async () => {
    const unassigned = world.tenant.assignments.filter((a) => a.principalType === 'User').slice(0, 3).map((a) => a.principalId);
    world.tenant.assignments = world.tenant.assignments.filter((a) => !unassigned.includes(a.principalId));
    for (const group of world.tenant.groups) group.members = group.members.filter((m) => !unassigned.includes(m));
    const cycleBefore = (await snapshot()).lastCycle;
    expect((await ownPost('run')).status).toBe(202);
    const held = await waitFor('a cycle that holds deactivations back', async () => {
      const s = await snapshot();
      return s.lastCycle !== cycleBefore && s.staged > 0 ? s : undefined;
    });
    expect(held.allowed).toBe(false);

    const refused = await formPost('allow-deactivations', '');
    expect(refused.status).toBe(403);
    const refusedPlain = await request('POST', 'allow-deactivations', { origin: 'https://evil.example', 'content-type': 'text/plain' }, '');
    expect(refusedPlain.status).toBe(403);
    expect(await snapshot()).toEqual(held);

    const allowed = await ownPost('allow-deactivations');
    expect(allowed.status).toBe(200);
    expect(allowed.body).toMatchObject({ allowed: true, count: held.staged });
    const applied = await waitFor('the cycle that applies them', async () => {
      const doc = await status();
      return doc.lastCycle?.id !== held.lastCycle && doc.lastCycle?.result !== 'running' ? doc : undefined;
    });
    expect(applied.lastCycle.counts.disabled).toBe(held.staged);
  });

  it('When curl posts JSON without an Origin, then the operator route works as before', async () => {
    const answer = await request('POST', 'test-connection', { 'content-type': 'application/json; charset=utf-8' });
    expect(answer.status).toBe(200);
    expect(answer.body.ok).toBe(true);
  });

  it('When serve has been running all along, then it printed no Functions-host warning', () => {
    expect(output).not.toMatch(/WARNING: (Failed to detect|Skipping call)/);
  });
});
