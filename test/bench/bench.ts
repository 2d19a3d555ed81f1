/**
 * `npm run bench`: what tvsync costs per cycle, measured on tvsync alone.
 *
 *   npm run bench -- --users 1000,10000,100000 [--latency-ms 50] [--rate-limit N]
 *                    [--scenarios initial-empty,no-change] [--bin PATH] [--max-seconds S]
 *                    [--setting NAME=VALUE]… [--cpu-prof DIR] [--out FILE]
 *
 * Three kinds of process, so each number belongs to one of them:
 * - the harness (this file): plans the scenarios, prints the table, writes test-results/bench.json;
 * - the emulator host (emulator-host.ts, a child over IPC): the managed-identity endpoint, Graph
 *   over https, TeamViewer and a counting proxy in front of Azurite, with indexed lookups so their
 *   cost does not grow with the tenant; Azurite in its own process, with an index on (PartitionKey,
 *   RowKey) loaded into it (azurite-indexed.ts), so its cost per entity operation and per query
 *   page does not grow with the table either (stock Azurite scans the partition for every point
 *   read and upsert, and filters and sorts the table for every page);
 * - tvsync: the compiled bin (`tvsync sync --json`, `tvsync provision <user> --json`), run as a
 *   child under `/usr/bin/time -v`, so wall time, CPU (user + sys) and peak RSS are its own.
 *
 * Scenarios per tenant size, each on a fresh state table prefix (a "world"):
 * - initial-empty: the first cycle against an empty TeamViewer (every in-scope user created);
 * - initial-existing: the first cycle where every in-scope user exists already (matching only);
 * - no-change: a cycle after an initial one with nothing changed in Entra (a quiet cycle);
 * - one-percent: 1 % of the tenant changed — renames, unassignments and new hires in equal parts;
 * - provision: `tvsync provision` for one new hire.
 * The last three run on the world of the first initial scenario that succeeded; when none did (or
 * none was asked for), on a world prepared by an unmeasured initial cycle at zero latency.
 *
 * A scenario whose command did not succeed, or whose counts do not match what was changed, is
 * reported as FAILED with the reason, never as a number; one that runs past --max-seconds is
 * killed (tvsync and everything it started) and reported as "did not finish in N s".
 *
 * With --rate-limit N each row also shows the share of the limit the command used (TeamViewer
 * requests answered without throttling / tvsync's wall seconds / N, as %) and the users it
 * reported failed (counts.failed); a FAILED row shows the users failed, from its report, but no
 * share. bench.json holds both for every row (rateLimitUse, usersFailed), the CPU seconds Azurite
 * and the emulator host spent meanwhile (othersCpuSeconds), and azuriteIndex: what Azurite's
 * index answered over the run.
 */
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startIndexedAzurite, type IndexedAzurite } from './azurite-indexed';
import type { IndexStats } from './azurite-index-preload';
import { REPO_ROOT } from '../support/world';
import type { ChangeSummary, Counters, HostCommand, HostReply, Pace, WorldSpec } from './emulator-host';

export const SCENARIOS = ['initial-empty', 'initial-existing', 'no-change', 'one-percent', 'provision'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  users: number[];
  latencyMs: number;
  rateLimit?: number;
  scenarios: Scenario[];
  bin: string;
  maxSeconds: number;
  /** Extra tvsync settings for every measured command (e.g. TEAMVIEWER_CONCURRENCY=8). */
  settings: Record<string, string>;
  cpuProfDir?: string;
  out: string;
}

export interface Measurement {
  wallSeconds: number;
  cpuSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  peakRssMiB: number;
  /** How CPU and RSS were taken: "/usr/bin/time -v", or process.resourceUsage() where time is missing. */
  measuredWith: string;
}

