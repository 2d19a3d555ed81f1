/**
 * The planner: a pure function from (desired users, links, TeamViewer snapshot) to actions.
 * No I/O, no clock: everything it decides can be tested with tables of cases.
 *
 * Invariants:
 * - It never plans anything for a TeamViewer user that is neither linked to us nor matched by
 *   userName to an entitled Entra user.
 * - It never plans a create when a TeamViewer user with the same userName (compared without
 *   case: TeamViewer compares case-sensitively, Entra UPNs are case-insensitive) exists; it links
 *   that user instead, or reports the conflict when the match is ambiguous or already taken.
 * - A disabled (not entitled) Entra user is never created.
 * - Users protected by the caller (the token owner) are never disabled.
 * - An unchanged user produces no action: a cycle with no changes writes nothing to TeamViewer.
 */
import type { Link, TeamViewerPatch, TeamViewerUser, TeamViewerUserDraft } from './model';
import { diff, draftFor, type AttributeChange, type DesiredUser } from './mapping';

interface ActionBase {
  entraId: string;
  userPrincipalName: string;
}

export type Action =
  | (ActionBase & { kind: 'create'; draft: TeamViewerUserDraft; desired: DesiredUser; replacesTeamViewerId?: string })
  | (ActionBase & { kind: 'link'; teamViewerId: string; userName: string; patch: TeamViewerPatch; changes: AttributeChange[] })
  | (ActionBase & { kind: 'update' | 'enable'; teamViewerId: string; patch: TeamViewerPatch; changes: AttributeChange[] })
  | (ActionBase & { kind: 'disable'; teamViewerId: string; reason: string; patch: TeamViewerPatch; changes: AttributeChange[] })
  | (ActionBase & { kind: 'unlink'; teamViewerId: string | null; reason: string })
  | (ActionBase & { kind: 'skip'; reason: string; teamViewerId?: string; warning?: boolean })
  | (ActionBase & { kind: 'fail'; code: string; reason: string; teamViewerId?: string });

export type ActionKind = Action['kind'];

export interface PlanInput {
  /** Every user read from Entra for the app (entitled or not). */
  users: DesiredUser[];
  links: Link[];
  /** Every TeamViewer user in the company. */
  teamViewer: TeamViewerUser[];
  /** TeamViewer ids that must never be disabled (the account that owns the API token). */
  protectedTeamViewerIds?: ReadonlySet<string>;
  /** SKIP_OUT_OF_SCOPE_DELETIONS: users leaving scope stay active (disabled accounts are still disabled). */
  skipOutOfScopeDeletions?: boolean;
  /** Why linked users that were not read from Entra are gone (default: unassigned). */
  goneReasons?: ReadonlyMap<string, string>;
}

export interface Plan {
  actions: Action[];
  /** Users already as they should be. */
  unchanged: number;
  /** Users read from Entra that are out of scope and not managed by us (nothing to do). */
  outOfScope: number;
}

const key = (userName: string) => userName.toLowerCase();

