/**
 * The read phase: what changed in Entra since the last cycle (Graph delta rounds, the assignment
 * fingerprint), and — unless nothing did — everything a plan is made from: the users in scope from
 * Entra, the links from state, TeamViewer's users and the account that owns the token.
 *
 * Invariants:
 * - Entra is read completely before anything is planned; a failed or partial read throws and the
 *   cycle ends `failed` with nothing planned or written. A read error is never "no users".
 * - Delta rounds are resumed before the full read they accompany (shared/sync/watermark.ts says
 *   why), and deltas only decide *whether* to read everything, never replace reading.
 * - Every read is given the cycle's reading deadline: a read still running when the time budget
 *   runs out is cut off (CYCLE_BUDGET_EXCEEDED), never left to hold the cycle.
 * - Without the token owner every deactivation is held back (shared/sync/cycle/guard.ts): a failed
 *   owner lookup is a warning, not a failed read — unless the deadline cut it.
 */
import { raceAbort } from '../../http/timeout';
import type { AssignedUser, Escrow, Link, TeamViewerUser } from '../../domain/model';
import { errorInfo } from '../error-info';
import { GUARD_KEY, type GuardState } from '../guard';
import { attributesNeeded } from '../mapping';
import { FULL_READ_EVERY_MS, sameIds, WATERMARK_KEY, type Watermark } from '../watermark';
import type { AssignedGroup } from '../../domain/group-model';
import type { CycleDeps, EntraSource } from './ports';
import { readGroups, renameCheck, type GroupsRead } from './read-groups';
import type { CycleRun } from './run';

export interface ChangesRead {
  /** What the delta rounds said, and the watermark to save; null for a dry run (no watermark). */
  delta: DeltaOutcome | null;
  /** Users whose change keeps failing, by Entra object id. */
  escrows: Map<string, Escrow>;
}

/** Reads what changed in Entra, and decides whether this cycle may skip the full read. */
export async function readChanges(run: CycleRun): Promise<ChangesRead> {
  const { deps, record, config, previous } = run;
  run.progress('reading Entra ID');
  const guardBefore = await deps.state.getMeta<GuardState>(GUARD_KEY);
  const escrows = new Map((await deps.state.listEscrows()).map((e) => [e.entraId, e]));
  // Only after a cycle that left nothing behind may deltas let this one skip the full read.
  const canSkip = record.kind === 'incremental' && previous?.result === 'succeeded' && !previous.budgetReached
    && !guardBefore?.value.staged && !guardBefore?.value.allowance && !config.expandNestedGroups && escrows.size === 0;
  const delta = run.dryRun ? null : await readDeltas(deps, {
    attributes: attributesNeeded(config),
    canSkip,
    configHash: run.configHash,
    now: run.startedAt,
    signal: run.deadline.reading,
    renamed: renameCheck(run),
  }, run.cycleId);
  if (delta?.expired && record.kind === 'incremental') {
    record.kind = 'initial';
    run.log.warn(`cycle ${run.cycleId}: the Graph delta token expired; this is a new initial cycle`, { cycleId: run.cycleId });
  }
  return { delta, escrows };
}

/** Everything a plan is made from. */
export interface Snapshot {
  /** Every user read from Entra for the app (in scope or not). */
  users: AssignedUser[];
  links: Link[];
  /** Every TeamViewer user of the company. */
  teamViewer: TeamViewerUser[];
  /** The account that owns the TeamViewer token (never deactivated); null when it is unknown. */
  owner: { id: string; userName: string } | null;
  /** User groups (GROUP_PROVISIONING=assigned; read-groups.ts); null when provisioning is off. */
  groups: GroupsRead | null;
}

/**
 * The full read. `listed`: TeamViewer's users as a quiet cycle's drift check just listed them
 * (not listed twice).
 */
export async function readEverything(run: CycleRun, listed: TeamViewerUser[] | null): Promise<Snapshot> {
  const { deps, config, log, cycleId } = run;
  const reading = run.deadline.reading;
  const groupsOn = deps.groups?.settings.provisioning === 'assigned';
  const { users, assignedGroups } = await deps.entra.readAssignedUsers({ scope: config.scope, expandNestedGroups: config.expandNestedGroups, attributes: attributesNeeded(config), signal: reading, ...(groupsOn ? { groupNames: true } : {}) });
  run.record.imported = users.length;
  run.progress('reading TeamViewer');
  const [links, teamViewer, owner, groups] = await Promise.all([
    raceAbort(deps.state.listLinks(), reading),
    listed ?? deps.teamViewer.listUsers({ signal: reading }),
    deps.teamViewer.getTokenOwner({ signal: reading }).catch((err) => {
      if (reading.aborted) throw err;
      log.warn('could not find the account that owns the TeamViewer token', { cycleId, error: errorInfo(err).message });
      return null;
    }),
    readGroups(run, assignedGroups),
  ]);
  if (owner === null) log.warn('deactivations are held back this cycle: the account that owns the TeamViewer token could not be identified (the token needs "Account management: view account data")', { cycleId });
  return { users, links, teamViewer, owner, groups };
}