export interface ScenarioResult {
  users: number;
  scenario: Scenario;
  /** succeeded: the command succeeded and its counts are what the scenario changed. */
  outcome: 'succeeded' | 'failed' | 'did not finish';
  /** Why it failed or did not finish; what was checked when it succeeded. */
  check: string;
  /** The world the scenario ran on (for no-change, one-percent and provision). */
  base?: string;
  measurement?: Measurement;
  counters?: Counters;
  /** Changes tvsync made (created + updated + enabled + disabled + linked); per-change costs divide by it. */
  changes: number;
  teamViewerRequestsPerChange: number | null;
  /**
   * With --rate-limit: how much of TeamViewer's limit the command used — TeamViewer requests
   * answered without throttling (not 403/429) per second of tvsync's wall time, as a percentage
   * of the limit. Present whenever there is a measurement; the table shows it for succeeded rows.
   */
  rateLimitUse?: { limitPerSecond: number; answered: number; wallSeconds: number; percent: number };
  /** Users the command reported failed: counts.failed of a cycle, 1 for a failed provision; null without a JSON report. */
  usersFailed: number | null;
  /**
   * CPU seconds (user + system) the other processes spent while the command ran, from /proc (null
   * where there is none): says whether a wall time went to tvsync or to what it talks to.
   */
  othersCpuSeconds?: { azurite: number | null; emulatorHost: number | null };
  /** What the cycle (or provision) reported: result and counts. */
  report?: { result: string; kind?: string; counts?: Record<string, number>; exitCode: number | null; action?: string };
  loadAverage: { before: number[]; after: number[] };
}

const HELP = `npm run bench -- [options]

  --users N[,N…]         tenant sizes (default 1000,5000; positional sizes work too)
  --latency-ms MS        Graph and TeamViewer answer after MS (default 50)
  --rate-limit N         TeamViewer answers 403 rate_limit_reached above N requests/s (default none)
  --scenarios A[,B…]     ${SCENARIOS.join(', ')} (default all)
  --bin PATH             the tvsync bin to measure (default: this repository's bin/tvsync.js)
  --max-seconds S        stop a scenario's tvsync after S seconds and report it (default 1200)
  --setting NAME=VALUE   a tvsync setting for every measured command (repeatable)
  --cpu-prof DIR         write a V8 CPU profile of each tvsync command to DIR
  --out FILE             where the JSON goes (default test-results/bench.json)`;

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const options: BenchOptions = {
    users: [],
    latencyMs: 50,
    scenarios: [...SCENARIOS],
    bin: path.join(REPO_ROOT, 'bin', 'tvsync.js'),
    maxSeconds: 1200,
    settings: {},
    out: path.join(REPO_ROOT, 'test-results', 'bench.json'),
  };
  const number = (flag: string, text: string | undefined, min: number): number => {
    const value = Number(text);
    if (text === undefined || !Number.isInteger(value) || value < min) throw new Error(`${flag} needs a whole number ≥ ${min} (got ${text ?? 'nothing'})`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = () => {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      return value;
    };
    switch (arg) {
      case '--help':
      case '-h':
        return 'help';
      case '--users':
        options.users.push(...next().split(',').map((n) => number('--users', n.trim(), 10)));
        break;
      case '--latency-ms':
        options.latencyMs = number(arg, next(), 0);
        break;
      case '--rate-limit':
        options.rateLimit = number(arg, next(), 1);
        break;
      case '--scenarios': {
        const wanted = next().split(',').map((s) => s.trim());
        const unknown = wanted.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
        if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
        options.scenarios = SCENARIOS.filter((s) => wanted.includes(s));
        break;
      }
      case '--bin':
        options.bin = path.resolve(next());
        break;
      case '--max-seconds':
        options.maxSeconds = number(arg, next(), 1);
        break;
      case '--setting': {
        const [name, ...value] = next().split('=');
        if (!name || value.length === 0) throw new Error('--setting needs NAME=VALUE');
        options.settings[name] = value.join('=');
        break;
      }
      case '--cpu-prof':
        options.cpuProfDir = path.resolve(next());
        break;
      case '--out':
        options.out = path.resolve(next());
        break;
      default:
        if (/^\d+$/.test(arg)) options.users.push(number('size', arg, 10));
        else throw new Error(`unknown option ${arg} (see --help)`);
    }
  }
  if (options.users.length === 0) options.users = [1000, 5000];
  if (!fs.existsSync(options.bin)) throw new Error(`--bin ${options.bin} does not exist`);
  return options;
}

// --- the emulator host --------------------------------------------------------------------------

interface Host {
  pid: number | undefined;
  send<T>(command: HostCommand): Promise<T>;
  stop(): Promise<void>;
}

