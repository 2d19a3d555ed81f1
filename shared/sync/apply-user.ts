/**
 * What one planned user action does against TeamViewer and state (a cycle applies many; provision
 * on demand applies one).
 *
 * Invariants (crash safety — a process may die at any line):
 * - Before a create is sent, a pending link (intent) naming the Entra user and the userName is
 *   written. After a crash — or a create cut off at the cycle's deadline, or whose answer was lost
 *   — the next cycle finds either the TeamViewer user (matched by userName in the snapshot, then
 *   linked) or nothing (then created): never two users. The intent is dropped only when the create
 *   certainly did not happen (400) or the login belongs to someone else (409).
 * - Every completed TeamViewer write is followed by the link write that records it (with what
 *   TeamViewer answered, so a later hand edit shows as drift) before the action counts as done.
 * - A link action records the tie before its PATCH: if the PATCH fails, the user is still ours.
 * - One TeamViewer user is tied to at most one Entra user: a create that finds its login already
 *   linked to someone else fails (USERNAME_CONFLICT) instead of taking it over.
 * - Never throws: every failure is a report with the error's code.
 *
 * Personal data: lines that name a user (UPN) are logged at debug only.
 */
import type { Logger } from '../log';
import type { ActionReport, ActionStatus, AttributeChange, Link, TeamViewerUser, TeamViewerUserDraft } from '../domain/model';
import { errorInfo } from './error-info';
import { diff } from './mapping';
import type { Action } from './planner';
import type { CycleState, TeamViewerTarget } from './cycle/ports';

/** What applying a user action needs: TeamViewer, the links in state, a logger. */
export interface UserWriteDeps {
  teamViewer: TeamViewerTarget;
  state: Pick<CycleState, 'putLink' | 'deleteLink' | 'findLinkByTeamViewerId'>;
  logger: Logger;
}

/**
 * Applies one planned action (also used by provision on demand). Never throws: failures are
 * reports. `signal` cuts off its TeamViewer calls (the cycle's deadline).
 */
export async function applyAction(action: Action, link: Link | undefined, deps: UserWriteDeps, now: () => Date, signal?: AbortSignal): Promise<ActionReport> {
  const state = deps.state;
  const tv = { signal };
  const stamp = () => now().toISOString();
  const linkFor = (user: TeamViewerUser): Link => ({
    entraId: action.entraId,
    teamViewerId: user.id,
    userName: user.userName,
    userPrincipalName: action.userPrincipalName,
    written: writtenOf(user, link?.written),
    active: user.active,
    createdAt: link?.createdAt ?? stamp(),
    updatedAt: stamp(),
  });
  const fail = (err: unknown): ActionReport => {
    const info = errorInfo(err);
    deps.logger.debug(`${action.kind} failed for ${action.userPrincipalName}: ${info.message}`, { entraId: action.entraId, code: info.code });
    return { ...reportOf(action, 'failure'), error: info };
  };

  try {
    switch (action.kind) {
      case 'fail':
        return { ...reportOf(action, 'failure'), error: { code: action.code, message: action.reason } };
      case 'skip':
        if (action.warning) deps.logger.debug(`skipped ${action.userPrincipalName}: ${action.reason}`, { entraId: action.entraId });
        return reportOf(action, action.warning ? 'warning' : 'skipped');
      case 'unlink':
        if (action.teamViewerId && (await deps.teamViewer.getUser(action.teamViewerId, tv))) {
          return { ...reportOf(action, 'warning'), reason: `TeamViewer user ${action.teamViewerId} was missing from the listing but exists; the link is kept and checked again next cycle` };
        }
        await state.deleteLink(action.entraId);
        return reportOf(action, 'success');
      case 'create':
        if (action.replacesTeamViewerId && (await deps.teamViewer.getUser(action.replacesTeamViewerId, tv))) {
          return { ...reportOf(action, 'warning'), reason: `TeamViewer user ${action.replacesTeamViewerId} was missing from the listing but exists; nothing created, checked again next cycle` };
        }
        return await applyCreate(action, link, deps, linkFor, stamp, signal);
      case 'link': {
        if (Object.keys(action.patch).length === 0 && action.current) {
          // Nothing to write: TeamViewer already holds what it should, and the link records that,
          // so a later hand edit shows as drift.
          await state.putLink(linkFor(action.current));
          return { ...reportOf(action, 'success'), teamViewerId: action.teamViewerId };
        }
        const match: TeamViewerUser = { id: action.teamViewerId, userName: action.userName, displayName: null, givenName: null, familyName: null, email: null, active: true };
        // Record the tie first: if the PATCH below fails, the user is still ours next cycle.
        await state.putLink({ ...linkFor(match), written: link?.written ?? {} });
        if (Object.keys(action.patch).length > 0) {
          const updated = await deps.teamViewer.patchUser(action.teamViewerId, action.patch, tv);
          await state.putLink(linkFor(updated));
        }
        return { ...reportOf(action, 'success'), teamViewerId: action.teamViewerId };
      }
      case 'update':
      case 'enable':
      case 'disable': {
        const updated = await deps.teamViewer.patchUser(action.teamViewerId, action.patch, tv);
        await state.putLink(linkFor(updated));
        return reportOf(action, 'success');
      }
    }
  } catch (err) {
    return fail(err);
  }
}

