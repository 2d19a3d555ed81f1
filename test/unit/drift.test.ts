import { describe, expect, it } from 'vitest';
import { comparedAttributes, findDrift, markDrift, refreshed, type DriftAttribute, type DriftCheck } from '../../shared/sync/drift';
import { DEFAULT_SYNC_CONFIG, mapUser, parseMappings } from '../../shared/sync/mapping';
import type { AssignedUser, Link, TeamViewerUser } from '../../shared/domain/model';
import { plan, type Action } from '../../shared/sync/planner';

const ALL: DriftAttribute[] = ['userName', 'displayName', 'active'];

const tv = (id: string, extra: Partial<TeamViewerUser> = {}): TeamViewerUser => ({
  id, userName: `${id}@contoso.com`, displayName: `Name ${id}`, givenName: null, familyName: null, email: `${id}@contoso.com`, active: true, ...extra,
});

const link = (entraId: string, teamViewerId: string | null, written: Link['written'], extra: Partial<Link> = {}): Link => ({
  entraId, teamViewerId, userName: `${teamViewerId}@contoso.com`, userPrincipalName: `${teamViewerId}@contoso.com`, written, active: written.active !== false,
  createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z', ...extra,
});

/** What tvsync records after writing TeamViewer user `id` as `tv(id)` makes it. */
const wrote = (id: string, extra: Partial<TeamViewerUser> = {}): Link['written'] => {
  const u = tv(id, extra);
  return { userName: u.userName, displayName: u.displayName, active: u.active };
};

const entra = (id: string, tvId: string, extra: Partial<AssignedUser> = {}): AssignedUser => ({
  id, userPrincipalName: `${tvId}@contoso.com`, displayName: `Name ${tvId}`, givenName: 'Name', surname: tvId, mail: `${tvId}@contoso.com`, accountEnabled: true, direct: true, viaGroups: [], appRoleIds: [], ...extra,
});

describe('comparedAttributes: what a quiet cycle looks at', () => {
  it.each([
    ['the gallery defaults', DEFAULT_SYNC_CONFIG.mappings, ['userName', 'displayName', 'active']],
    ['displayName sent on create only', parseMappings('[{"target":"userName","source":"userPrincipalName"},{"target":"displayName","source":"displayName","apply":"create"}]'), ['userName', 'active']],
    ['userName on create only, a constant display name', parseMappings('[{"target":"userName","source":"userPrincipalName","apply":"create"},{"target":"displayName","constant":"Staff"}]'), ['displayName', 'active']],
  ])('When the mappings are %s, then it compares %j', (_what, mappings, expected) => {
    expect(comparedAttributes({ ...DEFAULT_SYNC_CONFIG, mappings })).toEqual(expected);
  });
});