function startHost(): Host {
  const child: ChildProcess = fork(path.join(__dirname, 'emulator-host.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (reply: HostReply) => {
    const pending = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (reply.ok) pending?.resolve(reply.value);
    else pending?.reject(new Error(`emulator host: ${reply.error}`));
  });
  child.on('exit', (code, signal) => {
    for (const pending of waiting.values()) pending.reject(new Error(`the emulator host exited (${code ?? signal})`));
    waiting.clear();
  });
  return {
    pid: child.pid,
    send<T>(command: HostCommand): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ ...command, id });
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await this.send({ cmd: 'stop' }).catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// --- running tvsync -----------------------------------------------------------------------------

interface TvsyncRun {
  exitCode: number | null;
  timedOut: boolean;
  stdout: string;
  stderrTail: string;
  measurement: Measurement;
}

const TIME_BIN = '/usr/bin/time';

/** Loaded with --require where /usr/bin/time is missing: the process's own rusage at exit. */
const RUSAGE_PRELOAD = `process.on('exit', () => require('fs').writeFileSync(process.env.TVSYNC_BENCH_RUSAGE, JSON.stringify(process.resourceUsage())));`;

/**
 * Runs one tvsync command as its own process group, in an empty folder (no local.settings.json),
 * with `env` and PATH only. Past `maxSeconds` the whole group (time, node) is killed.
 */
async function runTvsync(options: BenchOptions, args: string[], env: Record<string, string>, maxSeconds: number): Promise<TvsyncRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-bench-'));
  const report = path.join(dir, 'rusage.txt');
  const useTime = fs.existsSync(TIME_BIN);
  const nodeArgs = options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? '', ...env };
  let command: string;
  let commandArgs: string[];
  if (useTime) {
    command = TIME_BIN;
    commandArgs = ['-v', '-o', report, process.execPath, ...nodeArgs, options.bin, ...args];
  } else {
    fs.writeFileSync(path.join(dir, 'rusage.js'), RUSAGE_PRELOAD);
    childEnv.TVSYNC_BENCH_RUSAGE = report;
    command = process.execPath;
    commandArgs = ['--require', path.join(dir, 'rusage.js'), ...nodeArgs, options.bin, ...args];
  }
  const started = process.hrtime.bigint();
  const child = spawn(command, commandArgs, { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const out: Buffer[] = [];
  let stderrTail = '';
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderrTail = (stderrTail + chunk.toString()).slice(-8_000)));
  let timedOut = false;
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, maxSeconds * 1000);
  process.once('exit', killGroup);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  clearTimeout(timer);
  process.removeListener('exit', killGroup);
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const measurement = readRusage(report, useTime, wallSeconds);
  fs.rmSync(dir, { recursive: true, force: true });
  return { exitCode, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderrTail, measurement };
}

function readRusage(file: string, fromTime: boolean, wallSeconds: number): Measurement {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (fromTime) {
    const field = (label: string) => Number(new RegExp(`${label}:\\s*([\\d.]+)`).exec(text)?.[1] ?? NaN);
    const userSeconds = field('User time \\(seconds\\)');
    const systemSeconds = field('System time \\(seconds\\)');
    return { wallSeconds, userSeconds, systemSeconds, cpuSeconds: userSeconds + systemSeconds, peakRssMiB: field('Maximum resident set size \\(kbytes\\)') / 1024, measuredWith: '/usr/bin/time -v' };
  }
  const usage = text ? (JSON.parse(text) as NodeJS.ResourceUsage) : null;
  const userSeconds = usage ? usage.userCPUTime / 1e6 : NaN;
  const systemSeconds = usage ? usage.systemCPUTime / 1e6 : NaN;
  return { wallSeconds, userSeconds, systemSeconds, cpuSeconds: userSeconds + systemSeconds, peakRssMiB: usage ? usage.maxRSS / 1024 : NaN, measuredWith: 'process.resourceUsage() (no /usr/bin/time)' };
}

// --- scenarios ----------------------------------------------------------------------------------

interface CycleJson {
  result: string;
  kind: string;
  counts: Record<string, number>;
  error?: { code: string; message: string };
}

interface ProvisionJson {
  ok: boolean;
  steps: Array<{ step: string; status: string; detail: string }>;
  action: { kind: string; status: string } | null;
}

interface BenchWorld {
  id: number;
  env: Record<string, string>;
  inScope: number;
  label: string;
}

const CHANGE_KINDS = ['created', 'updated', 'enabled', 'disabled', 'linked'] as const;
const changesIn = (counts: Record<string, number>): number => CHANGE_KINDS.reduce((sum, k) => sum + (counts[k] ?? 0), 0);

