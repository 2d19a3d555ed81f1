/**
 * User groups as a kind of work for the apply machinery (apply.ts), applied after users: one Entra
 * group's planned steps as one piece of work — carried out by group-writer.ts — reported, logged
 * (one provisioning-log record per step) and counted.
 *
 * Invariants:
 * - One piece of work is one Entra group. Its steps run in order (the create before its members,
 *   the members out before an adopted group is unlinked) and stop at the first call that fails; a
 *   step the planner already failed (a name taken) is reported and the others still go. Groups run
 *   side by side.
 * - Members are planned again here, from the user links as this cycle's user changes left them: a
 *   user created or linked now joins its groups in the same cycle, a user deactivated now leaves
 *   them; a user whose deactivation was wanted but did not happen (staged, the token's owner,
 *   failed, skipped) leaves none. The groups that go are exactly the deletions the guard judged
 *   (plan-groups.ts).
 * - TEAMVIEWER_GROUPS_FORBIDDEN (a missing right or licence) stops group work only: one failure
 *   names the missing right, every other group is skipped saying why, users are unaffected. A
 *   rejected token (401) stops every write, as for users.
 * - A group going that the guard holds is staged and never sent; a group going never waits for
 *   an escrow.
 * - A dry run writes nothing: each step is reported planned, members with a count and a sample.
 */
import { randomUUID } from 'node:crypto';
import type { ActionReport, AttributeChange, GroupFailure, Link } from '../../domain/model';
import type { GroupLink, GroupReport, GroupStepKind, GroupStepReport } from '../../domain/group-model';
import { newLogRecordId, type ProvisioningLogAction, type ProvisioningLogRecord } from '../../state/logs';
import { errorInfo, type ErrorInfo } from '../error-info';
import { planGroups, type GroupAction } from '../group-planner';
import type { Applier, WorkKind } from './apply';
import { FORBIDDEN, GroupWriter } from './group-writer';
import type { GuardRun } from './guard';
import { groupPlanInput, groupsToChange, type GroupPhase, type UserLinkView } from './plan-groups';
import type { GroupDeps } from './ports';
import type { Snapshot } from './read';
import type { GroupsSnapshot } from './read-groups';
import type { CycleRun } from './run';

/** One Entra group's planned steps, in order. */
export interface GroupWork {
  entraGroupId: string;
  name: string;
  actions: GroupAction[];
  /** The group goes (deleted, or emptied and unlinked): judged by the guard, never held by an escrow. */
  going: boolean;
}

const MAX_FAILURES_KEPT = 20;
const MAX_MESSAGE = 300;
/** User principal names shown for a member step (the count says how many there are). */
const SAMPLE = 5;
/** How a user created in a dry run is named until it has a TeamViewer id. */
const PLANNED_USER = 'planned:';

const LOG_ACTION: Partial<Record<GroupStepKind, ProvisioningLogAction>> = {
  'group-create': 'group-create',
  'group-link': 'group-link',
  'group-rename': 'group-rename',
  'member-add': 'members-add',
  'member-remove': 'members-remove',
  'role-assign': 'role-assign',
  'group-delete': 'group-delete',
  'group-unlink': 'group-unlink',
  'group-fail': 'group-fail',
  'group-read': 'group-fail',
};

/**
 * The user groups' work for this cycle, planned again with the user links as the users' changes
 * left them; null when group provisioning is off or the groups could not be read.
 */
export function groupWork(run: CycleRun, guard: GuardRun, phase: GroupPhase, snapshot: Snapshot): { items: GroupWork[]; kind: WorkKind<GroupWork, GroupReport> } | null {
  const deps = run.deps.groups;
  if (!deps || !phase.plan || !phase.read.ok) return null;
  const read = phase.read.snapshot;
  const userLinks = userLinksAfter(snapshot.links, run.reports, run.dryRun);
  const replanned = planGroups(groupPlanInput(run, read, snapshot, userLinks, heldUsers(userLinks, phase.deactivating)));
  const items = [...bundle(replanned.actions, false), ...bundle(phase.plan.deletions, true)];
  run.record.planned += items.length - groupsToChange(phase.plan);
  return { items, kind: new GroupKind(run, deps, guard, read, memberLabels(snapshot.links, run.reports)) };
}

/** After users: the user groups' work (or the one failure saying why there is none). */
export async function applyGroups(run: CycleRun, applier: Applier, guard: GuardRun, phase: GroupPhase | null, snapshot: Snapshot): Promise<void> {
  if (!phase) return;
  await reportUnreadGroups(run, phase);
  const work = groupWork(run, guard, phase, snapshot);
  if (work && work.items.length > 0) await applier.apply(work.items, work.kind);
}

