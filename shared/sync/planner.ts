/**
 * The planner: a pure function from (desired users, links, TeamViewer snapshot) to actions.
 * No I/O, no clock: everything it decides can be tested with tables of cases.
 *
 * Invariants:
 * - It never plans anything for a TeamViewer user that is neither linked to us nor matched by
 *   userName to an entitled Entra user.
 * - It never plans a create when a TeamViewer user with the same userName (compared without
 *   case: TeamViewer compares case-sensitively, Entra UPNs are case-insensitive) exists; it links
 *   that user instead, or fails that Entra user when the match is ambiguous or already taken.
 * - One TeamViewer user is tied to at most one Entra user: links and the links/creates planned
 *   in this run claim TeamViewer ids and logins; a second claimant fails instead.
 * - A pending intent (create sent, answer lost) is resolved against the snapshot by the userName
 *   it was sent with, so the user it may have created is found — never orphaned or duplicated.
 * - A disabled (not entitled) Entra user is never created.
 * - Users protected by the caller (the token owner) are never disabled.
 * - An unchanged user produces no action: a cycle with no changes writes nothing to TeamViewer.
 * - A link marked for re-matching (restart --full) is checked again by userName when its user is
 *   read, and rewritten (a `link` action, which clears the mark). It never abandons a TeamViewer
 *   user that still exists: when another one has the login, the link stays and a warning says so.
 *   A marked link whose user is not read is deprovisioned like any other: no leaver is orphaned.
 */
import type { Link, TeamViewerPatch, TeamViewerUser, TeamViewerUserDraft } from '../domain/model';
import { diff, draftFor, type AttributeChange, type DesiredUser } from './mapping';

interface ActionBase {
  entraId: string;
  userPrincipalName: string;
  /** Set (by shared/sync/drift.ts, not the planner) when the action puts back a change made in TeamViewer by hand: why, for the logs. */
  drift?: string;
}

export type Action =
  | (ActionBase & { kind: 'create'; draft: TeamViewerUserDraft; desired: DesiredUser; replacesTeamViewerId?: string })
  | (ActionBase & { kind: 'link'; teamViewerId: string; userName: string; patch: TeamViewerPatch; changes: AttributeChange[]; current?: TeamViewerUser })
  | (ActionBase & { kind: 'update' | 'enable'; teamViewerId: string; patch: TeamViewerPatch; changes: AttributeChange[] })
  | (ActionBase & { kind: 'disable'; teamViewerId: string; reason: string; patch: TeamViewerPatch; changes: AttributeChange[] })
  | (ActionBase & { kind: 'unlink'; teamViewerId: string | null; reason: string })
  | (ActionBase & { kind: 'skip'; reason: string; teamViewerId?: string; warning?: boolean })
  | (ActionBase & { kind: 'fail'; code: string; reason: string; teamViewerId?: string });

/** The kinds of Action, as the domain lists them for reports and logs. */
export type { ActionKind } from '../domain/model';

/** Does this action make a TeamViewer user inactive? (What the guard and the owner check count.) */
export const deactivates = (a: Action): boolean => (a.kind === 'disable' || a.kind === 'link' || a.kind === 'update') && a.patch.active === false;

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
  /**
   * `users` is a subset (provision on demand): links of users not listed are context only
   * (they still claim their TeamViewer ids) and get no action.
   */
  subset?: boolean;
}

export interface Plan {
  actions: Action[];
  /** Users already as they should be. */
  unchanged: number;
  /** Users read from Entra that are out of scope and not managed by us (nothing to do). */
  outOfScope: number;
}

const key = (userName: string) => userName.toLowerCase();
const DISABLE_CHANGE: AttributeChange[] = [{ attribute: 'active', old: true, new: false }];