function parseJson<T>(stdout: string): T | null {
  try {
    return JSON.parse(stdout) as T;
  } catch {
    return null;
  }
}

/** The settings every measured command gets on top of the world's: see README (Performance). */
function benchSettings(options: BenchOptions): Record<string, string> {
  // One initial cycle is measured as one piece of work: the default budget (540 s) would cut a
  // 100,000-user initial cycle into heartbeats, which the benchmark does not emulate.
  return { CYCLE_TIME_BUDGET_SECONDS: '86400', ...options.settings };
}

let clockTicks: number | undefined;

/** User + system CPU seconds of a process so far, from /proc/PID/stat; null where that is missing. */
function cpuSecondsOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}

/** counts.failed of a cycle's report, 1 or 0 for provision's result, null without either. */
function usersFailedIn(stdout: string): number | null {
  const report = parseJson<Partial<CycleJson> & Partial<ProvisionJson>>(stdout);
  if (report?.counts) return report.counts.failed ?? 0;
  if (typeof report?.ok === 'boolean') return report.ok ? 0 : 1;
  return null;
}

function rateLimitUse(counters: Counters, wallSeconds: number, limitPerSecond: number): NonNullable<ScenarioResult['rateLimitUse']> {
  const answered = counters.teamViewer.total - counters.teamViewer.throttled;
  return { limitPerSecond, answered, wallSeconds, percent: wallSeconds > 0 ? (100 * answered) / wallSeconds / limitPerSecond : NaN };
}

class Bench {
  readonly results: ScenarioResult[] = [];

  constructor(private readonly host: Host, private readonly options: BenchOptions, private readonly azuritePid: () => number | undefined) {}

  private othersCpu(): { azurite: number | null; emulatorHost: number | null } {
    return { azurite: cpuSecondsOf(this.azuritePid()), emulatorHost: cpuSecondsOf(this.host.pid) };
  }

  private pace(): Pace {
    return { latencyMs: this.options.latencyMs, rateLimitPerSecond: this.options.rateLimit };
  }

  private async world(users: number, teamViewer: WorldSpec['teamViewer'], label: string): Promise<BenchWorld> {
    const made = await this.host.send<{ world: number; env: Record<string, string>; inScope: number }>({ cmd: 'world', spec: { users, teamViewer, pace: this.pace() } });
    return { id: made.world, env: { ...made.env, ...benchSettings(this.options) }, inScope: made.inScope, label };
  }

  /**
   * Runs one command of a scenario and checks its outcome with `check`, which returns what was
   * verified or throws the reason it does not hold.
   */
  private async measure(
    users: number,
    scenario: Scenario,
    world: BenchWorld,
    args: string[],
    check: (run: TvsyncRun) => { check: string; changes: number; report: ScenarioResult['report'] },
  ): Promise<ScenarioResult> {
    process.stderr.write(`bench: ${users} users, ${scenario}${world.label ? ` (on ${world.label})` : ''}…\n`);
    await this.host.send({ cmd: 'reset', world: world.id });
    const before = os.loadavg();
    const othersBefore = this.othersCpu();
    const run = await runTvsync(this.options, args, world.env, this.options.maxSeconds);
    const othersAfter = this.othersCpu();
    const spent = (a: number | null, b: number | null) => (a === null || b === null ? null : Math.round((b - a) * 100) / 100);
    const counters = await this.host.send<Counters>({ cmd: 'counters', world: world.id });
    const base = {
      users,
      scenario,
      base: world.label || undefined,
      loadAverage: { before, after: os.loadavg() },
      counters,
      usersFailed: usersFailedIn(run.stdout),
      othersCpuSeconds: { azurite: spent(othersBefore.azurite, othersAfter.azurite), emulatorHost: spent(othersBefore.emulatorHost, othersAfter.emulatorHost) },
      ...(this.options.rateLimit ? { rateLimitUse: rateLimitUse(counters, run.measurement.wallSeconds, this.options.rateLimit) } : {}),
    };
    let result: ScenarioResult;
    if (run.timedOut) {
      // How far it got, so a stopped run still says something (as counts, never as a result).
      const progress = `TeamViewer POST ${counters.teamViewer.POST}, PATCH ${counters.teamViewer.PATCH}, Table tx ${counters.table.transactions}`;
      result = { ...base, outcome: 'did not finish', check: `did not finish in ${this.options.maxSeconds} s (stopped; by then ${progress})`, changes: 0, teamViewerRequestsPerChange: null, measurement: run.measurement };
    } else {
      try {
        const verdict = check(run);
        result = {
          ...base,
          outcome: 'succeeded',
          check: verdict.check,
          measurement: run.measurement,
          changes: verdict.changes,
          teamViewerRequestsPerChange: verdict.changes > 0 ? counters.teamViewer.total / verdict.changes : null,
          report: verdict.report,
        };
      } catch (err) {
        const tail = run.stderrTail.trim().split('\n').slice(-3).join(' | ');
        result = { ...base, outcome: 'failed', check: `${(err as Error).message}${tail ? ` (stderr: ${tail})` : ''}`, changes: 0, teamViewerRequestsPerChange: null, measurement: run.measurement };
      }
    }
    process.stderr.write(`bench:   ${result.outcome}: ${result.check}${result.measurement && result.outcome === 'succeeded' ? ` — ${result.measurement.wallSeconds.toFixed(2)} s` : ''}\n`);
    this.results.push(result);
    return result;
  }