/** A failed read of the user groups, reported once as the cycle's one group failure. */
export async function reportUnreadGroups(run: CycleRun, phase: GroupPhase | null): Promise<void> {
  if (!phase || phase.read.ok) return;
  const { error } = phase.read;
  const report: GroupReport = {
    kind: 'group-read',
    status: 'failure',
    entraId: '',
    name: '',
    teamViewerGroupId: null,
    steps: [{ kind: 'group-read', status: 'failure', teamViewerGroupId: null, changes: [], reason: 'no user group was read, so none was changed; users were provisioned as usual', error }],
    reason: 'no user group was read, so none was changed; users were provisioned as usual',
    error,
  };
  tally(run, report);
  if (run.dryRun || !run.deps.logs) return;
  await run.deps.logs.append(logRecords(report, { cycleId: run.cycleId, time: run.now(), durationMs: 0 }))
    .catch((err) => run.log.warn('could not write provisioning logs', { cycleId: run.cycleId, error: errorInfo(err).message }));
}

/** The planner's actions as one piece of work per Entra group, in the planner's order. */
function bundle(actions: readonly GroupAction[], going: boolean): GroupWork[] {
  const byGroup = new Map<string, GroupWork>();
  for (const action of actions) {
    const work = byGroup.get(action.entraGroupId) ?? { entraGroupId: action.entraGroupId, name: action.name, actions: [], going };
    work.actions.push(action);
    byGroup.set(action.entraGroupId, work);
  }
  return [...byGroup.values()];
}

/**
 * The user links as this cycle's user changes left them (what TeamViewer id each user has, and
 * whether it is active). In a dry run the planned changes count as made, and a user to be created
 * stands for itself by a placeholder id.
 */
export function userLinksAfter(links: readonly Link[], reports: readonly ActionReport[], dryRun: boolean): UserLinkView[] {
  const byId = new Map<string, UserLinkView>(links.map((l) => [l.entraId.toLowerCase(), { entraId: l.entraId, teamViewerId: l.teamViewerId, active: l.active }]));
  for (const r of reports) {
    if (r.status !== 'success' && !(dryRun && r.status === 'planned')) continue;
    const key = r.entraId.toLowerCase();
    if (r.kind === 'unlink') {
      byId.delete(key);
      continue;
    }
    const before = byId.get(key);
    const teamViewerId = r.teamViewerId ?? before?.teamViewerId ?? (r.kind === 'create' ? `${PLANNED_USER}${r.entraId}` : null);
    const active = [...r.changes].reverse().find((c) => c.attribute === 'active')?.new;
    byId.set(key, { entraId: r.entraId, teamViewerId, active: typeof active === 'boolean' ? active : before?.teamViewerId ? before.active : true });
  }
  return [...byId.values()];
}

/**
 * TeamViewer ids of the users whose deactivation was wanted but did not happen — staged by the
 * guard, the token's owner, held for an unknown owner, failed, skipped — so still active: they
 * keep every group membership. In a dry run a planned deactivation counts as made, as above.
 */
export function heldUsers(userLinks: readonly UserLinkView[], deactivating: ReadonlySet<string>): Set<string> {
  return new Set(userLinks.filter((l) => l.teamViewerId && l.active && deactivating.has(l.entraId.toLowerCase())).map((l) => l.teamViewerId as string));
}

/** TeamViewer user id → user principal name, to name members in reports and logs. */
function memberLabels(links: readonly Link[], reports: readonly ActionReport[]): Map<string, string> {
  const labels = new Map(links.filter((l) => l.teamViewerId).map((l) => [l.teamViewerId as string, l.userPrincipalName]));
  for (const r of reports) {
    if (r.teamViewerId) labels.set(r.teamViewerId, r.userPrincipalName);
    labels.set(`${PLANNED_USER}${r.entraId}`, r.userPrincipalName);
  }
  return labels;
}

class GroupKind implements WorkKind<GroupWork, GroupReport> {
  /** The first missing-right answer of this cycle: the one failure reported for it. */
  private forbidden: ErrorInfo | null = null;
  /** Group links as this cycle leaves them, by Entra group id. */
  private readonly links: Map<string, GroupLink>;
  /** TeamViewer group id → the Entra group it is tied to (links, and adoptions this cycle). */
  private readonly claimed = new Map<string, string>();

  constructor(
    private readonly run: CycleRun,
    private readonly deps: GroupDeps,
    private readonly guard: GuardRun,
    private readonly read: GroupsSnapshot,
    private readonly labels: ReadonlyMap<string, string>,
  ) {
    this.links = new Map(read.links.map((l) => [l.entraGroupId.toLowerCase(), l]));
    for (const l of read.links) if (l.teamViewerGroupId) this.claimed.set(l.teamViewerGroupId, l.entraGroupId.toLowerCase());
  }