export function plan(input: PlanInput): Plan {
  const protectedIds = input.protectedTeamViewerIds ?? new Set<string>();
  const tvById = new Map(input.teamViewer.map((u) => [u.id, u]));
  const tvByName = new Map<string, TeamViewerUser[]>();
  for (const u of input.teamViewer) {
    const list = tvByName.get(key(u.userName)) ?? [];
    list.push(u);
    tvByName.set(key(u.userName), list);
  }
  // TeamViewer ids tied to an Entra user (by a link, or by an action planned in this run): never
  // matched to a second one. Claims made while planning go in too, so two Entra users can never
  // end up linked to one TeamViewer user.
  const claimed = new Map<string, string>();
  for (const l of input.links) if (l.teamViewerId) claimed.set(l.teamViewerId, l.entraId);
  const unclaimed = (userName: string, entraId: string) =>
    (tvByName.get(key(userName)) ?? []).filter((u) => !claimed.has(u.id) || claimed.get(u.id) === entraId);

  /**
   * The TeamViewer user a link stands for. A pending intent (a create whose answer was lost) is
   * resolved by the userName it was sent with: the create may well have happened.
   */
  const resolve = (link: Link | undefined): { current?: TeamViewerUser; fromIntent: boolean; ambiguous?: TeamViewerUser[] } => {
    if (!link) return { fromIntent: false };
    if (link.teamViewerId) return { current: tvById.get(link.teamViewerId), fromIntent: false };
    const found = unclaimed(link.userName, link.entraId);
    if (found.length > 1) return { fromIntent: true, ambiguous: found };
    if (found.length === 1) claimed.set(found[0].id, link.entraId);
    return { current: found[0], fromIntent: true };
  };

  // Two Entra users whose mapped userName is the same login can never both be provisioned.
  const wanted = new Map<string, number>();
  const linkByEntra = new Map(input.links.map((l) => [l.entraId, l]));
  for (const user of input.users) {
    if (user.entitled && !user.error && !linkByEntra.get(user.entraId)?.teamViewerId) wanted.set(key(userNameOf(user)), (wanted.get(key(userNameOf(user))) ?? 0) + 1);
  }

  const actions: Action[] = [];
  let unchanged = 0;
  let outOfScope = 0;
  const seen = new Set<string>();

  /** A TeamViewer user we manage that should not be active (any reason). */
  const deprovision = (base: ActionBase, current: TeamViewerUser, fromIntent: boolean, kind: NotEntitledKind, reason: string) => {
    const linkOnly = (patch: TeamViewerPatch, changes: AttributeChange[]) =>
      actions.push({ ...base, kind: 'link', teamViewerId: current.id, userName: current.userName, patch, changes, current });
    if (!current.active) {
      if (fromIntent) linkOnly({}, []);
      else unchanged++;
    } else if (input.skipOutOfScopeDeletions && kind === 'out-of-scope') {
      if (fromIntent) linkOnly({}, []);
      actions.push({ ...base, kind: 'skip', teamViewerId: current.id, reason: `left active (SKIP_OUT_OF_SCOPE_DELETIONS): ${reason}` });
    } else if (protectedIds.has(current.id)) {
      if (fromIntent) linkOnly({}, []);
      actions.push({ ...base, kind: 'skip', teamViewerId: current.id, warning: true, reason: `not disabled: ${current.userName} owns the TeamViewer API token tvsync uses (${reason})` });
    } else if (fromIntent) {
      linkOnly({ active: false }, DISABLE_CHANGE);
    } else {
      actions.push({ ...base, kind: 'disable', teamViewerId: current.id, reason, patch: { active: false }, changes: DISABLE_CHANGE });
    }
  };

  /** restart --full: the login now belongs to another TeamViewer user, but the linked one still exists. */
  const warnIfLoginElsewhere = (base: ActionBase, current: TeamViewerUser, userName: string) => {
    const other = unclaimed(userName, base.entraId).find((u) => u.id !== current.id);
    if (!other) return;
    actions.push({
      ...base,
      kind: 'skip',
      warning: true,
      teamViewerId: current.id,
      reason: `matching again by userName found TeamViewer user ${other.id} "${other.userName}", but the user stays linked to TeamViewer user ${current.id} "${current.userName}", which still exists (tvsync never abandons a TeamViewer user it manages); rename or remove one of them in TeamViewer, or run "tvsync unlink ${base.entraId}" to match this user by userName afresh`,
    });
  };

  for (const user of input.users) {
    seen.add(user.entraId);
    const base = { entraId: user.entraId, userPrincipalName: user.userPrincipalName };
    const link = linkByEntra.get(user.entraId);
    const { current, fromIntent, ambiguous } = resolve(link);

    if (ambiguous) {
      actions.push({ ...base, kind: 'fail', code: 'AMBIGUOUS_MATCH', reason: ambiguousReason(ambiguous, link!.userName) });
      continue;
    }
    if (current) {
      // Re-matching (restart --full) rewrites the link like a resolved intent does.
      const relink = fromIntent || Boolean(link?.rematch);
      if (link?.rematch && !user.error) warnIfLoginElsewhere(base, current, userNameOf(user));
      if (!user.entitled && user.notEntitled) {
        deprovision(base, current, relink, user.notEntitled.kind, user.notEntitled.reason);
      } else if (user.error) {
        actions.push({ ...base, kind: 'fail', code: user.error.code, reason: user.error.message, teamViewerId: current.id });
      } else {
        const { patch, changes } = guardOwner(diff(user, current), current, protectedIds, base, actions);
        if (relink) actions.push({ ...base, kind: 'link', teamViewerId: current.id, userName: current.userName, patch, changes, current });
        else if (changes.length === 0) unchanged++;
        else if (patch.active === false) actions.push({ ...base, kind: 'disable', teamViewerId: current.id, reason: 'the active mapping gave False', patch, changes });
        else actions.push({ ...base, kind: patch.active === true ? 'enable' : 'update', teamViewerId: current.id, patch, changes });
      }
      continue;
    }

    // Not linked, linked to a TeamViewer user that is gone, or an intent that found nothing.
    const vanished = link?.teamViewerId ?? undefined;
    if (user.error) {
      // Without a trustworthy userName nothing may be matched: fail (or leave alone) this user only.
      if (!user.notEntitled) actions.push({ ...base, kind: 'fail', code: user.error.code, reason: user.error.message });
      else if (link) actions.push({ ...base, kind: 'unlink', teamViewerId: link.teamViewerId, reason: 'not entitled, and no TeamViewer user is linked' });
      continue;
    }
    const userName = userNameOf(user);
    const candidates = unclaimed(userName, user.entraId);

    if (!user.entitled) {
      if (link) {
        actions.push({ ...base, kind: 'unlink', teamViewerId: link.teamViewerId, reason: vanished ? `TeamViewer user ${vanished} no longer exists and the user is not entitled` : 'an interrupted create left no TeamViewer user and the user is not entitled' });
      } else if (user.notEntitled?.kind === 'disabled' && candidates.length === 1 && candidates[0].active && !protectedIds.has(candidates[0].id)) {
        // In scope, disabled in Entra, and already in TeamViewer under the same login: manage it
        // and make it inactive, as Entra does for a matched user that is soft-deleted. A user
        // merely out of scope is never matched: we do not touch what we do not manage.
        const match = candidates[0];
        claimed.set(match.id, user.entraId);
        actions.push({ ...base, kind: 'link', teamViewerId: match.id, userName: match.userName, patch: { active: false }, changes: DISABLE_CHANGE, current: match });
      } else if (user.notEntitled?.kind === 'out-of-scope') {
        outOfScope++; // never ours, never touched: counted, not listed (a tenant may have 100k)
      } else {
        actions.push({ ...base, kind: 'skip', reason: `not created: ${user.notEntitled?.reason ?? 'not entitled'}` });
      }
      continue;
    }

    if ((wanted.get(key(userName)) ?? 0) > 1) {
      actions.push({ ...base, kind: 'fail', code: 'USERNAME_CLAIMED_TWICE', reason: `${wanted.get(key(userName))} Entra users map to the TeamViewer login ${userName}; none of them is provisioned until only one does` });
      continue;
    }
    if (candidates.length > 1) {
      actions.push({ ...base, kind: 'fail', code: 'AMBIGUOUS_MATCH', reason: ambiguousReason(candidates, userName) });
      continue;
    }
    if (candidates.length === 1) {
      const match = candidates[0];
      claimed.set(match.id, user.entraId);
      const { patch, changes } = guardOwner(diff(user, match), match, protectedIds, base, actions);
      actions.push({ ...base, kind: 'link', teamViewerId: match.id, userName: match.userName, patch, changes, current: match });
      continue;
    }
    const taken = (tvByName.get(key(userName)) ?? []).find((u) => claimed.has(u.id));
    if (taken) {
      actions.push({ ...base, kind: 'fail', code: 'USERNAME_CONFLICT', reason: `TeamViewer user ${taken.id} "${taken.userName}" is already linked to another Entra user (${claimed.get(taken.id)}); if that person left and the login was reused, run "tvsync unlink ${claimed.get(taken.id)}" to drop only that link, and the next cycle links the TeamViewer user to this one` });
      continue;
    }
    actions.push({ ...base, kind: 'create', draft: draftFor(user), desired: user, ...(vanished ? { replacesTeamViewerId: vanished } : {}) });
  }

  // Linked users not read from Entra this cycle: unassigned, out of scope or deleted.
  for (const link of input.subset ? [] : input.links) {
    if (seen.has(link.entraId)) continue;
    const base = { entraId: link.entraId, userPrincipalName: link.userPrincipalName };
    const { current, fromIntent, ambiguous } = resolve(link);
    if (ambiguous) {
      actions.push({ ...base, kind: 'skip', warning: true, reason: `no longer assigned, but an interrupted create left ${ambiguousReason(ambiguous, link.userName)}` });
    } else if (!current) {
      actions.push({ ...base, kind: 'unlink', teamViewerId: link.teamViewerId, reason: link.teamViewerId ? `no longer assigned, and TeamViewer user ${link.teamViewerId} no longer exists` : 'no longer assigned; an interrupted create left no TeamViewer user' });
    } else {
      const gone = input.goneReasons?.get(link.entraId);
      deprovision(base, current, fromIntent, gone ? 'deleted' : 'out-of-scope', gone ?? 'no longer assigned to the TeamViewer application in Entra ID');
    }
  }

  return { actions, unchanged, outOfScope };
}

