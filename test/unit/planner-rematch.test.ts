/**
 * restart --full, as the planner sees it: links marked for re-matching, as a table of cases. A
 * marked link is checked again by userName when its user is read and rewritten; it never
 * abandons a TeamViewer user that still exists, and a user no longer read is deprovisioned as
 * always (no orphan).
 */
import { describe, expect, it } from 'vitest';
import { mapUser } from '../../shared/sync/mapping';
import type { AssignedUser, Link, TeamViewerUser } from '../../shared/domain/model';
import { deactivates, plan, type Action } from '../../shared/sync/planner';

const entra = (id: string, upn: string, extra: Partial<AssignedUser> = {}): AssignedUser => ({
  id, userPrincipalName: upn, displayName: `Name ${id}`, givenName: 'Name', surname: id, mail: upn, accountEnabled: true, direct: true, viaGroups: [], appRoleIds: [], ...extra,
});
const tv = (id: string, userName: string, extra: Partial<TeamViewerUser> = {}): TeamViewerUser => ({
  id, userName, displayName: 'Name e1', givenName: null, familyName: null, email: userName, active: true, ...extra,
});
const marked = (entraId: string, teamViewerId: string | null, userName: string): Link => ({
  entraId, teamViewerId, userName, userPrincipalName: userName, written: {}, active: true, createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z', rematch: true,
});
const brief = (a: Action) => ({
  kind: a.kind,
  ...('teamViewerId' in a && a.teamViewerId ? { teamViewerId: a.teamViewerId } : {}),
  ...('patch' in a && Object.keys(a.patch).length ? { patch: a.patch } : {}),
  ...(a.kind === 'create' && a.replacesTeamViewerId ? { replaces: a.replacesTeamViewerId } : {}),
  ...(a.kind === 'skip' && a.warning ? { warning: true } : {}),
  deactivates: deactivates(a),
});

const cases: Array<{ name: string; users: AssignedUser[]; links: Link[]; teamViewer: TeamViewerUser[]; expected: Array<ReturnType<typeof brief>> }> = [
  {
    name: 'the linked TeamViewer user has the login: the link is rewritten, nothing sent to TeamViewer',
    users: [entra('e1', 'ann@contoso.com')],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [tv('u1', 'Ann@Contoso.com')],
    expected: [{ kind: 'link', teamViewerId: 'u1', deactivates: false }],
  },
  {
    name: 'the UPN changed and nobody has the new login: the same TeamViewer user is renamed (never a second one)',
    users: [entra('e1', 'ann.new@contoso.com')],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [tv('u1', 'ann@contoso.com')],
    expected: [{ kind: 'link', teamViewerId: 'u1', patch: { userName: 'ann.new@contoso.com' }, deactivates: false }],
  },
  {
    name: 'another TeamViewer user has the login but the linked one still exists: kept, with a warning',
    users: [entra('e1', 'ann.new@contoso.com')],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [tv('u1', 'ann@contoso.com'), tv('u2', 'ann.new@contoso.com')],
    expected: [
      { kind: 'skip', teamViewerId: 'u1', warning: true, deactivates: false },
      { kind: 'link', teamViewerId: 'u1', patch: { userName: 'ann.new@contoso.com' }, deactivates: false },
    ],
  },
  {
    name: 'the linked TeamViewer user is gone and another has the login: matched to it',
    users: [entra('e1', 'ann@contoso.com')],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [tv('u9', 'ann@contoso.com')],
    expected: [{ kind: 'link', teamViewerId: 'u9', deactivates: false }],
  },
  {
    name: 'the linked TeamViewer user is gone and nobody has the login: created again',
    users: [entra('e1', 'ann@contoso.com')],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [],
    expected: [{ kind: 'create', replaces: 'u1', deactivates: false }],
  },
  {
    name: 'the user is no longer read (left): deactivated as in any cycle, under the guard',
    users: [],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [tv('u1', 'ann@contoso.com')],
    expected: [{ kind: 'disable', teamViewerId: 'u1', patch: { active: false }, deactivates: true }],
  },
  {
    name: 'the user is read but disabled in Entra: deactivated through the rewritten link',
    users: [entra('e1', 'ann@contoso.com', { accountEnabled: false })],
    links: [marked('e1', 'u1', 'ann@contoso.com')],
    teamViewer: [tv('u1', 'ann@contoso.com')],
    expected: [{ kind: 'link', teamViewerId: 'u1', patch: { active: false }, deactivates: true }],
  },
  {
    name: 'the login belongs to a TeamViewer user another link holds: not taken',
    users: [entra('e1', 'ann@contoso.com')],
    links: [marked('e1', 'u1', 'old.ann@contoso.com'), marked('e2', 'u2', 'ann@contoso.com')],
    teamViewer: [tv('u1', 'old.ann@contoso.com'), tv('u2', 'ann@contoso.com')],
    expected: [
      { kind: 'link', teamViewerId: 'u1', patch: { userName: 'ann@contoso.com' }, deactivates: false },
      { kind: 'disable', teamViewerId: 'u2', patch: { active: false }, deactivates: true },
    ],
  },
];

describe('planner: links marked by restart --full', () => {
  it.each(cases)('When $name', ({ users, links, teamViewer, expected }) => {
    const result = plan({ users: users.map((u) => mapUser(u)), links, teamViewer });
    expect(result.actions.map(brief)).toEqual(expected);
  });

  it('When the linked TeamViewer user is kept although another has the login, then the warning names both and the narrow way out', () => {
    const result = plan({ users: [mapUser(entra('e1', 'ann.new@contoso.com'))], links: [marked('e1', 'u1', 'ann@contoso.com')], teamViewer: [tv('u1', 'ann@contoso.com'), tv('u2', 'ann.new@contoso.com')] });
    expect(result.actions[0]).toMatchObject({ reason: expect.stringMatching(/found TeamViewer user u2 "ann\.new@contoso\.com", but the user stays linked to TeamViewer user u1 "ann@contoso\.com", which still exists.*tvsync unlink e1/) });
  });

  it('When a login is taken by the link of someone who left, then USERNAME_CONFLICT points to tvsync unlink of that link, not to a restart', () => {
    const result = plan({ users: [mapUser(entra('e2', 'ann@contoso.com'))], links: [{ ...marked('e1', 'u1', 'ann@contoso.com'), rematch: undefined }], teamViewer: [tv('u1', 'ann@contoso.com', { active: false })] });
    const failure = result.actions.find((a) => a.entraId === 'e2');
    expect(failure).toMatchObject({ kind: 'fail', code: 'USERNAME_CONFLICT', reason: expect.stringContaining('run "tvsync unlink e1" to drop only that link') });
    expect(JSON.stringify(failure)).not.toMatch(/restart/);
  });
});
