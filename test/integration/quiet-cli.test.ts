/**
 * The CLI prints only its own output: it imports the handlers (shared/handlers), never the modules
 * that register Functions (functions/*.ts), whose registrations print warnings outside the host.
 * Driven through the compiled bin, as an admin runs it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/world';

const run = promisify(execFile);
const HOST_WARNING = /WARNING: (Failed to detect the Azure Functions runtime|Skipping call to register function)/;

describe('tvsync prints only its own output', () => {
  it('When `tvsync status` runs with no settings, then it prints the settings problem and nothing else', async () => {
    const result = await runCli(['status'], {});
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^tvsync cannot start: 3 settings are wrong \(read from the environment\):$/);
    expect(lines.slice(1).map((l) => l.replace(/^ {2}- (\w+): .*$/, '$1'))).toEqual(['ENTRA_SERVICE_PRINCIPAL_ID', 'TEAMVIEWER_API_TOKEN', 'AzureWebJobsStorage']);
  });

  it('When `tvsync help` or a wrong command runs (also one named like a key of Object.prototype), then it answers first and alone', async () => {
    const help = await runCli(['help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^tvsync — provision Microsoft Entra ID users/);
    expect(help.stderr).toBe('');
    for (const command of ['sink', 'constructor', '__proto__', 'toString']) {
      const wrong = await runCli([command], {});
      expect(wrong.code, command).toBe(2);
      expect(wrong.stderr).toMatch(new RegExp(`^tvsync: unknown command "${command}"`));
      expect(wrong.stderr).not.toMatch(HOST_WARNING);
    }
  });

  it('When the Functions worker loads dist/functions/*.js, then they register the eight functions (and nothing else does)', async () => {
    // Outside the host @azure/functions runs in test mode and names each registration it skips.
    const script = `for (const f of ['status', 'logs', 'sync', 'operator']) require(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'functions'))} + '/' + f + '.js');`;
    const { stderr } = await run(process.execPath, ['-e', script], { cwd: REPO_ROOT });
    const registered = [...stderr.matchAll(/Skipping call to register function "([^"]+)"/g)].map((m) => m[1]).sort();
    expect(registered).toEqual(['allow-deactivations', 'logs', 'provision', 'restart', 'run', 'status', 'sync', 'test-connection']);
  });
});