describe('findDrift: TeamViewer against what tvsync wrote', () => {
  const cases: Array<{ when: string; links: Link[]; teamViewer: TeamViewerUser[]; compared?: DriftAttribute[]; drifted: Array<[string, DriftAttribute[]]>; vanished?: string[] }> = [
    { when: 'nothing was touched', links: [link('e1', 'u1', wrote('u1'))], teamViewer: [tv('u1')], drifted: [] },
    { when: 'a leaver was re-enabled', links: [link('e1', 'u1', wrote('u1', { active: false }))], teamViewer: [tv('u1', { active: true })], drifted: [['e1', ['active']]] },
    { when: 'a user tvsync keeps active was deactivated', links: [link('e1', 'u1', wrote('u1'))], teamViewer: [tv('u1', { active: false })], drifted: [['e1', ['active']]] },
    { when: 'a display name was edited', links: [link('e1', 'u1', wrote('u1'))], teamViewer: [tv('u1', { displayName: 'Hand' })], drifted: [['e1', ['displayName']]] },
    { when: 'the display name is not compared (mapped on create only)', links: [link('e1', 'u1', wrote('u1'))], teamViewer: [tv('u1', { displayName: 'Hand' })], compared: ['userName', 'active'], drifted: [] },
    { when: 'the userName differs in letter case only', links: [link('e1', 'u1', wrote('u1'))], teamViewer: [tv('u1', { userName: 'U1@Contoso.com' })], drifted: [] },
    { when: 'the link records nothing (an older version linked it)', links: [link('e1', 'u1', {})], teamViewer: [tv('u1', { active: false, displayName: 'Hand' })], drifted: [] },
    { when: 'the user is gone from TeamViewer', links: [link('e1', 'u1', wrote('u1'))], teamViewer: [], drifted: [], vanished: ['e1'] },
    { when: 'a create is still pending (intent)', links: [link('e1', null, {}, { pending: 'create' })], teamViewer: [], drifted: [] },
    { when: 'the link is marked for re-matching', links: [link('e1', 'u1', wrote('u1'), { rematch: true })], teamViewer: [], drifted: [] },
    { when: 'two attributes changed and an unmanaged user too', links: [link('e1', 'u1', wrote('u1', { active: false }))], teamViewer: [tv('u1', { displayName: 'Hand', active: true }), tv('u9', { active: false })], drifted: [['e1', ['displayName', 'active']]] },
  ];
  it.each(cases)('When $when, then it is found as such', ({ links, teamViewer, compared, drifted, vanished }) => {
    const result = findDrift(links, teamViewer, compared ?? ALL);
    expect(result.drifted.map((d) => [d.entraId, d.attributes])).toEqual(drifted);
    expect(result.vanished.map((l) => l.entraId)).toEqual(vanished ?? []);
  });
});

/** Plans one cycle with the real planner, then marks drift. */
function planAndMark(users: AssignedUser[], links: Link[], teamViewer: TeamViewerUser[], mode: DriftCheck = 'every-cycle') {
  const planned = plan({ users: users.map((u) => mapUser(u)), links, teamViewer });
  return markDrift(planned.actions, { links, teamViewer, mode, compared: ALL });
}
const only = (actions: Action[]) => {
  expect(actions).toHaveLength(1);
  return actions[0]!;
};