type NotEntitledKind = NonNullable<DesiredUser['notEntitled']>['kind'];

/** The token owner is never made inactive, whatever the active mapping says. */
function guardOwner(
  result: { patch: TeamViewerPatch; changes: AttributeChange[] },
  current: TeamViewerUser,
  protectedIds: ReadonlySet<string>,
  base: ActionBase,
  actions: Action[],
): { patch: TeamViewerPatch; changes: AttributeChange[] } {
  if (result.patch.active !== false || !protectedIds.has(current.id)) return result;
  const { active: _dropped, ...patch } = result.patch;
  actions.push({ ...base, kind: 'skip', teamViewerId: current.id, warning: true, reason: `not disabled: ${current.userName} owns the TeamViewer API token tvsync uses (the active mapping gave False)` });
  return { patch, changes: result.changes.filter((c) => c.attribute !== 'active') };
}

function ambiguousReason(candidates: TeamViewerUser[], userName: string): string {
  return `${candidates.length} TeamViewer users (${candidates.map((c) => `${c.id} "${c.userName}"`).join(', ')}) have the userName ${userName} apart from letter case; link one by hand or remove the other`;
}

function userNameOf(user: DesiredUser): string {
  const value = user.attributes.userName?.value;
  return typeof value === 'string' && value ? value : user.userPrincipalName;
}