  /** A `tvsync sync --json` that must succeed with `expect`ed counts. */
  private sync(users: number, scenario: Scenario, world: BenchWorld, expect: Record<string, number>): Promise<ScenarioResult> {
    return this.measure(users, scenario, world, ['sync', '--json'], (run) => {
      const report = parseJson<CycleJson>(run.stdout);
      if (!report) throw new Error(`tvsync sync exited ${run.exitCode} without a JSON report`);
      const summary = { result: report.result, kind: report.kind, counts: report.counts, exitCode: run.exitCode };
      if (report.result !== 'succeeded') throw new Error(`cycle ${report.result}${report.error ? `: ${report.error.code} ${report.error.message}` : ''} (counts ${JSON.stringify(report.counts)})`);
      if (run.exitCode !== 0) throw new Error(`tvsync sync exited ${run.exitCode} (counts ${JSON.stringify(report.counts)})`);
      const wrong = Object.entries({ failed: 0, ...expect }).filter(([k, v]) => (report.counts[k] ?? 0) !== v);
      if (wrong.length) throw new Error(`counts ${wrong.map(([k, v]) => `${k} ${report.counts[k] ?? 0} (expected ${v})`).join(', ')}`);
      const shown = Object.entries(report.counts).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
      return { check: `${report.kind}, ${report.result}: ${shown || 'nothing to do'}`, changes: changesIn(report.counts), report: summary };
    });
  }

  /**
   * A world after a successful initial cycle, for the scenarios that start from one: the first
   * measured initial world that succeeded, else one prepared by an unmeasured initial cycle at zero
   * latency (given twice --max-seconds). That one matches users TeamViewer already has, the
   * cheapest way to a synced state (one state write per user, no TeamViewer write); the planner
   * decides from TeamViewer's data, not from how a link came about, so later cycles see the same
   * state as after creating them. Returns why not when that fails.
   */
  private async synced(users: number, candidates: Array<BenchWorld | null>, open: BenchWorld[]): Promise<BenchWorld | { notReady: string; timedOut: boolean }> {
    const ready = candidates.find((w): w is BenchWorld => w !== null);
    if (ready) return ready;
    const world = await this.world(users, 'all', 'a world prepared by an unmeasured initial-existing cycle');
    open.push(world);
    const limit = 2 * this.options.maxSeconds;
    process.stderr.write(`bench: ${users} users, preparing a synced world (initial cycle at 0 ms latency, not measured, at most ${limit} s)…\n`);
    await this.host.send({ cmd: 'pace', world: world.id, pace: { latencyMs: 0 } });
    const run = await runTvsync({ ...this.options, cpuProfDir: undefined }, ['sync', '--json'], { ...world.env, TEAMVIEWER_CONCURRENCY: '16' }, limit);
    const report = parseJson<CycleJson>(run.stdout);
    if (run.timedOut) return { notReady: `not run: preparing a synced world (an unmeasured initial cycle) did not finish in ${limit} s`, timedOut: true };
    if (report?.result !== 'succeeded' || report.counts.failed) {
      return { notReady: `not run: preparing a synced world failed: ${report ? `${report.result} ${JSON.stringify(report.counts)}` : run.stderrTail.slice(-300)}`, timedOut: false };
    }
    await this.host.send({ cmd: 'pace', world: world.id, pace: this.pace() });
    return world;
  }

