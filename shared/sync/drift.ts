/**
 * Drift: what TeamViewer holds for the users tvsync manages, against what tvsync last wrote there
 * (each Link's `written` values, recorded from TeamViewer's answer to the write). Pure: no I/O,
 * no clock, linear in links + TeamViewer users.
 *
 * Invariants:
 * - A value counts as changed by hand only when the link records what tvsync wrote and TeamViewer
 *   now holds something else. A link that records nothing for an attribute is never drift for it
 *   (the next full read records it: see `refresh`).
 * - The quiet-cycle check looks only for what a full read puts back — attributes mapped "always"
 *   that TeamViewer lets tvsync change, and the active flag — so a quiet cycle never falls through
 *   to a full read for something the planner would leave alone. Whatever the planner still leaves
 *   alone is recorded as it is now (`refresh`), so one hand edit costs at most one full read.
 * - A planned action is a drift repair when it puts back exactly what tvsync wrote: TeamViewer's
 *   value differs from the written one and the desired value equals it. A change that comes from
 *   Entra (desired ≠ written) is never counted as drift, whatever TeamViewer holds.
 * - DRIFT_CHECK=off: the planner's repairs of hand edits are taken out of the plan (the rest of
 *   the action stays), so hand edits are left as they are, in quiet and full cycles alike. A user
 *   deleted in TeamViewer is handled as always (created again, or unlinked).
 */
import { sameValue, teamViewerAttribute, type AttributeChange, type SyncConfig } from './mapping';
import type { Link, LinkDigest, TeamViewerPatch, TeamViewerUser } from '../domain/model';
import type { Action } from './planner';

/** DRIFT_CHECK: look for hand edits in every quiet cycle, only at the daily full read, or never. */
export type DriftCheck = 'every-cycle' | 'daily' | 'off';
export const DRIFT_CHECKS: readonly DriftCheck[] = ['every-cycle', 'daily', 'off'];

/** How every repair's reason starts (provisioning logs, status). */
export const DRIFT_REASON = 'changed in TeamViewer by hand';

/** TeamViewer attributes the check compares: the keys writtenOf records, which the planner can put back. */
export type DriftAttribute = 'userName' | 'displayName' | 'active';
const RECORDED: readonly DriftAttribute[] = ['userName', 'displayName', 'active'];

/** The attributes a full read would put back under this configuration (mapped "always"). */
export function comparedAttributes(config: SyncConfig): DriftAttribute[] {
  const always = new Set(config.mappings.filter((m) => m.applyOn === 'always').map((m) => teamViewerAttribute(m.target)));
  return RECORDED.filter((a) => always.has(a));
}

export interface DriftFinding {
  entraId: string;
  teamViewerId: string;
  /** What TeamViewer holds that differs from what tvsync wrote. */
  attributes: DriftAttribute[];
}

export interface DriftCheckResult {
  /** Managed users whose TeamViewer values differ from what tvsync wrote. */
  drifted: DriftFinding[];
  /** Managed users TeamViewer no longer lists (deleted by hand, or a listing that missed them). */
  vanished: LinkDigest[];
}

/**
 * The quiet-cycle check: which managed users TeamViewer holds differently from what tvsync wrote.
 * Links still being created (intent) or marked for re-matching are left to the full read.
 */
export function findDrift(links: readonly LinkDigest[], teamViewer: readonly TeamViewerUser[], compared: readonly DriftAttribute[]): DriftCheckResult {
  const byId = new Map(teamViewer.map((u) => [u.id, u]));
  const drifted: DriftFinding[] = [];
  const vanished: LinkDigest[] = [];
  for (const link of links) {
    if (!link.teamViewerId || link.pending || link.rematch) continue;
    const current = byId.get(link.teamViewerId);
    if (!current) {
      vanished.push(link);
      continue;
    }
    const attributes = compared.filter((a) => a in link.written && !sameValue(a, link.written[a], current[a]));
    if (attributes.length > 0) drifted.push({ entraId: link.entraId, teamViewerId: link.teamViewerId, attributes });
  }
  return { drifted, vanished };
}

/** A link whose record of TeamViewer's values is out of date although the plan leaves the user alone. */
export interface LinkRefresh {
  link: Link;
  /** TeamViewer's user as listed: what the link records from now on. */
  current: TeamViewerUser;
}

