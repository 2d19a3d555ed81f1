/**
 * A throwaway Azurite table service for tests and the demo: in memory, on a free loopback port.
 * Plain function, no test-framework imports.
 *
 * Invariant: once startAzurite resolves, the port is served by the Azurite we spawned (it printed
 * that it started, and it accepts connections), not by whoever else grabbed the port meanwhile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { devConnectionString } from '../../shared/state/target';
import { freePort } from './ports';

export interface Azurite {
  connectionString: string;
  port: number;
  /** Azurite's process; with `preload` it has an IPC channel to the preloaded script. */
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** How long one start may take before giving up (default 20 s). */
  startTimeoutMs?: number;
  /** Fresh ports to try when another process took ours (default 3). */
  attempts?: number;
  /** Where ports come from (default freePort); tests of the retry hand out a taken one. */
  choosePort?: () => Promise<number>;
  /**
   * A script Azurite's node loads first (`--require`), given an IPC channel: the benchmark's
   * (PartitionKey, RowKey) index (test/bench/azurite-index-preload.ts). Default none: the test
   * suite's Azurite is stock.
   */
  preload?: string;
}

const HOST = '127.0.0.1';

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const attempts = options.attempts ?? 3;
  const entry = azuriteTableEntry();
  for (let attempt = 1; ; attempt++) {
    const port = await (options.choosePort ?? freePort)();
    try {
      const child = await launch(entry, port, options.startTimeoutMs ?? 20_000, options.preload);
      return { connectionString: devConnectionString(port, HOST), port, process: child, stop: () => stopChild(child) };
    } catch (error) {
      // freePort can only promise the port was free a moment ago.
      if (error instanceof PortTakenError && attempt < attempts) continue;
      throw error;
    }
  }
}

class PortTakenError extends Error {}

/** The azurite-table script of the installed azurite package, found from here up (source or dist). */
function azuriteTableEntry(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'node_modules', 'azurite', 'package.json');
    if (fs.existsSync(manifest)) {
      const bin = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { bin: Record<string, string> }).bin['azurite-table'];
      if (!bin) throw new Error(`${manifest} declares no azurite-table bin`);
      return path.join(path.dirname(manifest), bin);
    }
    if (path.dirname(dir) === dir) throw new Error('azurite is not installed (no node_modules/azurite above test/support)');
  }
}

async function launch(entry: string, port: number, timeoutMs: number, preload: string | undefined): Promise<ChildProcess> {
  // Same as node_modules/.bin/azurite-table, but run by this node so the pid we kill is Azurite's.
  const child = spawn(
    process.execPath,
    [
      ...(preload ? ['--require', preload] : []),
      entry,
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--tableHost',
      HOST,
      '--tablePort',
      String(port),
      '--silent',
    ],
    { stdio: preload ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const failure = (why: string) =>
    new Error(`Azurite (table, port ${port}) ${why}.\nstderr: ${stderr.trim() || '(empty)'}\nstdout: ${stdout.trim() || '(empty)'}`);

  const deadline = Date.now() + timeoutMs;
  const started = () => stdout.includes('successfully started');
  while (!(started() && (await accepts(port)))) {
    const code = await Promise.race([exited, delay(50).then(() => 'running' as const)]);
    if (code !== 'running') {
      if (stderr.includes('EADDRINUSE')) throw new PortTakenError(failure('found its port taken').message);
      throw failure(`exited with code ${code} before it was ready`);
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw failure(`was not ready after ${timeoutMs} ms`);
    }
  }
  return child;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.setTimeout(500);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