  async size(users: number): Promise<void> {
    const wants = (s: Scenario) => this.options.scenarios.includes(s);
    const open: BenchWorld[] = [];
    try {
      let afterEmpty: BenchWorld | null = null;
      let afterExisting: BenchWorld | null = null;
      if (wants('initial-empty')) {
        const world = await this.world(users, 'empty', '');
        open.push(world);
        const r = await this.sync(users, 'initial-empty', world, { created: world.inScope, linked: 0 });
        if (r.outcome === 'succeeded') afterEmpty = { ...world, label: 'the world of initial-empty' };
      }
      if (wants('initial-existing')) {
        const world = await this.world(users, 'all', '');
        open.push(world);
        const r = await this.sync(users, 'initial-existing', world, { created: 0, linked: world.inScope });
        if (r.outcome === 'succeeded') afterExisting = { ...world, label: 'the world of initial-existing' };
      }
      if (!wants('no-change') && !wants('one-percent') && !wants('provision')) return;
      const world = await this.synced(users, [afterEmpty, afterExisting], open);
      if ('notReady' in world) {
        for (const scenario of (['no-change', 'one-percent', 'provision'] as const).filter(wants)) {
          const load = os.loadavg();
          this.results.push({ users, scenario, outcome: world.timedOut ? 'did not finish' : 'failed', check: world.notReady, changes: 0, teamViewerRequestsPerChange: null, usersFailed: null, loadAverage: { before: load, after: load } });
        }
        return;
      }
      if (wants('no-change')) {
        await this.sync(users, 'no-change', world, { created: 0, updated: 0, enabled: 0, disabled: 0, linked: 0 });
      }
      if (wants('one-percent')) {
        const changed = await this.host.send<ChangeSummary>({ cmd: 'change', world: world.id, percent: 1 });
        await this.sync(users, 'one-percent', world, { updated: changed.renamed, disabled: changed.unassigned, created: changed.hired, enabled: 0, linked: 0 });
      }
      if (wants('provision')) {
        const { userPrincipalName } = await this.host.send<{ userPrincipalName: string }>({ cmd: 'hire', world: world.id });
        await this.measure(users, 'provision', world, ['provision', userPrincipalName, '--json'], (run) => {
          const result = parseJson<ProvisionJson>(run.stdout);
          if (!result) throw new Error(`tvsync provision exited ${run.exitCode} without a JSON result`);
          const failedStep = result.steps.find((s) => s.status === 'failure');
          if (!result.ok || run.exitCode !== 0) throw new Error(`provision failed${failedStep ? ` at ${failedStep.step}: ${failedStep.detail}` : ''} (exit ${run.exitCode})`);
          if (result.action?.kind !== 'create' || result.action.status !== 'success') throw new Error(`expected a successful create, got ${JSON.stringify(result.action)}`);
          return { check: `ok: ${result.action.kind} ${result.action.status}`, changes: 1, report: { result: 'ok', exitCode: run.exitCode, action: result.action.kind } };
        });
      }
    } finally {
      for (const world of open) await this.host.send({ cmd: 'closeWorld', world: world.id }).catch(() => undefined);
    }
  }
}

// --- output -------------------------------------------------------------------------------------

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '?');
const thousands = (n: number) => n.toLocaleString('en-US');

/**
 * One row per scenario. With `rateLimit` (--rate-limit N) two columns follow TV throttled: the
 * share of the limit used and the users the command reported failed.
 */
