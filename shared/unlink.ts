/**
 * `tvsync unlink`: drops the link of one Entra user, for the one case matching cannot fix by
 * itself — a login reused by a new person while the link of the person who had it still claims
 * the TeamViewer user (USERNAME_CONFLICT). Narrow on purpose: one user, named by object id or
 * login, under the run lease, and only with `confirm`; without it, it says what it would do.
 *
 * What it gives up is said before it is done: the TeamViewer user is no longer managed for that
 * Entra user (never again updated or deactivated for them). The next cycle links it by userName
 * to whichever Entra user in scope has that login, if any.
 */
import type { Logger } from './log';
import type { StateStore } from './state/store';
import type { TeamViewerClient } from './teamviewer/client';
import { acquireLease } from './sync/lease';
import type { Link, TeamViewerUser } from './domain/model';

export interface UnlinkResult {
  query: string;
  /** The link the query names; null when none or several do. */
  link: Link | null;
  /** Every link the query matched, when it matched several (ask again by object id). */
  candidates: Array<Pick<Link, 'entraId' | 'userPrincipalName' | 'userName' | 'teamViewerId'>>;
  /** The linked TeamViewer user as TeamViewer has it now (null: none, or it could not be read). */
  teamViewerUser: TeamViewerUser | null;
  dropped: boolean;
  /** What was done (or would be), and what it means. */
  message: string;
}

export interface UnlinkDeps {
  store: Pick<StateStore, 'listLinks' | 'getLink' | 'deleteLink' | 'deleteEscrow' | 'getMeta' | 'putMeta' | 'deleteMeta'>;
  teamViewer: Pick<TeamViewerClient, 'getUser'>;
  logger: Logger;
}

export async function unlinkUser(deps: UnlinkDeps, query: string, options: { by: string; confirm: boolean }): Promise<UnlinkResult> {
  const wanted = query.trim().toLowerCase();
  const matches = (await deps.store.listLinks()).filter((l) => [l.entraId, l.userPrincipalName, l.userName].some((v) => v.toLowerCase() === wanted));
  const base: UnlinkResult = { query, link: null, candidates: [], teamViewerUser: null, dropped: false, message: '' };
  if (matches.length === 0) return { ...base, message: `no link matches "${query}" (give the Entra object id, or the userPrincipalName or login the link was made with); nothing changed` };
  if (matches.length > 1) {
    return {
      ...base,
      candidates: matches.map(({ entraId, userPrincipalName, userName, teamViewerId }) => ({ entraId, userPrincipalName, userName, teamViewerId })),
      message: `${matches.length} links match "${query}"; nothing changed. Name one by its Entra object id`,
    };
  }
  const link = matches[0];
  const teamViewerUser = link.teamViewerId ? await deps.teamViewer.getUser(link.teamViewerId).catch(() => null) : null;
  const consequence = describe(link, teamViewerUser);
  if (!options.confirm) return { ...base, link, teamViewerUser, message: `${consequence}\nNothing changed: run again with --yes to drop this link.` };

  const lease = await acquireLease(deps.store, { purpose: `unlink ${link.entraId} by ${options.by}`, logger: deps.logger });
  try {
    // Read again under the lease: a cycle may have rewritten the link since.
    const current = await deps.store.getLink(link.entraId);
    if (!current) return { ...base, link, teamViewerUser, message: `the link of ${link.userPrincipalName} (${link.entraId}) no longer exists; nothing changed` };
    await deps.store.deleteLink(current.entraId);
    await deps.store.deleteEscrow(current.entraId);
    deps.logger.warn(`link of Entra user ${current.entraId} to TeamViewer user ${current.teamViewerId ?? '(none yet)'} dropped by ${options.by}`);
    return { ...base, link: current, teamViewerUser, dropped: true, message: `Dropped. ${consequence}` };
  } finally {
    await lease.release();
  }
}

function describe(link: Link, tv: TeamViewerUser | null): string {
  const who = `Entra user ${link.userPrincipalName} (${link.entraId})`;
  if (!link.teamViewerId) return `${who} has no TeamViewer user yet (a create was interrupted). Without the link, the next cycle matches them by userName ${link.userName} again.`;
  const state = tv ? `${tv.active ? 'active' : 'inactive'}, userName ${tv.userName}` : 'not found in TeamViewer, or it could not be read';
  return [
    `${who} is linked to TeamViewer user ${link.teamViewerId} (${state}).`,
    `Without the link, tvsync no longer manages that TeamViewer user for ${link.userPrincipalName}: it is neither updated nor deactivated for them.`,
    `At the next cycle, the Entra user in scope whose login is ${tv?.userName ?? link.userName} (this one if still in scope, or a new person who reuses the login) is linked to it by userName and made active; if there is none, it stays as it is, unmanaged${tv?.active ? ' — deactivate it in TeamViewer yourself if its owner left' : ''}.`,
  ].join('\n');
}