export interface DriftMarking {
  /** The plan's actions: repairs marked (`drift`), or taken out under DRIFT_CHECK=off. */
  actions: Action[];
  /** Repairs taken out (DRIFT_CHECK=off). */
  leftAlone: number;
  /** Links to record anew: drift the planner leaves alone, and values never recorded. */
  refresh: LinkRefresh[];
}

/**
 * Marks the plan's repairs of hand edits (full cycles). See the invariants above; `compared` is
 * what a quiet cycle looks at (comparedAttributes).
 */
export function markDrift(
  actions: readonly Action[],
  input: { links: readonly Link[]; teamViewer: readonly TeamViewerUser[]; mode: DriftCheck; compared: readonly DriftAttribute[] },
): DriftMarking {
  const linkByEntra = new Map(input.links.map((l) => [l.entraId, l]));
  const planned = new Set(actions.map((a) => a.entraId));
  let leftAlone = 0;
  const marked = actions.map((action): Action => {
    if (action.kind === 'create') {
      if (!action.replacesTeamViewerId || input.mode === 'off') return action;
      return { ...action, drift: `${DRIFT_REASON}: TeamViewer user ${action.replacesTeamViewerId} was deleted; created again` };
    }
    if (action.kind !== 'update' && action.kind !== 'enable' && action.kind !== 'disable' && action.kind !== 'link') return action;
    const link = linkByEntra.get(action.entraId);
    if (!link || link.teamViewerId !== action.teamViewerId) return action;
    const repaired = action.changes.filter((c) => putsBack(link.written, c));
    if (repaired.length === 0) return action;
    if (input.mode === 'off') {
      leftAlone++;
      return withoutRepairs(action, repaired);
    }
    const names = repaired.map((c) => c.attribute).join(', ');
    return { ...action, drift: `${DRIFT_REASON} (${names}): put back${action.kind === 'disable' ? ` — ${action.reason}` : ''}` };
  });

  const refresh: LinkRefresh[] = [];
  if (input.mode !== 'off') {
    const byId = new Map(input.teamViewer.map((u) => [u.id, u]));
    for (const link of input.links) {
      if (!link.teamViewerId || link.pending || link.rematch || planned.has(link.entraId)) continue;
      const current = byId.get(link.teamViewerId);
      if (current && input.compared.some((a) => !(a in link.written) || !sameValue(a, link.written[a], current[a]))) refresh.push({ link, current });
    }
  }
  return { actions: marked, leftAlone, refresh };
}

/** TeamViewer holds something other than what tvsync wrote, and the plan writes that again. */
function putsBack(written: Link['written'], change: AttributeChange): boolean {
  const key = teamViewerAttribute(change.attribute);
  if (!key || !(key in written)) return false;
  return !sameValue(change.attribute, written[key], change.old) && sameValue(change.attribute, written[key], change.new);
}

type Writing = Extract<Action, { kind: 'update' | 'enable' | 'disable' | 'link' }>;

/** The action without the repairs (DRIFT_CHECK=off): what is left of it, or a skip saying why. */
function withoutRepairs(action: Writing, repaired: AttributeChange[]): Action {
  const changes = action.changes.filter((c) => !repaired.includes(c));
  const patch: TeamViewerPatch = { ...action.patch };
  for (const c of repaired) delete patch[teamViewerAttribute(c.attribute)!];
  // A link action also records the tie (an intent resolved, a re-match): it stays, without the repairs.
  if (action.kind === 'link') return { ...action, patch, changes };
  if (changes.length === 0) {
    return {
      entraId: action.entraId,
      userPrincipalName: action.userPrincipalName,
      kind: 'skip',
      teamViewerId: action.teamViewerId,
      reason: `${DRIFT_REASON} (${repaired.map((c) => c.attribute).join(', ')}); left as it is (DRIFT_CHECK=off)`,
    };
  }
  if (patch.active === false) return { ...action, kind: 'disable', reason: 'reason' in action ? action.reason : 'the active mapping gave False', patch, changes };
  const { reason: _none, ...rest } = action as Writing & { reason?: string };
  return { ...rest, kind: patch.active === true ? 'enable' : 'update', patch, changes } as Action;
}

/** Records TeamViewer's values of the compared attributes on the link (and whether the user is active). */
export function refreshed(link: Link, current: TeamViewerUser, compared: readonly DriftAttribute[], at: string): Link {
  const written = { ...link.written };
  for (const a of compared) written[a] = current[a];
  return { ...link, written, active: current.active, updatedAt: at };
}
