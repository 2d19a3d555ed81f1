/**
 * `npm run demo`: the worker end to end on embedded defaults. Starts Azurite (in memory), the
 * managed-identity endpoint, Microsoft Graph (https) and TeamViewer emulators with a sample
 * tenant, runs an initial cycle, changes the tenant, runs an incremental cycle, prints what each
 * did, then serves the status endpoint until Ctrl-C (`--once` stops after the two cycles).
 *
 * The product code runs exactly as in Azure: settings through the config module, Graph tokens
 * through DefaultAzureCredential's managed-identity path, state in Table Storage.
 */
import { createApp } from '../../shared/app';
import { formatReport, formatStatus } from '../../shared/cli';
import { loadSettings } from '../../shared/config';
import { createLogger } from '../../shared/log';
import { serve } from '../../shared/serve';
import { sampleTenant, userId } from '../support/tenant';
import { startWorld } from '../support/world';

async function main(argv: string[]): Promise<number> {
  const once = argv.includes('--once');
  const portArg = argv.indexOf('--port');
  const port = portArg >= 0 ? Number(argv[portArg + 1]) : 7071;
  const out = (text: string) => process.stdout.write(text);

  out('Starting Azurite, the managed-identity endpoint, Microsoft Graph and TeamViewer emulators…\n');
  // One new hire's address is already registered to a TeamViewer account outside the company:
  // the demo shows how a failure is reported (and escrowed) without stopping the others.
  const world = await startWorld({ tenant: sampleTenant({ users: 300, groups: 6 }), graphPageSize: 100, teamViewer: { externalEmails: ['new.hire4@contoso.example'] } });
  const closeAll = async () => world.close();
  try {
    // Two people already have TeamViewer accounts (one under another letter case): they get linked.
    const scoped = world.tenant.users.filter((u) => u.accountEnabled && world.tenant.assignments.some((a) => a.principalId === u.id));
    world.teamViewer.seed({ userName: scoped[0].userPrincipalName, displayName: scoped[0].displayName ?? 'Existing user' });
    world.teamViewer.seed({ userName: scoped[1].userPrincipalName.toUpperCase(), displayName: 'Old display name' });

    Object.assign(process.env, world.env);
    const settings = loadSettings({ env: process.env, localSettingsDir: null });
    const logger = createLogger((level, message) => {
      if (level === 'warn' || level === 'error') process.stderr.write(`${level}: ${message}\n`);
    });
    const app = await createApp(settings, { logger });
    out(`Tenant: ${world.tenant.users.length} users, ${world.tenant.groups.length} groups, ${world.tenant.assignments.length} app assignments.\n\n`);

    const first = await app.runCycle({ trigger: 'demo' });
    out(formatReport(first));

    out('\nChanging the tenant: 3 renames, 5 unassignments, 1 disabled account, 4 new hires…\n\n');
    const inScope = world.tenant.users.filter((u) => u.accountEnabled && world.tenant.assignments.some((a) => a.principalId === u.id && a.principalType === 'User'));
    for (const u of inScope.slice(0, 3)) u.userPrincipalName = `renamed.${u.userPrincipalName}`;
    const unassign = new Set(inScope.slice(3, 8).map((u) => u.id));
    world.tenant.assignments = world.tenant.assignments.filter((a) => !unassign.has(a.principalId));
    inScope[8].accountEnabled = false;
    for (let n = 0; n < 4; n++) {
      const id = userId(5000 + n);
      world.tenant.users.push({ id, userPrincipalName: `new.hire${n + 1}@contoso.example`, displayName: `New Hire ${n + 1}`, givenName: 'New', surname: `Hire ${n + 1}`, mail: `new.hire${n + 1}@contoso.example`, accountEnabled: true });
      world.tenant.groups[n % world.tenant.groups.length].members.push(id);
    }

    const second = await app.runCycle({ trigger: 'demo' });
    out(formatReport(second));
    out(`\n${formatStatus(await app.status())}`);

    // The demo's one expected failure (new.hire4) makes the second cycle "partial"; anything else fails the demo.
    const ok = first.result === 'succeeded' && second.result === 'partial' && second.counts.failed === 1;
    if (once) {
      out(`\nRun "npm run demo" without --once to serve the status page at http://localhost:${port}/api/status.\n`);
      return ok ? 0 : 1;
    }

    const server = await serve({ port, beatSeconds: 60, logger });
    out(`\nStatus page: ${server.url}/status (open it in a browser; JSON for scripts) — Ctrl-C to stop.\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await server.close();
    return 0;
  } finally {
    await closeAll();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