/**
 * The part of the snapshot applying reads: the links, the owner and the user groups. TeamViewer's
 * users are left out, and Entra's too unless user groups are planned again after users (they need
 * each user's groups) — at 100,000 users these lists are most of a cycle's memory.
 */
export function keptForApplying(snapshot: Snapshot): Snapshot {
  return { ...snapshot, users: snapshot.groups ? snapshot.users : [], teamViewer: [] };
}

export interface DeltaOutcome {
  /** True when every delta was empty and the full read may be skipped. */
  unchanged: boolean;
  /** True when a delta token had expired (the cycle is then a new initial one). */
  expired: boolean;
  watermark: Watermark;
  etag: string | null;
  requests: number;
}

/**
 * Resumes (or starts) the delta rounds before the full read — see shared/sync/watermark.ts for
 * why the order matters and when the full read may be skipped.
 */
async function readDeltas(deps: CycleDeps, options: { attributes: string[]; canSkip: boolean; configHash: string; now: Date; signal: AbortSignal; renamed?: (names: readonly AssignedGroup[]) => Promise<boolean> }, cycleId: string): Promise<DeltaOutcome> {
  const { signal } = options;
  const row = await raceAbort(deps.state.getMeta<Watermark>(WATERMARK_KEY), signal);
  const previous = row?.value.configHash === options.configHash ? row.value : null;
  const fingerprint = await deps.entra.readAssignmentFingerprint({ signal });
  let requests = fingerprint.requests;
  const groupsSame = previous ? sameIds(previous.groupIds, fingerprint.groupIds) : false;
  let expired = false;
  let users: Awaited<ReturnType<EntraSource['readUserChanges']>> | null = null;
  let groups: Awaited<ReturnType<EntraSource['readGroupMemberChanges']>> | null = null;
  if (previous) {
    try {
      // The same $select as the full read: a change to an attribute a filter or mapping reads must show.
      users = await deps.entra.readUserChanges(previous.usersDeltaLink, options.attributes, { signal });
      if (groupsSame) groups = await deps.entra.readGroupMemberChanges(fingerprint.groupIds, previous.groupsDeltaLink || null, { signal });
    } catch (err) {
      if ((err as { code?: string }).code !== 'GRAPH_DELTA_EXPIRED') throw err;
      expired = true;
      users = null;
      groups = null;
    }
  }
  // Start fresh rounds where there is nothing to resume (first cycle, new configuration, expired
  // token, a different set of assigned groups): costly once, then a request or two per cycle.
  const startedUsers = users ?? (await deps.entra.readUserChanges(null, options.attributes, { signal }));
  const startedGroups = groups ?? (await deps.entra.readGroupMemberChanges(fingerprint.groupIds, null, { signal }));
  requests += (users ? users.requests : 0) + (groups ? groups.requests : 0) + (users ? 0 : startedUsers.requests) + (groups ? 0 : startedGroups.requests);
  const fresh = !previous || expired || !groupsSame;
  const nothing = !fresh && users !== null && groups !== null
    && previous!.assignments === fingerprint.fingerprint
    && users.changed.length === 0 && users.removed.length === 0
    && groups.added.length === 0 && groups.removed.length === 0 && groups.removedGroups.length === 0 && groups.groupsWithNestedChanges.length === 0;
  const fullReadDue = !previous || options.now.getTime() - Date.parse(previous.lastFullReadAt) >= FULL_READ_EVERY_MS;
  // A group renamed in Entra (user groups on) is a change the member lists do not show.
  const renamed = options.canSkip && nothing && !fullReadDue && options.renamed ? await raceAbort(options.renamed(groups?.displayNames ?? []), signal) : false;
  const unchanged = options.canSkip && nothing && !fullReadDue && !renamed;
  deps.logger.debug(`cycle ${cycleId}: deltas read`, { cycleId, requests, unchanged, fresh, expired });
  return {
    unchanged,
    expired,
    requests,
    etag: row?.etag ?? null,
    watermark: {
      configHash: options.configHash,
      usersDeltaLink: startedUsers.deltaLink,
      groupsDeltaLink: startedGroups.deltaLink,
      groupIds: fingerprint.groupIds,
      assignments: fingerprint.fingerprint,
      lastFullReadAt: unchanged ? previous!.lastFullReadAt : options.now.toISOString(),
    },
  };
}
