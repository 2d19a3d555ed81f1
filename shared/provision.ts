/**
 * Provision on demand: one user, now, in Entra's five steps — connection test, import, scope
 * evaluation, matching, action — each with its result and the reason in plain words.
 *
 * It plans with the same planner as a cycle, given the links that bear on this user — its own and
 * those holding a TeamViewer user that matches it (so a TeamViewer user linked to someone else is
 * never taken), read by key, never the whole table — but only this user (`subset`: nobody else
 * gets an action), and
 * applies under the run lease, so it never races a cycle.
 */
import type { Logger } from './log';
import type { EntraReader } from './entra/reader';
import type { TeamViewerClient } from './teamviewer/client';
import type { StateStore } from './state/store';
import type { ActionReport } from './domain/model';
import { applyAction, dryRunReport } from './sync/apply-user';
import { provisionGroups, type ProvisionGroupDeps } from './provision-groups';
import { wantsInactive } from './sync/cycle/plan-groups';
import { acquireLease } from './sync/lease';
import { attributesNeeded, mapUser, type DesiredUser, type SyncConfig } from './sync/mapping';
import type { AssignedUser, Link, TeamViewerUser } from './domain/model';
import { deactivates, plan } from './sync/planner';

/** Entra's five steps, and (GROUP_PROVISIONING=assigned) the user groups the user joins or leaves. */
export type StepName = 'connection test' | 'import' | 'scope evaluation' | 'matching' | 'action' | 'groups';

export interface ProvisionStep {
  step: StepName;
  status: 'success' | 'failure' | 'skipped' | 'warning';
  detail: string;
  durationMs: number;
}

export interface ProvisionResult {
  query: string;
  dryRun: boolean;
  ok: boolean;
  steps: ProvisionStep[];
  action: ActionReport | null;
}

