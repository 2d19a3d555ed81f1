/**
 * What one Entra group's planned steps do against TeamViewer's Web API and the group state, in
 * order, keeping the group's link up to date as they go (apply-groups.ts runs one per group).
 *
 * Invariants (crash safety — a process may die at any line; state/groups.ts):
 * - An intent (pending create, the name it sends) is written before a create; the link with the
 *   TeamViewer id only after TeamViewer answered. A 409, or a create whose answer was lost, lists
 *   the groups and adopts the one of that name unless another Entra group holds it; only a create
 *   that certainly did not happen (400, 403) drops the intent — anything else keeps it, and the
 *   next cycle resolves it by name. Never two TeamViewer groups for one Entra group.
 * - A member row is written after TeamViewer confirmed each call of at most 100, and deleted after
 *   it confirmed the removal; a failed member step reports what its calls confirmed.
 * - A new link clears the member rows of an earlier one; forgetting a group deletes its member rows
 *   before its link.
 * - One TeamViewer group is tied to at most one Entra group (`claimed`, shared by every group of
 *   the cycle).
 */
import type { GroupLink, GroupStepReport, TeamViewerGroup } from '../../domain/group-model';
import { errorInfo, type ErrorInfo } from '../error-info';
import type { GroupAction } from '../group-planner';
import type { GroupDeps } from './ports';
import type { GroupsSnapshot } from './read-groups';
import type { CycleRun } from './run';

/** A missing right or licence for user groups (shared/teamviewer/usergroups.ts). */
export const FORBIDDEN = 'TEAMVIEWER_GROUPS_FORBIDDEN';

/**
 * Carries out one group's steps against TeamViewer and state, keeping its link up to date as it
 * goes. A step that fails throws; the part of a member step TeamViewer confirmed comes with the
 * error (`done`).
 */
export class GroupWriter {
  private link: GroupLink | undefined;
  /** The members tvsync manages in the group (its member rows) as this cycle leaves them. */
  private members: Set<string>;
  private membersChanged = false;
  private gone = false;

  constructor(
    private readonly run: CycleRun,
    private readonly deps: GroupDeps,
    private readonly entraGroupId: string,
    private readonly links: Map<string, GroupLink>,
    private readonly claimed: Map<string, string>,
    read: GroupsSnapshot,
    private readonly signal: AbortSignal,
  ) {
    this.link = links.get(entraGroupId);
    this.members = new Set(read.written.get(entraGroupId) ?? []);
  }

  async apply(action: GroupAction, step: GroupStepReport): Promise<GroupStepReport[]> {
    const { state, teamViewer } = this.deps;
    const call = { signal: this.signal };
    const done = (extra: Partial<GroupStepReport> = {}): GroupStepReport[] => [{ ...step, status: 'success', teamViewerGroupId: this.link?.teamViewerGroupId ?? step.teamViewerGroupId, ...extra }];
    switch (action.kind) {
      case 'group-fail':
        throw Object.assign(new Error(action.reason), { code: action.code });
      case 'group-create':
        return this.create(action.name, step);
      case 'group-link':
        await this.tie({ id: action.teamViewerGroupId, name: action.name }, action.origin);
        return done();
      case 'group-rename':
        await teamViewer.renameGroup(action.teamViewerGroupId, action.name, call);
        await this.save({ name: action.name });
        return done();
      case 'member-add':
      case 'member-remove': {
        const target = action.teamViewerGroupId ?? this.link?.teamViewerGroupId;
        if (!target) throw Object.assign(new Error('the user group has no TeamViewer id yet (its create did not finish)'), { code: 'INTERNAL' });
        const confirmed: string[] = [];
        const onBatch = async (batch: string[]) => {
          confirmed.push(...batch);
          if (action.kind === 'member-add') await state.addMembers(this.entraGroupId, batch, this.run.now());
          else await state.removeMembers(this.entraGroupId, batch);
          for (const m of batch) (action.kind === 'member-add' ? this.members.add(m) : this.members.delete(m));
          this.membersChanged = true;
        };
        try {
          if (action.kind === 'member-add') await teamViewer.addMembers(target, action.members, onBatch, call);
          else await teamViewer.removeMembers(target, action.members, onBatch, call);
        } catch (err) {
          if (confirmed.length > 0) Object.assign(err as object, { done: { ...step, status: 'success', teamViewerGroupId: target, members: { count: confirmed.length, sample: step.members?.sample ?? [] } } });
          throw err;
        }
        return done({ teamViewerGroupId: target });
      }
      case 'role-assign': {
        const target = action.teamViewerGroupId ?? this.link?.teamViewerGroupId;
        if (!target) throw Object.assign(new Error('the user group has no TeamViewer id yet (its create did not finish)'), { code: 'INTERNAL' });
        await teamViewer.assignRole(target, action.role.id, call);
        await this.save({ role: action.role });
        return done({ teamViewerGroupId: target });
      }
      case 'group-record':
        if (action.record.length > 0) await state.addMembers(this.entraGroupId, action.record, this.run.now());
        if (action.forget.length > 0) await state.removeMembers(this.entraGroupId, action.forget);
        for (const m of action.record) this.members.add(m);
        for (const m of action.forget) this.members.delete(m);
        this.membersChanged ||= action.record.length + action.forget.length > 0;
        if (action.role !== undefined) await this.save({ role: action.role });
        return done();
      case 'group-delete':
        // False: it was already gone, which is what deleting wanted.
        await teamViewer.deleteGroup(action.teamViewerGroupId, call);
        await this.forget();
        return done({ teamViewerGroupId: action.teamViewerGroupId });
      case 'group-unlink':
        await this.forget();
        return done({ teamViewerGroupId: action.teamViewerGroupId });
    }
  }

