/**
 * The benchmark's emulator host: a child process of the harness (test/bench/bench.ts) that runs
 * the managed-identity endpoint, Microsoft Graph (https), TeamViewer and a counting proxy in front
 * of Azurite, so none of their work lands in the measured tvsync process or in the harness.
 *
 * The harness drives it over IPC with `HostCommand` messages and gets one `HostReply` per command.
 * Worlds are kept here (tenants of up to 100,000 users never cross the IPC channel); the harness
 * only holds their ids, their settings for tvsync and the counts it asks for.
 */
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import type { EmulatedTenant } from '../emulators/graph';
import { startWorld, type World } from '../support/world';
import { expectedInScope, SP_ID, sampleTenant, userId } from '../support/tenant';
import { devConnectionString } from '../../shared/state/target';
import { startTableProxy, type TableCounts, type TableProxy } from './table-proxy';

export interface Pace {
  latencyMs: number;
  /** TeamViewer answers 403 rate_limit_reached above this many requests per second. */
  rateLimitPerSecond?: number;
}

export interface WorldSpec {
  users: number;
  /** 'empty': only the token's owner; 'all': every in-scope user exists already (matching only). */
  teamViewer: 'empty' | 'all';
  pace: Pace;
}

/** What the 1 % change did, so the harness can check the cycle's counts against it. */
export interface ChangeSummary {
  renamed: number;
  unassigned: number;
  hired: number;
}

export interface Counters {
  graph: { requests: number; batchSubRequests: number };
  teamViewer: { GET: number; POST: number; PATCH: number; other: number; total: number; throttled: number; peakInFlight: number };
  table: TableCounts;
}

export type HostCommand =
  | { cmd: 'start'; azurite: { host: string; port: number } }
  | { cmd: 'world'; spec: WorldSpec }
  | { cmd: 'pace'; world: number; pace: Pace }
  | { cmd: 'change'; world: number; percent: number }
  | { cmd: 'hire'; world: number }
  | { cmd: 'reset'; world: number }
  | { cmd: 'counters'; world: number }
  | { cmd: 'closeWorld'; world: number }
  | { cmd: 'stop' };

export type HostReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

interface HostedWorld {
  world: World;
  /** In-scope users when the world was made (the users an initial cycle provisions). */
  inScope: number;
  hires: number;
}

let identity: IdentityEmulator | null = null;
let proxy: TableProxy | null = null;
const worlds = new Map<number, HostedWorld>();
let nextWorld = 1;

function hosted(id: number): HostedWorld {
  const found = worlds.get(id);
  if (!found) throw new Error(`no world ${id}`);
  return found;
}

async function makeWorld(spec: WorldSpec): Promise<{ world: number; env: Record<string, string>; inScope: number }> {
  if (!identity || !proxy) throw new Error('the host was not started');
  const tenant = sampleTenant({ users: spec.users, groups: 10 });
  const world = await startWorld({
    tenant,
    graphPageSize: 999,
    identity,
    storageConnectionString: devConnectionString(proxy.port),
    teamViewer: { latencyMs: spec.pace.latencyMs, rateLimitPerSecond: spec.pace.rateLimitPerSecond },
  });
  world.graph.latencyMs = spec.pace.latencyMs;
  const inScope = expectedInScope(tenant);
  if (spec.teamViewer === 'all') {
    for (const user of tenant.users) {
      if (inScope.has(user.id)) world.teamViewer.seed({ userName: user.userPrincipalName, displayName: user.displayName ?? undefined });
    }
  }
  const id = nextWorld++;
  worlds.set(id, { world, inScope: inScope.size, hires: 0 });
  return { world: id, env: world.env, inScope: inScope.size };
}

/**
 * About `percent` % of the tenant changes, in equal parts: renames (display name), unassignments
 * (a direct assignment removed, or the user taken out of its assigned groups) and new hires
 * (assigned directly). Spread over the whole tenant, deterministic.
 */
