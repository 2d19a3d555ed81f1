/**
 * Keeps `npm run bench` from rotting: the compiled harness, end to end, at a tiny size and no
 * latency. Asserts what the table must say (every scenario, checked results, plausible request
 * counts), never how fast anything was.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CA_CERT, REPO_ROOT } from '../support/world';
import { markdownTable, type ScenarioResult } from './bench';

const HARNESS = path.join(REPO_ROOT, 'dist', 'test', 'bench', 'bench.js');

interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
  doc: { results: ScenarioResult[]; machine: { node: string }; measuredBuild: { commit: string }; options: { users: number[] } } | null;
}

function bench(args: string[]): Promise<BenchRun> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-')), 'bench.json');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HARNESS, ...args, '--out', out], {
      env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: CA_CERT },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const doc = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, 'utf8')) : null;
      resolve({ code, stdout, stderr, doc });
    });
  });
}

describe('npm run bench', () => {
  it('When the harness runs 50 users at no latency, then every scenario succeeds with the request counts its changes need', async () => {
    const run = await bench(['--users', '50', '--latency-ms', '0']);
    expect(run.stderr).not.toContain('bench failed');
    expect(run.code).toBe(0);
    const results = run.doc!.results;
    expect(results.map((r) => r.scenario)).toEqual(['initial-empty', 'initial-existing', 'no-change', 'one-percent', 'provision']);
    for (const r of results) {
      expect(r.outcome, `${r.scenario}: ${r.check}`).toBe('succeeded');
      expect(r.measurement!.wallSeconds).toBeGreaterThan(0);
      expect(r.measurement!.cpuSeconds).toBeGreaterThan(0);
      expect(r.measurement!.peakRssMiB).toBeGreaterThan(10);
      expect(r.counters!.table.transactions).toBeGreaterThan(0);
      // Every printed row carries its own numbers, not a failure.
      expect(run.stdout).toMatch(new RegExp(`\\| 50 \\| ${r.scenario} \\| [^*]`));
    }
    const [empty, existing, quiet, changed, provision] = results as [ScenarioResult, ScenarioResult, ScenarioResult, ScenarioResult, ScenarioResult];
    const writes = (r: ScenarioResult) => r.counters!.teamViewer.POST + r.counters!.teamViewer.PATCH + r.counters!.teamViewer.other;

    // Initial on an empty TeamViewer: one POST per created user, nothing else written.
    const created = empty.report!.counts!.created!;
    expect(created).toBeGreaterThan(40);
    expect(empty.counters!.teamViewer.POST).toBe(created);
    expect(writes(empty)).toBe(created);
    expect(empty.changes).toBe(created);
    expect(empty.counters!.graph.requests).toBeGreaterThan(0);
    // Entity operations include the ones inside $batch transactions, so never fewer than requests.
    expect(empty.counters!.table.operations).toBeGreaterThanOrEqual(empty.counters!.table.transactions);

    // Everyone exists already: matched and linked, not one TeamViewer write.
    expect(existing.report!.counts!.linked).toBe(created);
    expect(writes(existing)).toBe(0);

    // A quiet cycle: no TeamViewer write, no full read.
    expect(writes(quiet)).toBe(0);
    expect(quiet.changes).toBe(0);
    expect(quiet.counters!.graph.requests).toBeLessThan(empty.counters!.graph.requests);

    // 1 % (at least one of each kind): a create, a rename and a deactivation, one write each.
    const counts = changed.report!.counts!;
    expect(counts.created).toBeGreaterThanOrEqual(1);
    expect(counts.updated).toBeGreaterThanOrEqual(1);
    expect(counts.disabled).toBeGreaterThanOrEqual(1);
    expect(changed.counters!.teamViewer.POST).toBe(counts.created);
    expect(changed.counters!.teamViewer.PATCH).toBe(counts.updated! + counts.disabled!);

    // Provision on demand for a new hire: one create.
    expect(provision.report!.action).toBe('create');
    expect(provision.counters!.teamViewer.POST).toBe(1);

    expect(run.doc!.machine.node).toBe(process.version);
    expect(run.doc!.measuredBuild.commit).not.toBe('');
  });

  it('When a scenario runs past --max-seconds, then it is stopped and reported as not finished, not as a number', async () => {
    const started = Date.now();
    const run = await bench(['--users', '50', '--latency-ms', '3000', '--scenarios', 'initial-empty', '--max-seconds', '2']);
    expect(run.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(45_000);
    const [result] = run.doc!.results;
    expect(result!.outcome).toBe('did not finish');
    expect(result!.check).toMatch(/^did not finish in 2 s \(stopped; by then TeamViewer POST \d+, PATCH \d+, Table tx \d+\)$/);
    expect(run.stdout).toContain('| 50 | initial-empty | **DID NOT FINISH**: did not finish in 2 s (stopped; by then TeamViewer POST');
    // No number where the measurements go: wall s … Table ops are all dashes.
    const row = run.stdout.split('\n').find((l) => l.includes('**DID NOT FINISH**'))!;
    const cells = row.split('|').slice(1, -1).map((c) => c.trim());
    expect(cells.slice(3, 15)).toEqual(Array(12).fill('–'));
  });

  it('When --rate-limit is given, then each row also shows the share of the limit used and the users failed, and bench.json holds both', async () => {
    const run = await bench(['--users', '50', '--latency-ms', '0', '--rate-limit', '20', '--scenarios', 'initial-empty']);
    expect(run.stderr).not.toContain('bench failed');
    const [result] = run.doc!.results as [ScenarioResult];
    expect(result.outcome, result.check).toBe('succeeded');
    const tv = result.counters!.teamViewer;
    const use = result.rateLimitUse!;
    expect(use.limitPerSecond).toBe(20);
    expect(use.answered).toBe(tv.total - tv.throttled);
    expect(use.wallSeconds).toBe(result.measurement!.wallSeconds);
    expect(use.percent).toBeCloseTo((100 * use.answered) / use.wallSeconds / 20, 6);
    // The emulator answers at most 20 in any second, so no more than 20 per second of the run and one more second's worth.
    expect(use.percent).toBeGreaterThan(0);
    expect(use.percent).toBeLessThanOrEqual((100 * (use.wallSeconds + 1)) / use.wallSeconds);
    expect(result.usersFailed).toBe(0);
    const lines = run.stdout.split('\n');
    const header = lines.find((l) => l.startsWith('| users |'))!.split('|').map((c) => c.trim());
    const row = lines.find((l) => l.startsWith('| 50 | initial-empty |'))!.split('|').map((c) => c.trim());
    expect(row.length).toBe(header.length);
    expect(row[header.indexOf('TV limit used (of 20/s)')]).toBe(`${use.percent.toFixed(1)} %`);
    expect(row[header.indexOf('users failed')]).toBe('0');
    expect(row[header.indexOf('TV throttled')]).toBe(String(tv.throttled));
  });

  it('When a rate-limited row failed, then it shows the users failed from its report and no measurement', () => {
    const failed: ScenarioResult = {
      users: 1000,
      scenario: 'initial-empty',
      outcome: 'failed',
      check: 'counts failed 12 (expected 0)',
      changes: 0,
      teamViewerRequestsPerChange: null,
      usersFailed: 12,
      rateLimitUse: { limitPerSecond: 20, answered: 900, wallSeconds: 60, percent: 75 },
      loadAverage: { before: [1, 1, 1], after: [1.5, 1, 1] },
    };
    const lines = markdownTable([failed], 20).trim().split('\n');
    const header = lines[0]!.split('|').map((c) => c.trim());
    const row = lines[2]!.split('|').map((c) => c.trim());
    expect(row.length).toBe(header.length);
    expect(row[header.indexOf('users failed')]).toBe('12');
    expect(row[header.indexOf('TV limit used (of 20/s)')]).toBe('–');
    expect(row[header.indexOf('wall s')]).toBe('–');
    expect(row[header.indexOf('load 1m')]).toBe('1.50');
    // Without --rate-limit the table keeps its 16 columns.
    expect(markdownTable([failed]).split('\n')[0]!.split('|').length - 2).toBe(16);
  });
});