  /** Records the member count on the link when the members changed (one write per group). */
  async settle(): Promise<void> {
    if (this.gone || !this.link?.teamViewerGroupId || !this.membersChanged || this.link.members === this.members.size) return;
    await this.save({ members: this.members.size }).catch((err) => this.run.log.warn('could not record a user group\'s member count (recorded next time its members change)', { cycleId: this.run.cycleId, error: errorInfo(err).message }));
  }

  /** Intent, create, link; a 409 or a lost answer lists the groups and adopts the one of that name. */
  private async create(name: string, step: GroupStepReport): Promise<GroupStepReport[]> {
    const { state, teamViewer } = this.deps;
    const now = this.run.now().toISOString();
    if (this.link?.teamViewerGroupId) await state.clearMembers(this.entraGroupId);
    const intent: GroupLink = { entraGroupId: this.entraGroupId, teamViewerGroupId: null, name, origin: 'created', role: null, createdAt: this.link?.createdAt ?? now, updatedAt: now, pending: 'create' };
    await state.putGroupLink(intent);
    this.remember(intent);
    this.members = new Set();
    let created: TeamViewerGroup;
    try {
      created = await teamViewer.createGroup(name, { signal: this.signal });
    } catch (err) {
      const error = errorInfo(err);
      const mayHaveApplied = (err as { mayHaveApplied?: boolean }).mayHaveApplied === true;
      if (error.code === 'TEAMVIEWER_GROUP_NAME_TAKEN' || mayHaveApplied) return this.adoptAfter(name, error, step, mayHaveApplied, err);
      // The create certainly did not happen: drop the intent so state holds no half link.
      if (error.code === 'TEAMVIEWER_BAD_REQUEST' || error.code === FORBIDDEN) await this.forget().catch(() => undefined);
      throw err;
    }
    await this.tie(created, 'created');
    return [{ ...step, status: 'success', teamViewerGroupId: created.id }];
  }

  /** After a 409 or a lost answer: the group of that name, if exactly one no other Entra group holds. */
  private async adoptAfter(name: string, error: ErrorInfo, step: GroupStepReport, mayHaveApplied: boolean, original: unknown): Promise<GroupStepReport[]> {
    const found = (await this.deps.teamViewer.listGroups({ signal: this.signal })).filter((g) => g.name.toLowerCase() === name.toLowerCase());
    const free = found.filter((g) => (this.claimed.get(g.id) ?? this.entraGroupId) === this.entraGroupId);
    if (free.length === 1) {
      const group = free[0]!;
      await this.tie(group, 'adopted');
      const why = mayHaveApplied ? 'the create got no answer, and a user group of that name is there now' : 'TeamViewer answered 409: a user group of that name was made meanwhile';
      return [{ ...step, kind: 'group-link', status: 'success', teamViewerGroupId: group.id, reason: `${why}; adopted, never created twice (${error.code})` }];
    }
    // A lost answer with nothing of that name: the intent stays, and the next cycle decides by name.
    if (found.length === 0 && mayHaveApplied) throw original;
    await this.forget().catch(() => undefined);
    const holders = found.filter((g) => !free.includes(g)).map((g) => `${g.id} (linked to Entra group ${this.claimed.get(g.id)})`);
    throw Object.assign(new Error(found.length > 1
      ? `TeamViewer refused to create ${JSON.stringify(name)} (409) and ${found.length} user groups have that name apart from letter case; rename or delete one in TeamViewer`
      : `TeamViewer refused to create ${JSON.stringify(name)} (409): user group ${holders.join(', ') || 'of that name'} is already tied to another Entra group; rename one of the groups in Entra`), { code: 'GROUP_NAME_TAKEN' });
  }

  /** Ties the Entra group to a TeamViewer group (a new link: member rows of an earlier one are cleared). */
  private async tie(group: { id: string; name: string }, origin: GroupLink['origin']): Promise<void> {
    const now = this.run.now().toISOString();
    if (this.link?.teamViewerGroupId && this.link.teamViewerGroupId !== group.id) await this.deps.state.clearMembers(this.entraGroupId);
    if (this.link?.teamViewerGroupId !== group.id) this.members = new Set();
    const link: GroupLink = { entraGroupId: this.entraGroupId, teamViewerGroupId: group.id, name: group.name, origin, role: null, createdAt: this.link?.createdAt ?? now, updatedAt: now };
    await this.deps.state.putGroupLink(link);
    this.remember(link);
  }

  private async save(change: Partial<GroupLink>): Promise<void> {
    if (!this.link) return;
    const link: GroupLink = { ...this.link, ...change, updatedAt: this.run.now().toISOString() };
    await this.deps.state.putGroupLink(link);
    this.remember(link);
  }

  /** Member rows, then the link (state/groups.ts). */
  private async forget(): Promise<void> {
    await this.deps.state.deleteGroupLink(this.entraGroupId);
    if (this.link?.teamViewerGroupId) this.claimed.delete(this.link.teamViewerGroupId);
    this.links.delete(this.entraGroupId);
    this.link = undefined;
    this.gone = true;
  }

  private remember(link: GroupLink): void {
    if (this.link?.teamViewerGroupId && this.link.teamViewerGroupId !== link.teamViewerGroupId) this.claimed.delete(this.link.teamViewerGroupId);
    if (link.teamViewerGroupId) this.claimed.set(link.teamViewerGroupId, this.entraGroupId);
    this.links.set(this.entraGroupId, link);
    this.link = link;
    this.gone = false;
  }
}