export function markdownTable(results: ScenarioResult[], rateLimit?: number): string {
  const limitColumns = rateLimit ? ` TV limit used (of ${thousands(rateLimit)}/s) | users failed |` : '';
  const header = `| users | scenario | result | wall s | tvsync CPU s | peak RSS MiB | TV GET | TV POST | TV PATCH | TV other | TV req/change | TV throttled |${limitColumns} Graph req (+$batch sub) | Table tx | Table ops | load 1m |`;
  const lines = [header, `|${'---|'.repeat(rateLimit ? 18 : 16)}`];
  const failedUsers = (r: ScenarioResult) => (r.usersFailed === null ? '–' : thousands(r.usersFailed));
  for (const r of results) {
    const load = fixed(r.loadAverage.after[0] ?? NaN, 2);
    if (r.outcome !== 'succeeded' || !r.measurement || !r.counters) {
      const label = r.outcome === 'did not finish' ? `**DID NOT FINISH**: ${r.check}` : `**FAILED**: ${r.check}`;
      // No measurement on such a row; the users failed are a count from the report, which explains it.
      const cells = rateLimit ? [...Array(9).fill('–'), '–', failedUsers(r), ...Array(3).fill('–')] : Array(12).fill('–');
      lines.push(`| ${thousands(r.users)} | ${r.scenario} | ${label.replace(/\|/g, '/')} | ${cells.join(' | ')} | ${load} |`);
      continue;
    }
    const m = r.measurement;
    const c = r.counters;
    lines.push(`| ${[
      thousands(r.users), r.scenario, r.check.replace(/\|/g, '/'),
      fixed(m.wallSeconds, 2), fixed(m.cpuSeconds, 2), fixed(m.peakRssMiB, 0),
      thousands(c.teamViewer.GET), thousands(c.teamViewer.POST), thousands(c.teamViewer.PATCH), thousands(c.teamViewer.other),
      r.teamViewerRequestsPerChange === null ? '–' : fixed(r.teamViewerRequestsPerChange, 4),
      thousands(c.teamViewer.throttled),
      ...(rateLimit ? [r.rateLimitUse ? `${fixed(r.rateLimitUse.percent, 1)} %` : '?', failedUsers(r)] : []),
      `${thousands(c.graph.requests)} (+${thousands(c.graph.batchSubRequests)})`,
      thousands(c.table.transactions), thousands(c.table.operations), load,
    ].join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

function gitCommit(dir: string): string {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', 'HEAD');
    // Only what makes up tvsync counts: edits to tests or docs do not change the measured build.
    const dirty = execFileSync('git', ['-C', git('rev-parse', '--show-toplevel'), 'status', '--porcelain', '--untracked-files=no', '--', 'shared', 'functions', 'bin', 'package.json', 'package-lock.json', 'tsconfig.json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${commit} (with uncommitted changes to tvsync)` : commit;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    hostname: os.hostname(),
  };
}

export async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const startedAt = new Date();
  let azurite: IndexedAzurite | null = null;
  let azuriteIndex: IndexStats | string = 'not started';
  const host = startHost();
  // Ctrl-C or a kill: exiting runs the exit hooks that kill the running tvsync's process group
  // and Azurite; the emulator host leaves when its IPC channel closes.
  const interrupted = (signal: NodeJS.Signals) => {
    process.stderr.write(`bench: ${signal}: stopping tvsync, the emulators and Azurite; writing what finished\n`);
    writeResults(options, startedAt, bench.results, azuriteIndex, `interrupted by ${signal}`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const bench = new Bench(host, options, () => azurite?.process.pid);
  try {
    azurite = await startIndexedAzurite();
    await host.send({ cmd: 'start', azurite: { host: '127.0.0.1', port: azurite.port } });
    for (const users of options.users) await bench.size(users);
    azuriteIndex = await azurite.indexStats().catch((err: Error) => `unknown: ${err.message}`);
  } finally {
    await host.stop();
    await azurite?.stop();
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
  }
  writeResults(options, startedAt, bench.results, azuriteIndex);
  return bench.results.every((r) => r.outcome === 'succeeded') ? 0 : 1;
}

/** Prints the table and writes the JSON (synchronously: an interrupted run writes what finished). */
function writeResults(options: BenchOptions, startedAt: Date, results: ScenarioResult[], azuriteIndex: IndexStats | string, interrupted?: string): void {
  const table = markdownTable(results, options.rateLimit);
  process.stdout.write(`\n${table}`);
  const doc = {
    date: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    ...(interrupted ? { interrupted } : {}),
    machine: machine(),
    options: { ...options, out: undefined },
    measuredBuild: { bin: options.bin, commit: gitCommit(path.dirname(options.bin)) },
    harnessCommit: gitCommit(REPO_ROOT),
    /** What Azurite's (PartitionKey, RowKey) index answered over the whole run. */
    azuriteIndex,
    results,
    table,
  };
  fs.mkdirSync(path.dirname(options.out), { recursive: true });
  fs.writeFileSync(options.out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stderr.write(`bench: written to ${options.out}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`bench failed: ${err.message}\n`);
      process.exit(2);
    },
  );
}
