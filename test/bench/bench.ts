/**
 * `npm run bench`: how long cycles take and what they cost, against the local emulators and
 * Azurite (so the numbers measure tvsync's own work plus loopback HTTP, not the internet).
 *
 * For each tenant size: an initial cycle (everything created), then a cycle with no changes.
 * Reported: wall time, users per second, Graph and TeamViewer requests, TeamViewer writes, and
 * the process's peak RSS. Sizes: `npm run bench -- 1000 5000` (default 1000 and 5000).
 */
import { createApp } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { silentLogger } from '../../shared/log';
import { sampleTenant } from '../support/tenant';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { startWorld } from '../support/world';

interface Row {
  users: number;
  cycle: string;
  seconds: number;
  perSecond: number;
  graphRequests: number;
  teamViewerRequests: number;
  teamViewerWrites: number;
  rssMiB: number;
}

async function measure(size: number, identity: IdentityEmulator): Promise<Row[]> {
  const world = await startWorld({ tenant: sampleTenant({ users: size, groups: 10 }), graphPageSize: 999, identity });
  try {
    Object.assign(process.env, world.env);
    const app = await createApp(loadSettings({ env: process.env, localSettingsDir: null }), { logger: silentLogger });
    const rows: Row[] = [];
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    for (const label of ['initial', 'no changes (delta)']) {
      world.graph.resetRequests();
      world.teamViewer.resetRequests();
      const started = process.hrtime.bigint();
      const report = await app.runCycle({ trigger: 'cli' });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (report.result !== 'succeeded') throw new Error(`${label} cycle ${report.result}: ${report.error?.message ?? JSON.stringify(report.counts)}`);
      rows.push({
        users: size,
        cycle: label,
        seconds: Math.round(seconds * 100) / 100,
        perSecond: Math.round(report.imported / seconds),
        graphRequests: world.graph.requests.length,
        teamViewerRequests: world.teamViewer.requests.length,
        teamViewerWrites: world.teamViewer.writes(),
        rssMiB: Math.round(peak / 1048576),
      });
    }
    // One change: a display name edited in Entra (delta notices it; the cycle reads everything).
    world.tenant.users[1].displayName = 'Changed For Bench';
    world.graph.resetRequests();
    world.teamViewer.resetRequests();
    let started = process.hrtime.bigint();
    const changed = await app.runCycle({ trigger: 'cli' });
    let seconds = Number(process.hrtime.bigint() - started) / 1e9;
    rows.push({ users: size, cycle: 'one change', seconds: Math.round(seconds * 100) / 100, perSecond: Math.round(changed.imported / seconds), graphRequests: world.graph.requests.length, teamViewerRequests: world.teamViewer.requests.length, teamViewerWrites: world.teamViewer.writes(), rssMiB: Math.round(peak / 1048576) });
    // Provision on demand for one user (Entra's target: under 30 s; ours: under 5 s).
    world.graph.resetRequests();
    world.teamViewer.resetRequests();
    started = process.hrtime.bigint();
    const one = await app.provision(world.tenant.users[2].userPrincipalName);
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (!one.ok) throw new Error(`provision on demand failed: ${JSON.stringify(one.steps)}`);
    rows.push({ users: size, cycle: 'provision one user', seconds: Math.round(seconds * 100) / 100, perSecond: 0, graphRequests: world.graph.requests.length, teamViewerRequests: world.teamViewer.requests.length, teamViewerWrites: world.teamViewer.writes(), rssMiB: Math.round(peak / 1048576) });
    clearInterval(sampler);
    return rows;
  } finally {
    await world.close();
  }
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const rows: Row[] = [];
  const identity = await startIdentityEmulator();
  for (const size of sizes.length ? sizes : [1000, 5000]) rows.push(...(await measure(size, identity)));
  await identity.close();
  const header = '| users (tenant) | cycle | seconds | users/s read | Graph requests | TeamViewer requests | TeamViewer writes | peak RSS MiB |';
  process.stdout.write(`${header}\n|---|---|---|---|---|---|---|---|\n`);
  for (const r of rows) {
    process.stdout.write(`| ${r.users} | ${r.cycle} | ${r.seconds} | ${r.perSecond} | ${r.graphRequests} | ${r.teamViewerRequests} | ${r.teamViewerWrites} | ${r.rssMiB} |\n`);
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