function change(h: HostedWorld, percent: number): ChangeSummary {
  const tenant = h.world.tenant;
  const inScope = expectedInScope(tenant);
  const candidates = tenant.users.filter((u) => inScope.has(u.id));
  const total = Math.max(3, Math.round((tenant.users.length * percent) / 100));
  const step = Math.max(1, Math.floor(candidates.length / total));
  const leaving = new Set<string>();
  const summary: ChangeSummary = { renamed: 0, unassigned: 0, hired: 0 };
  for (let j = 0; j < total; j++) {
    if (j % 3 === 2) {
      hire(h, tenant, `bench.hire.${++h.hires}`);
      summary.hired++;
      continue;
    }
    const user = candidates[(j * step + 7) % candidates.length]!;
    if (j % 3 === 0) {
      user.displayName = `${user.givenName ?? 'Renamed'} Renamed-${j}`;
      summary.renamed++;
    } else {
      leaving.add(user.id);
      summary.unassigned++;
    }
  }
  tenant.assignments = tenant.assignments.filter((a) => !leaving.has(a.principalId));
  for (const group of tenant.groups) group.members = group.members.filter((m) => !leaving.has(m));
  return summary;
}

function hire(h: HostedWorld, tenant: EmulatedTenant, login: string): string {
  const id = userId(10_000_000 + tenant.users.length);
  const userPrincipalName = `${login}@contoso.example`;
  tenant.users.push({
    id, userPrincipalName, displayName: `New Hire ${h.hires}`, givenName: 'New', surname: `Hire ${h.hires}`,
    mail: userPrincipalName, accountEnabled: true, department: 'Sales', jobTitle: 'Specialist',
  });
  tenant.assignments.push({ id: `asg-bench-${id}`, resourceId: SP_ID, principalId: id, principalType: 'User', appRoleId: '00000000-0000-0000-0000-000000000000' });
  return userPrincipalName;
}

function counters(h: HostedWorld): Counters {
  const tv = { GET: 0, POST: 0, PATCH: 0, other: 0, total: 0, throttled: 0, peakInFlight: h.world.teamViewer.peakInFlight() };
  for (const r of h.world.teamViewer.requests) {
    tv.total++;
    if (r.method === 'GET' || r.method === 'POST' || r.method === 'PATCH') tv[r.method]++;
    else tv.other++;
    if (r.status === 429 || r.status === 403) tv.throttled++;
  }
  return {
    graph: { requests: h.world.graph.requests.length, batchSubRequests: h.world.graph.batchRequests.length },
    teamViewer: tv,
    table: proxy!.counts(),
  };
}

async function run(command: HostCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'start':
      identity = await startIdentityEmulator();
      proxy = await startTableProxy(command.azurite);
      return { tablePort: proxy.port };
    case 'world':
      return makeWorld(command.spec);
    case 'pace': {
      const { world } = hosted(command.world);
      world.graph.latencyMs = command.pace.latencyMs;
      world.teamViewer.setPace(command.pace);
      return null;
    }
    case 'change':
      return change(hosted(command.world), command.percent);
    case 'hire': {
      const h = hosted(command.world);
      h.hires++;
      return { userPrincipalName: hire(h, h.world.tenant, `bench.provision.${h.hires}`) };
    }
    case 'reset': {
      const { world } = hosted(command.world);
      world.graph.resetRequests();
      world.teamViewer.resetRequests();
      proxy!.reset();
      return null;
    }
    case 'counters':
      return counters(hosted(command.world));
    case 'closeWorld': {
      const h = worlds.get(command.world);
      worlds.delete(command.world);
      await h?.world.close();
      return null;
    }
    case 'stop':
      await Promise.allSettled([...worlds.values()].map((h) => h.world.close()));
      worlds.clear();
      await Promise.allSettled([identity?.close(), proxy?.close()]);
      setImmediate(() => process.exit(0));
      return null;
  }
}

// Commands are handled one at a time, in order: the harness waits for each reply anyway, and a
// world must exist before it is changed.
let queue: Promise<void> = Promise.resolve();
process.on('message', (message: HostCommand & { id: number }) => {
  queue = queue.then(async () => {
    let reply: HostReply;
    try {
      reply = { id: message.id, ok: true, value: await run(message) };
    } catch (err) {
      reply = { id: message.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
    }
    process.send!(reply);
  });
});
// Orphaned (the harness died): leave, so no emulator outlives its benchmark.
process.on('disconnect', () => process.exit(0));