async function applyCreate(
  action: Extract<Action, { kind: 'create' }>,
  link: Link | undefined,
  deps: UserWriteDeps,
  linkFor: (user: TeamViewerUser) => Link,
  stamp: () => string,
  signal: AbortSignal | undefined,
): Promise<ActionReport> {
  const { draft } = action;
  const tv = { signal };
  await deps.state.putLink({
    entraId: action.entraId,
    teamViewerId: null,
    userName: draft.userName,
    userPrincipalName: action.userPrincipalName,
    written: {},
    active: draft.active,
    createdAt: link?.createdAt ?? stamp(),
    updatedAt: stamp(),
    pending: 'create',
  });
  if (action.replacesTeamViewerId) {
    deps.logger.debug(`TeamViewer user ${action.replacesTeamViewerId} linked to ${action.userPrincipalName} no longer exists; creating a new one`, { entraId: action.entraId });
  }
  try {
    const created = await deps.teamViewer.createUser(draft, tv);
    await deps.state.putLink(linkFor(created));
    return { ...reportOf(action, 'success'), teamViewerId: created.id };
  } catch (err) {
    const code = errorInfo(err).code;
    const mayHaveApplied = (err as { mayHaveApplied?: boolean }).mayHaveApplied === true;
    if (code !== 'TEAMVIEWER_CONFLICT' && !mayHaveApplied) {
      // The create certainly did not happen: drop the intent so state holds no half link.
      if (code === 'TEAMVIEWER_BAD_REQUEST') await deps.state.deleteLink(action.entraId).catch(() => undefined);
      throw err;
    }
    // 409 (someone has this login) or a create whose answer was lost: look before deciding.
    const found = (await deps.teamViewer.findByUserName(draft.userName, tv)).filter((u) => u.userName.toLowerCase() === draft.userName.toLowerCase());
    if (found.length !== 1) {
      if (code === 'TEAMVIEWER_CONFLICT') {
        await deps.state.deleteLink(action.entraId).catch(() => undefined);
        const err409 = new Error(
          found.length === 0
            ? `TeamViewer refused to create ${draft.userName} (409: the email address is taken) and no user of your company has exactly that userName: it is registered to a TeamViewer account outside your company, or to one of yours under a different letter case. Ask the owner to release it, or change the user's UPN.`
            : `TeamViewer refused to create ${draft.userName} (409) and ${found.length} users match it; link one by hand.`,
        );
        throw Object.assign(err409, { code: 'TEAMVIEWER_CONFLICT' });
      }
      throw err;
    }
    const match = found[0];
    // One TeamViewer user, one Entra user: never take over a user another link already holds.
    const linked = await deps.state.findLinkByTeamViewerId(match.id);
    const holder = linked && linked.entraId !== action.entraId ? linked : null;
    if (holder) {
      await deps.state.deleteLink(action.entraId).catch(() => undefined);
      throw Object.assign(new Error(`TeamViewer user ${match.id} "${match.userName}" is already linked to another Entra user (${holder.entraId}); not linked twice. If that person left and the login was reused, run "tvsync unlink ${holder.entraId}"`), { code: 'USERNAME_CONFLICT' });
    }
    deps.logger.debug(`linked ${action.userPrincipalName} to existing TeamViewer user ${match.id} after ${code}`, { entraId: action.entraId });
    await deps.state.putLink(linkFor(match));
    const { patch } = diff(action.desired, match);
    if (Object.keys(patch).length > 0) await deps.state.putLink(linkFor(await deps.teamViewer.patchUser(match.id, patch, tv)));
    return { ...reportOf(action, 'success'), kind: 'link', teamViewerId: match.id };
  }
}

export function dryRunReport(action: Action): ActionReport {
  if (action.kind === 'fail') return { ...reportOf(action, 'failure'), error: { code: action.code, message: action.reason } };
  if (action.kind === 'skip') return reportOf(action, action.warning ? 'warning' : 'skipped');
  return reportOf(action, 'planned');
}

export function reportOf(action: Action, status: ActionStatus): ActionReport {
  return {
    kind: action.kind,
    status,
    entraId: action.entraId,
    userPrincipalName: action.userPrincipalName,
    teamViewerId: 'teamViewerId' in action && action.teamViewerId ? action.teamViewerId : null,
    changes: 'changes' in action ? action.changes : action.kind === 'create' ? createChanges(action.draft) : [],
    ...('reason' in action ? { reason: action.reason } : {}),
    ...(action.drift ? { reason: action.drift, drift: true as const } : {}),
  };
}

function createChanges(draft: TeamViewerUserDraft): AttributeChange[] {
  return Object.entries(draft)
    .filter(([, v]) => v !== undefined)
    .map(([attribute, value]) => ({ attribute, old: null, new: value as string | boolean }));
}

function writtenOf(user: TeamViewerUser, previous?: Link['written']): Link['written'] {
  return { ...previous, userName: user.userName, displayName: user.displayName, active: user.active };
}

/**
 * Applies one planned action (also used by provision on demand). Never throws: failures are
 * reports. `signal` cuts off its TeamViewer calls (the cycle's deadline).
 */