describe('markDrift: which planned actions put back a hand edit', () => {
  it('When a leaver was re-enabled by hand, then the deactivation is a repair whose reason says so and keeps why', () => {
    const { actions } = planAndMark([], [link('e1', 'u1', wrote('u1', { active: false }))], [tv('u1', { active: true })]);
    expect(only(actions)).toMatchObject({ kind: 'disable', drift: 'changed in TeamViewer by hand (active): put back — no longer assigned to the TeamViewer application in Entra ID' });
  });

  it('When the display name changed in Entra, then the update is not drift, whatever TeamViewer held', () => {
    const { actions } = planAndMark([entra('e1', 'u1', { displayName: 'New In Entra' })], [link('e1', 'u1', wrote('u1'))], [tv('u1', { displayName: 'Hand' })]);
    expect(only(actions)).toMatchObject({ kind: 'update', patch: { displayName: 'New In Entra' } });
    expect(only(actions)).not.toHaveProperty('drift');
  });

  it('When one attribute was edited by hand and another changed in Entra, then the action is a repair naming only the hand edit', () => {
    const { actions } = planAndMark([entra('e1', 'u1', { userPrincipalName: 'renamed@contoso.com' })], [link('e1', 'u1', wrote('u1'))], [tv('u1', { displayName: 'Hand' })]);
    expect(only(actions)).toMatchObject({ kind: 'update', patch: { userName: 'renamed@contoso.com', displayName: 'Name u1' }, drift: 'changed in TeamViewer by hand (displayName): put back' });
  });

  it('When a user tvsync keeps active was deactivated by hand, then enabling them again is a repair', () => {
    const { actions } = planAndMark([entra('e1', 'u1')], [link('e1', 'u1', wrote('u1'))], [tv('u1', { active: false })]);
    expect(only(actions)).toMatchObject({ kind: 'enable', drift: 'changed in TeamViewer by hand (active): put back' });
  });

  it('When the link records nothing, then no change counts as a repair', () => {
    const { actions } = planAndMark([entra('e1', 'u1')], [link('e1', 'u1', {})], [tv('u1', { displayName: 'Hand' })]);
    expect(only(actions)).not.toHaveProperty('drift');
  });

  it('When a managed user was deleted in TeamViewer, then creating them again is a repair (and under off still happens, unmarked)', () => {
    const links = [link('e1', 'u1', wrote('u1'))];
    expect(only(planAndMark([entra('e1', 'u1')], links, []).actions)).toMatchObject({ kind: 'create', replacesTeamViewerId: 'u1', drift: 'changed in TeamViewer by hand: TeamViewer user u1 was deleted; created again' });
    const off = only(planAndMark([entra('e1', 'u1')], links, [], 'off').actions);
    expect(off).toMatchObject({ kind: 'create', replacesTeamViewerId: 'u1' });
    expect(off).not.toHaveProperty('drift');
  });

  it('When DRIFT_CHECK=off, then a repair becomes a skip saying why, and the rest of a mixed action stays', () => {
    const leaver = planAndMark([], [link('e1', 'u1', wrote('u1', { active: false }))], [tv('u1', { active: true })], 'off');
    expect(leaver.leftAlone).toBe(1);
    expect(only(leaver.actions)).toEqual({ entraId: 'e1', userPrincipalName: 'u1@contoso.com', kind: 'skip', teamViewerId: 'u1', reason: 'changed in TeamViewer by hand (active); left as it is (DRIFT_CHECK=off)' });
    const mixed = planAndMark([entra('e1', 'u1', { userPrincipalName: 'renamed@contoso.com' })], [link('e1', 'u1', wrote('u1'))], [tv('u1', { displayName: 'Hand' })], 'off');
    expect(only(mixed.actions)).toMatchObject({ kind: 'update', patch: { userName: 'renamed@contoso.com' }, changes: [{ attribute: 'userName' }] });
    expect(only(mixed.actions)).not.toHaveProperty('patch.displayName');
    expect(mixed.refresh).toEqual([]);
  });

  it('When a link action (re-matching) would also put a hand edit back under off, then the link stays without the repair', () => {
    const links = [link('e1', 'u1', wrote('u1'), { rematch: true })];
    const { actions } = planAndMark([entra('e1', 'u1')], links, [tv('u1', { displayName: 'Hand' })], 'off');
    expect(only(actions)).toMatchObject({ kind: 'link', teamViewerId: 'u1', patch: {}, changes: [] });
  });
});

describe('markDrift: links recorded anew', () => {
  it('When the plan leaves a drifted user alone, then the link is refreshed with TeamViewer\'s values, so the next quiet cycle finds nothing', () => {
    // SKIP_OUT_OF_SCOPE_DELETIONS-like: the user left scope, the planner leaves an inactive user inactive.
    const links = [link('e1', 'u1', wrote('u1'))];
    const teamViewer = [tv('u1', { active: false })];
    const planned = plan({ users: [], links, teamViewer, skipOutOfScopeDeletions: true });
    const { actions, refresh } = markDrift(planned.actions, { links, teamViewer, mode: 'every-cycle', compared: ALL });
    expect(actions).toEqual([]);
    expect(refresh.map((r) => r.link.entraId)).toEqual(['e1']);
    const after = refreshed(refresh[0]!.link, refresh[0]!.current, ALL, '2026-02-01T00:00:00Z');
    expect(after).toMatchObject({ written: { active: false }, active: false, updatedAt: '2026-02-01T00:00:00Z' });
    expect(findDrift([after], teamViewer, ALL).drifted).toEqual([]);
  });

  it('When a link records nothing yet, then it is refreshed; a user with a planned action or a pending create is not', () => {
    const links = [link('e1', 'u1', {}), link('e2', 'u2', wrote('u2')), link('e3', null, {}, { pending: 'create' })];
    const teamViewer = [tv('u1'), tv('u2', { displayName: 'Hand' })];
    const { refresh } = planAndMark([entra('e1', 'u1'), entra('e2', 'u2')], links, teamViewer);
    expect(refresh.map((r) => r.link.entraId)).toEqual(['e1']);
  });
});