export interface ProvisionDeps {
  entra: EntraReader;
  teamViewer: TeamViewerClient;
  store: StateStore;
  logger: Logger;
  config: SyncConfig;
  /** GROUP_PROVISIONING=assigned: the user groups are a sixth step. */
  groups?: ProvisionGroupDeps;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function provisionOnDemand(deps: ProvisionDeps, query: string, options: { dryRun?: boolean } = {}): Promise<ProvisionResult> {
  const dryRun = options.dryRun ?? false;
  const steps: ProvisionStep[] = [];
  const result: ProvisionResult = { query, dryRun, ok: false, steps, action: null };
  const step = async <T>(name: StepName, fn: () => Promise<{ status: ProvisionStep['status']; detail: string; value?: T }>): Promise<T | undefined> => {
    const started = Date.now();
    try {
      const outcome = await fn();
      steps.push({ step: name, status: outcome.status, detail: outcome.detail, durationMs: Date.now() - started });
      return outcome.status === 'failure' ? undefined : outcome.value;
    } catch (err) {
      steps.push({ step: name, status: 'failure', detail: message(err), durationMs: Date.now() - started });
      return undefined;
    }
  };
  const skipRest = (from: StepName[]) => {
    for (const name of from) steps.push({ step: name, status: 'skipped', detail: 'not reached', durationMs: 0 });
  };

  // 1. Connection test (and the token owner, who is never deactivated).
  const owner = await step<{ id: string } | null>('connection test', async () => {
    await deps.teamViewer.testConnection();
    const found = await deps.teamViewer.getTokenOwner().catch(() => null);
    return { status: 'success', detail: `TeamViewer accepted the token${found ? `; it belongs to ${found.userName}` : ' (its owner could not be identified: deactivation is held back)'}`, value: found };
  });
  if (owner === undefined) {
    skipRest(['import', 'scope evaluation', 'matching', 'action']);
    return result;
  }

  // 2. Import: the user, with the attributes the mappings and filters read, and how it is assigned.
  const imported = await step<AssignedUser>('import', async () => {
    const read = await deps.entra.readUser(query.trim(), attributesNeeded(deps.config));
    if (!read) return { status: 'failure', detail: `no user "${query}" in Entra ID (searched by object id and by userPrincipalName)` };
    const assignments = await deps.entra.readAssignmentFingerprint();
    const groups = await deps.entra.readUserGroupIds(read.user.id, deps.config.expandNestedGroups);
    const id = read.user.id.toLowerCase();
    const direct = assignments.directUserIds.includes(id);
    const viaGroups = assignments.groupIds.filter((g) => groups.has(g));
    const appRoleIds = [...new Set([...(assignments.roles.get(id) ?? []), ...viaGroups.flatMap((g) => [...(assignments.roles.get(g) ?? [])])])];
    const user: AssignedUser = {
      ...read.user,
      direct,
      viaGroups,
      appRoleIds,
      ...(read.appRoleValues ? { appRoleValues: appRoleIds.map((r) => read.appRoleValues!.get(r) ?? r) } : {}),
    };
    const how = direct ? 'assigned directly' : viaGroups.length ? `assigned through ${viaGroups.length} group(s)` : 'not assigned to the TeamViewer application';
    return { status: 'success', detail: `read ${user.userPrincipalName} (${user.id}), ${user.accountEnabled ? 'enabled' : 'disabled'}, ${how}`, value: user };
  });
  if (!imported) {
    skipRest(['scope evaluation', 'matching', 'action']);
    return result;
  }

  // 3. Scope evaluation.
  const desired = (await step<DesiredUser>('scope evaluation', async () => {
    let mapped = mapUser(imported, deps.config);
    if (deps.config.scope === 'assigned' && !imported.direct && imported.viaGroups.length === 0) {
      mapped = { ...mapped, entitled: false, notEntitled: { kind: 'out-of-scope', reason: `not assigned to the TeamViewer application, directly or through a${deps.config.expandNestedGroups ? '' : ' directly'} assigned group` } };
    }
    if (mapped.error && !mapped.notEntitled) return { status: 'failure', detail: mapped.error.message };
    if (!mapped.entitled) {
      const reason = mapped.notEntitled?.reason ?? '';
      const label = mapped.notEntitled?.kind === 'out-of-scope' ? 'out of scope' : 'not entitled';
      return { status: 'success', detail: reason.startsWith(label) ? reason : `${label}: ${reason}`, value: mapped };
    }
    return { status: 'success', detail: `in scope${deps.config.filters.length ? ' (scoping filters passed)' : ''}; it should have an active TeamViewer account`, value: mapped };
  }))!;
  if (!desired) {
    skipRest(['matching', 'action']);
    return result;
  }

  // 4. Matching: the link in state, else the userName in TeamViewer. Only the links that bear on
  // this user are read: its own, and the holders of the TeamViewer users that match it.
  const link = (await deps.store.getLink(imported.id)) ?? (imported.id !== imported.id.toLowerCase() ? await deps.store.getLink(imported.id.toLowerCase()) : null) ?? undefined;
  const holders: Link[] = [];
  const candidates = await step<TeamViewerUser[]>('matching', async () => {
    if (link?.teamViewerId) {
      const current = await deps.teamViewer.getUser(link.teamViewerId);
      if (current) return { status: 'success', detail: `linked to TeamViewer user ${current.id} (${current.userName}, ${current.active ? 'active' : 'inactive'})`, value: [current] };
    }
    const userName = typeof desired.attributes.userName?.value === 'string' ? desired.attributes.userName.value : imported.userPrincipalName;
    const spellings = [...new Set([userName, userName.toLowerCase()])];
    const found = new Map<string, TeamViewerUser>();
    for (const spelling of spellings) for (const u of await deps.teamViewer.findByUserName(spelling)) found.set(u.id, u);
    const list = [...found.values()];
    for (const u of list) {
      const holder = await deps.store.findLinkByTeamViewerId(u.id);
      if (holder && holder.entraId !== imported.id) holders.push(holder);
    }
    const taken = list.filter((u) => holders.some((l) => l.teamViewerId === u.id));
    const detail = list.length === 0
      ? `no TeamViewer user has the userName ${userName}`
      : `TeamViewer user${list.length > 1 ? 's' : ''} ${list.map((u) => `${u.id} (${u.userName})`).join(', ')} match${list.length > 1 ? '' : 'es'} the userName ${userName}${taken.length ? `; ${taken.map((u) => u.id).join(', ')} already linked to another Entra user` : ''}`;
    return { status: list.length > 1 ? 'warning' : 'success', detail, value: list };
  });
  if (!candidates) {
    skipRest(['action']);
    return result;
  }

  // 5. Action: the planner's verdict for this one user, applied under the run lease.
  const links = [...(link ? [link] : []), ...holders];
  const planned = plan({ users: [desired], links, teamViewer: candidates, protectedTeamViewerIds: new Set(owner ? [owner.id] : []), skipOutOfScopeDeletions: deps.config.skipOutOfScopeDeletions, subset: true });
  const action = planned.actions.find((a) => a.entraId === imported.id) ?? null;
  await step('action', async () => {
    if (!action) {
      return {
        status: 'success',
        detail: desired.entitled
          ? 'nothing to do: TeamViewer already matches Entra ID for this user'
          : 'nothing to do: the user is not entitled and has no active TeamViewer account that tvsync manages (none is created)',
      };
    }
    if (dryRun) return { status: action.kind === 'fail' ? 'failure' : 'skipped', detail: `would ${action.kind}${'reason' in action ? `: ${action.reason}` : ''} (dry run: nothing written)` };
    if (action.kind === 'fail') return { status: 'failure', detail: `${action.code}: ${action.reason}` };
    if (action.kind === 'skip') return { status: action.warning ? 'warning' : 'skipped', detail: action.reason };
    if (deactivates(action) && owner === null) {
      return { status: 'warning', detail: 'deactivation held back: the account that owns the TeamViewer token could not be identified (grant the token "Account management: view account data")' };
    }
    const lease = await acquireLease(deps.store, { purpose: 'provision on demand', logger: deps.logger });
    try {
      const report = await applyAction(action, link, { teamViewer: deps.teamViewer, state: deps.store, logger: deps.logger }, () => new Date());
      result.action = report;
      const changes = report.changes.map((c) => `${c.attribute}: ${JSON.stringify(c.old)} → ${JSON.stringify(c.new)}`).join(', ');
      return {
        status: report.status === 'failure' ? 'failure' : report.status === 'warning' ? 'warning' : 'success',
        detail: report.status === 'failure' ? `${report.kind} failed: ${report.error?.message}` : `${report.kind}${report.teamViewerId ? ` TeamViewer user ${report.teamViewerId}` : ''}${changes ? ` (${changes})` : ''}${report.reason ? ` — ${report.reason}` : ''}`,
      };
    } finally {
      await lease.release();
    }
  });
  if (deps.groups && steps[steps.length - 1]?.status !== 'failure') {
    const groups = deps.groups;
    const report = result.action ?? (dryRun && action ? dryRunReport(action) : null);
    await step('groups', async () => {
      const lease = dryRun ? null : await acquireLease(deps.store, { purpose: 'provision on demand (user groups)', logger: deps.logger });
      try {
        return await provisionGroups({ entra: deps.entra, groups }, imported, link, report, dryRun, action !== null && wantsInactive(action, owner?.id ?? null));
      } finally {
        await lease?.release();
      }
    });
  }
  result.ok = steps.every((s) => s.status !== 'failure');
  return result;
}

export function formatProvision(result: ProvisionResult): string {
  const lines = [`Provision on demand: ${result.query}${result.dryRun ? ' (dry run)' : ''}`];
  result.steps.forEach((s, i) => {
    const mark = s.status === 'success' ? 'ok     ' : s.status === 'failure' ? 'FAILED ' : s.status === 'warning' ? 'warning' : 'skipped';
    lines.push(`  ${i + 1}. ${s.step.padEnd(17)} ${mark} ${s.detail}`);
  });
  lines.push(result.ok ? 'Done.' : 'Not done: see the failed step.');
  return `${lines.join('\n')}\n`;
}