  key = (work: GroupWork): string => work.entraGroupId;
  hasChange = (): boolean => true;
  mayWait = (work: GroupWork): boolean => !work.going;
  heldBack = (work: GroupWork): string | null => (work.actions.some((a) => this.guard.held.has(a)) ? `staged, not applied: ${this.guard.holdMessage}` : null);
  isFatal = (_work: GroupWork, code: string): boolean => code === 'TEAMVIEWER_UNAUTHORIZED';

  notDone(work: GroupWork, status: 'skipped' | 'staged', reason: string): GroupReport {
    return this.report(work, work.actions.map((a) => ({ ...this.describe(a), status, reason })), { status, reason });
  }

  planned(work: GroupWork): GroupReport {
    const steps = work.actions.map((a): GroupStepReport => (a.kind === 'group-fail'
      ? { ...this.describe(a), status: 'failure', error: { code: a.code, message: a.reason } }
      : { ...this.describe(a), status: 'planned' }));
    const failed = steps.find((s) => s.status === 'failure');
    return this.report(work, steps, failed ? { status: 'failure', error: failed.error, kind: failed.kind } : { status: 'planned' });
  }

  async apply(work: GroupWork, signal: AbortSignal): Promise<GroupReport> {
    if (this.forbidden) return this.notDone(work, 'skipped', this.forbiddenReason());
    const steps: GroupStepReport[] = [];
    const group = new GroupWriter(this.run, this.deps, work.entraGroupId, this.links, this.claimed, this.read, signal);
    // What the planner could not do (a name taken, say) fails the group, but its other steps (members) still go.
    let planned: { error: ErrorInfo; kind: GroupStepKind } | null = null;
    for (const [index, action] of work.actions.entries()) {
      const step = this.describe(action);
      if (action.kind === 'group-fail') {
        const error = { code: action.code, message: action.reason };
        steps.push({ ...step, status: 'failure', error });
        planned ??= { error, kind: action.kind };
        continue;
      }
      try {
        steps.push(...(await group.apply(action, step)));
      } catch (err) {
        const error = errorInfo(err);
        const done = (err as { done?: GroupStepReport }).done;
        if (done) steps.push(done);
        const rest = work.actions.slice(index + 1).map((a) => ({ ...this.describe(a), status: 'skipped' as const, reason: `not attempted: ${action.kind} failed before it` }));
        if (error.code === FORBIDDEN && this.forbidden) {
          steps.push({ ...step, status: 'skipped', reason: this.forbiddenReason() }, ...rest);
          await group.settle();
          return this.report(work, steps, { status: 'skipped', reason: this.forbiddenReason() });
        }
        if (error.code === FORBIDDEN) {
          this.forbidden = error;
          this.run.log.error(`cycle ${this.run.cycleId}: ${error.message}`, { cycleId: this.run.cycleId, code: error.code });
        }
        steps.push({ ...step, ...(done ? { members: remaining(step, done) } : {}), status: 'failure', error }, ...rest);
        await group.settle();
        return this.report(work, steps, { status: 'failure', error, kind: action.kind });
      }
    }
    await group.settle();
    return this.report(work, steps, planned ? { status: 'failure', ...planned } : { status: 'success' });
  }

  logRecord(report: GroupReport, context: { cycleId: string; time: Date; durationMs: number }): ProvisioningLogRecord[] {
    return logRecords(report, context);
  }

  tally(_record: unknown, report: GroupReport): void {
    tally(this.run, report);
  }

  private forbiddenReason(): string {
    return `not attempted: TeamViewer refused user-group calls earlier in this cycle (${FORBIDDEN}: ${this.forbidden?.message ?? ''})`.slice(0, 1000);
  }