export function plan(input: PlanInput): Plan {
  const protectedIds = input.protectedTeamViewerIds ?? new Set<string>();
  const tvById = new Map(input.teamViewer.map((u) => [u.id, u]));
  const tvByName = new Map<string, TeamViewerUser[]>();
  for (const u of input.teamViewer) {
    const list = tvByName.get(key(u.userName)) ?? [];
    list.push(u);
    tvByName.set(key(u.userName), list);
  }
  const linkByEntra = new Map(input.links.map((l) => [l.entraId, l]));
  // TeamViewer ids already tied to an Entra user: never matched to a second one.
  const linkedTvIds = new Map<string, string>();
  for (const l of input.links) if (l.teamViewerId) linkedTvIds.set(l.teamViewerId, l.entraId);

  const actions: Action[] = [];
  let unchanged = 0;
  let outOfScope = 0;
  const seen = new Set<string>();

  for (const user of input.users) {
    seen.add(user.entraId);
    const base = { entraId: user.entraId, userPrincipalName: user.userPrincipalName };
    const link = linkByEntra.get(user.entraId);
    const current = link?.teamViewerId ? tvById.get(link.teamViewerId) : undefined;

    if (user.error && !user.notEntitled) {
      actions.push({ ...base, kind: 'fail', code: user.error.code, reason: user.error.message, ...(current ? { teamViewerId: current.id } : {}) });
      continue;
    }
    if (current) {
      if (!user.entitled) {
        if (!current.active) unchanged++;
        else if (input.skipOutOfScopeDeletions && user.notEntitled?.kind === 'out-of-scope') {
          actions.push({ ...base, kind: 'skip', teamViewerId: current.id, reason: `left active (SKIP_OUT_OF_SCOPE_DELETIONS): ${user.notEntitled.reason}` });
        }
        else if (protectedIds.has(current.id)) {
          actions.push({ ...base, kind: 'skip', teamViewerId: current.id, warning: true, reason: `not disabled: ${current.userName} owns the TeamViewer API token tvsync uses (${user.notEntitled?.reason ?? 'not entitled'})` });
        } else {
          actions.push({ ...base, kind: 'disable', teamViewerId: current.id, reason: user.notEntitled?.reason ?? 'not entitled', patch: { active: false }, changes: [{ attribute: 'active', old: true, new: false }] });
        }
        continue;
      }
      const { patch, changes } = diff(user, current);
      if (changes.length === 0) unchanged++;
      else actions.push({ ...base, kind: patch.active === true ? 'enable' : 'update', teamViewerId: current.id, patch, changes });
      continue;
    }

    // Not linked, or linked to a TeamViewer user that is gone, or a create was interrupted.
    const vanished = link?.teamViewerId ? link.teamViewerId : undefined;
    const candidates = (tvByName.get(key(userNameOf(user))) ?? []).filter((u) => linkedTvIds.get(u.id) === undefined || linkedTvIds.get(u.id) === user.entraId);
    const taken = (tvByName.get(key(userNameOf(user))) ?? []).filter((u) => linkedTvIds.has(u.id) && linkedTvIds.get(u.id) !== user.entraId);

    if (!user.entitled) {
      if (link) {
        actions.push({ ...base, kind: 'unlink', teamViewerId: link.teamViewerId, reason: vanished ? `TeamViewer user ${vanished} no longer exists and the user is not entitled` : 'an interrupted create left no TeamViewer user and the user is not entitled' });
      } else if (user.notEntitled?.kind === 'disabled' && candidates.length === 1 && candidates[0].active && !protectedIds.has(candidates[0].id)) {
        // In scope, disabled in Entra, and already in TeamViewer under the same login: manage it
        // and make it inactive, as Entra does for a matched user that is soft-deleted. A user
        // merely out of scope is never matched: we do not touch what we do not manage.
        const match = candidates[0];
        actions.push({ ...base, kind: 'link', teamViewerId: match.id, userName: match.userName, patch: { active: false }, changes: [{ attribute: 'active', old: true, new: false }] });
      } else if (user.notEntitled?.kind === 'out-of-scope') {
        outOfScope++; // never ours, never touched: counted, not listed (a tenant may have 100k)
      } else {
        actions.push({ ...base, kind: 'skip', reason: `not created: ${user.notEntitled?.reason ?? 'not entitled'}` });
      }
      continue;
    }

    if (candidates.length > 1) {
      actions.push({ ...base, kind: 'skip', warning: true, reason: `ambiguous match: ${candidates.length} TeamViewer users (${candidates.map((c) => `${c.id} "${c.userName}"`).join(', ')}) have the userName ${userNameOf(user)} apart from letter case; link one by hand or remove the other` });
      continue;
    }
    if (candidates.length === 1) {
      const match = candidates[0];
      const { patch, changes } = diff(user, match);
      actions.push({ ...base, kind: 'link', teamViewerId: match.id, userName: match.userName, patch, changes });
      continue;
    }
    if (taken.length > 0) {
      actions.push({ ...base, kind: 'skip', warning: true, reason: `userName conflict: TeamViewer user ${taken[0].id} "${taken[0].userName}" is already linked to another Entra user (${linkedTvIds.get(taken[0].id)})` });
      continue;
    }
    actions.push({ ...base, kind: 'create', draft: draftFor(user), desired: user, ...(vanished ? { replacesTeamViewerId: vanished } : {}) });
  }

  // Linked users not read from Entra this cycle: unassigned, out of scope or deleted.
  for (const link of input.links) {
    if (seen.has(link.entraId)) continue;
    const base = { entraId: link.entraId, userPrincipalName: link.userPrincipalName };
    const current = link.teamViewerId ? tvById.get(link.teamViewerId) : undefined;
    if (!current) {
      actions.push({ ...base, kind: 'unlink', teamViewerId: link.teamViewerId, reason: link.teamViewerId ? `no longer assigned, and TeamViewer user ${link.teamViewerId} no longer exists` : 'no longer assigned; an interrupted create left no TeamViewer user' });
    } else if (!current.active) {
      unchanged++;
    } else if (input.skipOutOfScopeDeletions && !input.goneReasons?.has(link.entraId)) {
      actions.push({ ...base, kind: 'skip', teamViewerId: current.id, reason: 'left active (SKIP_OUT_OF_SCOPE_DELETIONS): no longer assigned to the TeamViewer application' });
    } else if (protectedIds.has(current.id)) {
      actions.push({ ...base, kind: 'skip', teamViewerId: current.id, warning: true, reason: `not disabled: ${current.userName} owns the TeamViewer API token tvsync uses (no longer assigned in Entra ID)` });
    } else {
      const reason = input.goneReasons?.get(link.entraId) ?? 'no longer assigned to the TeamViewer application in Entra ID';
      actions.push({ ...base, kind: 'disable', teamViewerId: current.id, reason, patch: { active: false }, changes: [{ attribute: 'active', old: true, new: false }] });
    }
  }

  return { actions, unchanged, outOfScope };
}

function userNameOf(user: DesiredUser): string {
  const value = user.attributes.userName?.value;
  return typeof value === 'string' && value ? value : user.userPrincipalName;
}
