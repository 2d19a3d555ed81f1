/**
 * A whole world for end-to-end runs: Azurite (Table Storage), the managed-identity endpoint,
 * Microsoft Graph over https and TeamViewer SCIM, all on loopback. The demo, the benchmarks and
 * the end-to-end tests use it; the product code under test is the real thing, configured only
 * through settings.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite } from './azurite';
import { startGraphEmulator, type EmulatedTenant, type GraphEmulator } from '../emulators/graph';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { startTeamViewerEmulator, type TeamViewerEmulator, type TeamViewerEmulatorOptions } from '../emulators/teamviewer';
import { sampleTenant, SP_ID } from './tenant';

/** The repository root, from the sources (test/support) or the build (dist/test/support). */
export const REPO_ROOT = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')].find((dir) =>
  fs.existsSync(path.join(dir, 'package.json')),
) as string;
export const CA_CERT = path.join(REPO_ROOT, 'test', 'emulators', 'certs', 'localhost.crt');

export interface WorldOptions {
  tenant?: EmulatedTenant;
  teamViewer?: TeamViewerEmulatorOptions;
  graphPageSize?: number;
  /** An Azurite connection string to share (one Azurite for a whole test file); a table prefix keeps worlds apart. */
  storageConnectionString?: string;
  /**
   * A managed-identity endpoint to share. MSAL remembers the endpoint (and its tokens) once per
   * process, so a process that starts several worlds must give them the same one.
   */
  identity?: IdentityEmulator;
}

export interface World {
  tenant: EmulatedTenant;
  graph: GraphEmulator;
  identity: IdentityEmulator;
  teamViewer: TeamViewerEmulator;
  /** Settings (and the managed-identity variables) for tvsync, as an admin would set them. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const tenant = options.tenant ?? sampleTenant();
  const azurite = options.storageConnectionString ? null : await startAzurite();
  const identity = options.identity ?? (await startIdentityEmulator());
  const graph = await startGraphEmulator({ tenant, pageSize: options.graphPageSize ?? 100, isValidToken: (t) => identity.isValid(t) });
  const teamViewer = await startTeamViewerEmulator({ tokenOwner: { userName: 'it-admin@contoso.example', name: 'IT Admin' }, ...options.teamViewer });
  const env: Record<string, string> = {
    AzureWebJobsStorage: options.storageConnectionString ?? azurite!.connectionString,
    STATE_TABLE_PREFIX: `t${randomBytes(5).toString('hex')}`,
    ENTRA_SERVICE_PRINCIPAL_ID: SP_ID,
    GRAPH_BASE_URL: graph.url,
    TEAMVIEWER_SCIM_URL: teamViewer.url,
    TEAMVIEWER_API_TOKEN: teamViewer.token,
    IDENTITY_ENDPOINT: identity.endpoint,
    IDENTITY_HEADER: identity.header,
    NODE_EXTRA_CA_CERTS: CA_CERT,
  };
  return {
    tenant,
    graph,
    identity,
    teamViewer,
    env,
    async close() {
      await Promise.allSettled([graph.close(), options.identity ? undefined : identity.close(), teamViewer.close(), azurite?.stop()]);
    },
  };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `tvsync` bin (the compiled CLI) in a child process with `env` and nothing else
 * from this process but PATH, in an empty folder (so no local.settings.json is picked up).
 */
export function runCli(args: string[], env: Record<string, string>, options: { onStart?: (child: ReturnType<typeof spawn>) => void; timeoutMs?: number } = {}): Promise<CliRun> {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-cli-'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'tvsync.js'), ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    options.onStart?.(child);
  });
}