  private report(work: GroupWork, steps: GroupStepReport[], outcome: { status: GroupReport['status']; reason?: string; error?: ErrorInfo; kind?: GroupStepKind }): GroupReport {
    const teamViewerGroupId = steps.map((s) => s.teamViewerGroupId).find((id) => id !== null) ?? this.links.get(work.entraGroupId)?.teamViewerGroupId ?? null;
    return {
      kind: outcome.kind ?? steps[0]?.kind ?? 'group-record',
      status: outcome.status,
      entraId: work.entraGroupId,
      name: work.name,
      teamViewerGroupId,
      steps,
      ...(outcome.reason ? { reason: outcome.reason } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    };
  }

  /** A step as planned: what it changes, and whom (members by user principal name). */
  private describe(a: GroupAction): GroupStepReport {
    const tvId = 'teamViewerGroupId' in a ? a.teamViewerGroupId ?? null : null;
    const step: GroupStepReport = { kind: a.kind, status: 'planned', teamViewerGroupId: tvId, changes: [] };
    switch (a.kind) {
      case 'group-create':
        return { ...step, changes: [{ attribute: 'name', old: null, new: a.name }] };
      case 'group-link':
        return { ...step, changes: [{ attribute: 'name', old: null, new: a.name }], reason: a.reason };
      case 'group-rename':
        return { ...step, changes: [{ attribute: 'name', old: a.from, new: a.name }] };
      case 'member-add':
        return { ...step, members: this.sample(a.members) };
      case 'member-remove':
        return { ...step, members: this.sample(a.members), reason: a.reason };
      case 'role-assign':
        return { ...step, changes: [{ attribute: 'role', old: a.previous?.name ?? null, new: a.role.name }] };
      case 'group-record':
        return { ...step, reason: 'state only: members found in TeamViewer already, members no longer managed forgotten, or the role recorded' };
      case 'group-delete':
      case 'group-unlink':
        return { ...step, reason: a.reason };
      case 'group-fail':
        return { ...step, reason: a.reason };
    }
  }

  private sample(members: readonly string[]): { count: number; sample: string[] } {
    return { count: members.length, sample: members.slice(0, SAMPLE).map((m) => this.labels.get(m) ?? m) };
  }
}

/** The members a failed member step did not get to: the count minus what its calls confirmed. */
function remaining(step: GroupStepReport, done: GroupStepReport): { count: number; sample: string[] } {
  return { count: Math.max(0, (step.members?.count ?? 0) - (done.members?.count ?? 0)), sample: step.members?.sample ?? [] };
}

/** Adds a group's report to the cycle's counts, the failures status shows, and the cycle's report. */
function tally(run: CycleRun, report: GroupReport): void {
  const c = run.record.counts.groups;
  const made = (s: GroupStepReport) => s.status === 'success' || s.status === 'planned';
  let updated = false;
  for (const s of report.steps) {
    if (!made(s)) continue;
    switch (s.kind) {
      case 'group-create': c.created++; break;
      case 'group-link': c.linked++; break;
      case 'group-rename': case 'role-assign': updated = true; break;
      case 'member-add': c.membersAdded += s.members?.count ?? 0; break;
      case 'member-remove': c.membersRemoved += s.members?.count ?? 0; break;
      case 'group-delete': c.deleted++; break;
      case 'group-unlink': c.unlinked++; break;
      default: break;
    }
  }
  if (updated) c.updated++;
  if (report.status === 'staged') c.staged++;
  if (report.status === 'failure') {
    c.failed++;
    if ((run.record.groupFailures ?? []).length < MAX_FAILURES_KEPT) {
      (run.record.groupFailures ??= []).push({
        entraGroupId: report.entraId,
        name: report.name,
        action: report.kind,
        code: report.error?.code ?? 'INTERNAL',
        message: (report.error?.message ?? '').slice(0, MAX_MESSAGE),
        at: run.now().toISOString(),
      } satisfies GroupFailure);
    }
  }
  run.groupReports.push(report);
}

/** One provisioning-log record per step that changed (or failed to change, or was held) something. */
function logRecords(report: GroupReport, context: { cycleId: string; time: Date; durationMs: number }): ProvisioningLogRecord[] {
  const records: ProvisioningLogRecord[] = [];
  for (const s of report.steps) {
    const action = LOG_ACTION[s.kind];
    if (!action || s.status === 'planned' || s.status === 'skipped') continue;
    const members = s.members ? memberWords(s.members) : null;
    const changes: AttributeChange[] = members ? [{ attribute: 'members', old: s.kind === 'member-remove' ? members : null, new: s.kind === 'member-add' ? members : null }, ...s.changes] : s.changes;
    records.push({
      id: newLogRecordId(context.time),
      cycleId: context.cycleId,
      changeId: randomUUID(),
      time: context.time.toISOString(),
      action,
      status: s.status === 'staged' ? 'staged' : s.status === 'failure' ? 'failure' : s.status === 'warning' ? 'warning' : 'success',
      entraId: report.entraId,
      userPrincipalName: report.name,
      teamViewerId: s.teamViewerGroupId ?? report.teamViewerGroupId,
      modifiedProperties: changes.map((c) => ({ name: c.attribute, old: c.old, new: c.new })),
      errorCode: s.error?.code ?? null,
      reason: s.error?.message ?? (members ? `${s.kind === 'member-add' ? 'added' : 'removed'} ${members}${s.reason ? ` — ${s.reason}` : ''}` : s.reason ?? null),
      durationMs: context.durationMs,
    });
  }
  return records;
}

/** "3 members: anna@…, ben@…, chloe@…" (a sample, and how many more). */
export function memberWords(members: { count: number; sample: readonly string[] }): string {
  const more = members.count - members.sample.length;
  return `${members.count} member${members.count === 1 ? '' : 's'}${members.sample.length > 0 ? `: ${members.sample.join(', ')}${more > 0 ? ` and ${more} more` : ''}` : ''}`.slice(0, 1000);
}
