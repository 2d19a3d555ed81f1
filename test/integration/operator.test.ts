/**
 * The operator surface through `tvsync serve` (the real bin, as a child process) and the CLI:
 * status JSON and page, test connection, provision on demand, run now, restart. The served
 * handlers are the exported handlers of functions/, so this also covers the Functions routes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../shared/serve';
import { freePort } from '../support/ports';
import { expectedInScope, sampleTenant, userId } from '../support/tenant';
import { REPO_ROOT, runCli, startWorld, type World } from '../support/world';

let world: World;
let server: ChildProcess;
let base = '';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const status = async () => (await (await fetch(`${base}/status`)).json()) as Record<string, any>;
const post = (route: string, body?: unknown) =>
  fetch(`${base}/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

beforeAll(async () => {
  world = await startWorld({ tenant: sampleTenant({ users: 40, groups: 2 }) });
  const port = await freePort();
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-serve-'));
  server = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'tvsync.js'), 'serve', '--port', String(port), '--beat', '1'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...world.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('tvsync serve to listen', async () => (out.includes('tvsync serve:') ? true : undefined));
  base = `http://localhost:${port}/api`;
});

afterAll(async () => {
  server?.kill('SIGTERM');
  await new Promise((r) => server?.once('close', r));
  await world?.close();
});

describe('tvsync serve', () => {
  it('When it starts, then the heartbeat runs the first cycle and GET /api/status reports it healthy', async () => {
    const doc = await waitFor('the first cycle', async () => {
      const d = await status();
      return d.lastCycle ? d : undefined;
    });
    expect(doc.health).toBe('healthy');
    expect(doc.lastCycle.counts.created).toBe(expectedInScope(world.tenant).size);
    expect(doc.lastCycle.trigger).toBe('timer');
  });

  it('When a browser asks, then the same route serves the status page with a strict CSP', async () => {
    const res = await fetch(`${base}/status`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(await res.text()).toMatch(/<html/i);
  });

  it('When POST /api/test-connection, then every target is checked and named', async () => {
    const res = await post('test-connection');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; checks: Array<{ target: string; ok: boolean }> };
    expect(body.ok).toBe(true);
    expect(body.checks.map((c) => c.target).sort()).toEqual(['Microsoft Graph', 'Table Storage', 'TeamViewer']);
  });

  it('When POST /api/provision for a new hire, then five steps run and the user is created', async () => {
    world.tenant.users.push({ id: userId(4242), userPrincipalName: 'on.demand@contoso.example', displayName: 'On Demand', givenName: 'On', surname: 'Demand', mail: 'on.demand@contoso.example', accountEnabled: true });
    world.tenant.groups[0].members.push(userId(4242));
    const res = await post('provision', { user: 'on.demand@contoso.example' });
    const body = (await res.json()) as { ok: boolean; steps: Array<{ step: string; status: string; detail: string }> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.steps.map((s) => s.step)).toEqual(['connection test', 'import', 'scope evaluation', 'matching', 'action']);
    expect(body.steps[1].detail).toMatch(/assigned through 1 group/);
    expect(body.steps[4].detail).toMatch(/^create TeamViewer user u\d+/);
    expect(world.teamViewer.users().find((u) => u.userName === 'on.demand@contoso.example')?.active).toBe(true);
  });

  it('When POST /api/provision has no user, then 400 says what to send', async () => {
    const res = await post('provision', {});
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
  });

  it('When POST /api/run, then a cycle runs at the next beat although none is due', async () => {
    const before = (await status()).lastCycle.id;
    expect((await post('run')).status).toBe(202);
    const after = await waitFor('the requested cycle', async () => {
      const d = await status();
      return d.lastCycle && d.lastCycle.id !== before && d.lastCycle.result !== 'running' ? d : undefined;
    });
    expect(after.lastCycle.result).toBe('succeeded');
  });

  it('When POST /api/restart {"full": true}, then no link is dropped and the next cycle matches everyone again by userName, creating nobody', async () => {
    const res = await post('restart', { full: true });
    const body = (await res.json()) as { restarted: boolean; full: boolean; rematching: number; stagedKept: number };
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ restarted: true, full: true, stagedKept: 0 });
    expect(body.rematching).toBeGreaterThan(10);
    const users = world.teamViewer.users().length;
    const before = (await status()).lastCycle.id;
    await post('run');
    const after = await waitFor('the cycle after restart', async () => {
      const d = await status();
      return d.lastCycle && d.lastCycle.id !== before && d.lastCycle.result !== 'running' ? d : undefined;
    });
    expect(after.lastCycle.kind).toBe('initial');
    expect(after.lastCycle.counts.linked).toBe(body.rematching);
    expect(after.lastCycle.counts.created).toBe(0);
    expect(world.teamViewer.users()).toHaveLength(users);
  });

  it('When GET /api/logs, then each user change of the cycles is there, filterable and paged', async () => {
    const all = (await (await fetch(`${base}/logs?status=success&limit=5`)).json()) as { records: Array<Record<string, any>>; continuationToken: string | null };
    expect(all.records).toHaveLength(5);
    expect(all.continuationToken).toBeTruthy();
    const next = (await (await fetch(`${base}/logs?status=success&limit=5&continuationToken=${encodeURIComponent(all.continuationToken!)}`)).json()) as { records: Array<{ id: string }> };
    expect(next.records.some((r) => all.records.some((a) => a.id === r.id))).toBe(false);
    const someone = world.tenant.users.find((u) => expectedInScope(world.tenant).has(u.id))!;
    const mine = (await (await fetch(`${base}/logs?user=${encodeURIComponent(someone.userPrincipalName.toUpperCase())}`)).json()) as { records: Array<Record<string, any>> };
    expect(mine.records.length).toBeGreaterThan(0);
    expect(mine.records.every((r) => r.entraId === someone.id)).toBe(true);
    expect(mine.records.find((r) => r.action === 'create')).toMatchObject({ status: 'success', teamViewerId: expect.stringMatching(/^u\d+$/), cycleId: expect.any(String) });
    expect(mine.records.find((r) => r.action === 'create')!.modifiedProperties).toEqual(expect.arrayContaining([{ name: 'userName', old: null, new: someone.userPrincipalName }]));
    expect((await fetch(`${base}/logs?format=xml`)).status).toBe(400);
    expect((await fetch(`${base}/logs?status=exploded`)).status).toBe(400);
    const csv = await runCli(['logs', '--user', someone.id, '--format', 'csv'], world.env);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\r\n')[0]).toMatch(/time.*action.*status/i);
    expect(csv.stdout).toContain(someone.userPrincipalName);
    expect((await runCli(['logs', '--since', 'yesterday'], world.env)).code).toBe(2);
  });

  it('When an unknown route or method is used, then 404 / 405 say what exists', async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/run`)).status).toBe(405);
  });
});

describe('tvsync provision (CLI) explains', () => {
  it('an out-of-scope user, a linked user and a new user', async () => {
    const env = { ...world.env, SCOPING_FILTERS: JSON.stringify([{ name: 'Not HR', clauses: [{ attribute: 'department', operator: 'NOT EQUALS', value: 'HR' }] }]) };
    const inScope = world.tenant.users.find((u) => expectedInScope(world.tenant).has(u.id))!;
    inScope.department = 'HR';
    const out = await runCli(['provision', inScope.userPrincipalName, '--dry-run'], env);
    expect(out.stdout).toMatch(/scope evaluation\s+ok\s+out of scope: .*department/);
    expect(out.stdout).toMatch(/would disable/);
    expect(world.teamViewer.users().find((u) => u.userName.toLowerCase() === inScope.userPrincipalName.toLowerCase())?.active).toBe(true);
    inScope.department = 'Sales';
    const linked = await runCli(['provision', inScope.id], env);
    expect(linked.code, linked.stdout + linked.stderr).toBe(0);
    expect(linked.stdout).toMatch(/matching\s+ok\s+linked to TeamViewer user u\d+/);
    expect(linked.stdout).toMatch(/nothing to do/);
    world.tenant.users.push({ id: userId(4343), userPrincipalName: 'cli.hire@contoso.example', displayName: 'Cli Hire', givenName: 'Cli', surname: 'Hire', mail: 'cli.hire@contoso.example', accountEnabled: true, department: 'Sales' });
    world.tenant.assignments.push({ id: 'cli-hire', resourceId: world.env.ENTRA_SERVICE_PRINCIPAL_ID, principalId: userId(4343), principalType: 'User', appRoleId: '00000000-0000-0000-0000-000000000000' });
    const dry = await runCli(['provision', 'cli.hire@contoso.example', '--dry-run'], env);
    expect(dry.stdout).toMatch(/would create/);
    expect(world.teamViewer.users().some((u) => u.userName === 'cli.hire@contoso.example')).toBe(false);
    const made = await runCli(['provision', 'cli.hire@contoso.example'], env);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/action\s+ok\s+create TeamViewer user u\d+/);
    const nobody = await runCli(['provision', 'nobody@contoso.example'], env);
    expect(nobody.code).toBe(1);
    expect(nobody.stdout).toMatch(/import\s+FAILED\s+no user "nobody@contoso.example" in Entra ID/);
  });
});

describe('route table', () => {
  it('serves exactly the routes functions/ registers, with the same methods and auth levels', () => {
    const registered: string[] = [];
    for (const file of fs.readdirSync(path.join(REPO_ROOT, 'functions'))) {
      const text = fs.readFileSync(path.join(REPO_ROOT, 'functions', file), 'utf8');
      for (const m of text.matchAll(/app\.http\('([^']+)', \{ methods: \['(\w+)'\], authLevel: '(\w+)', route: '([^']+)'/g)) registered.push(`${m[2]} ${m[4]} ${m[3]}`);
    }
    expect(ROUTES.map((r) => `${r.method} ${r.route} ${r.authLevel}`).sort()).toEqual(registered.sort());
    expect(ROUTES.find((r) => r.route === 'status')?.authLevel).toBe('function');
    expect(ROUTES.filter((r) => r.method === 'POST').every((r) => r.authLevel === 'admin')).toBe(true);
  });
});
