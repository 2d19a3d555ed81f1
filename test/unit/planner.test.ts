import { describe, expect, it } from 'vitest';
import { mapUser } from '../../shared/sync/mapping';
import type { AssignedUser, Link, TeamViewerUser } from '../../shared/domain/model';
import { plan, type Action } from '../../shared/sync/planner';

const entra = (id: string, upn: string, extra: Partial<AssignedUser> = {}): AssignedUser => ({
  id,
  userPrincipalName: upn,
  displayName: `Name ${id}`,
  givenName: 'Name',
  surname: id,
  mail: upn,
  accountEnabled: true,
  direct: true,
  viaGroups: [],
  appRoleIds: ['00000000-0000-0000-0000-000000000000'],
  ...extra,
});

const tv = (id: string, userName: string, extra: Partial<TeamViewerUser> = {}): TeamViewerUser => ({
  id,
  userName,
  displayName: null,
  givenName: null,
  familyName: null,
  email: userName,
  active: true,
  ...extra,
});

const link = (entraId: string, teamViewerId: string | null, userName: string, extra: Partial<Link> = {}): Link => ({
  entraId,
  teamViewerId,
  userName,
  userPrincipalName: userName,
  written: {},
  active: true,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  ...extra,
});

const kinds = (actions: Action[]) => actions.map((a) => `${a.kind}:${a.entraId}`).sort();

describe('planner', () => {
  it('When a new assigned user has no TeamViewer account, then it is created active with names and email', () => {
    const result = plan({ users: [mapUser(entra('e1', 'Ann@Contoso.com'))], links: [], teamViewer: [] });
    expect(result.actions).toHaveLength(1);
    const create = result.actions[0] as Extract<Action, { kind: 'create' }>;
    expect(create.kind).toBe('create');
    expect(create.draft).toEqual({ userName: 'Ann@Contoso.com', displayName: 'Name e1', givenName: 'Name', familyName: 'e1', email: 'Ann@Contoso.com', active: true });
  });

  it('When nothing changed, then there is no action at all', () => {
    const user = entra('e1', 'ann@contoso.com');
    const result = plan({
      users: [mapUser(user)],
      links: [link('e1', 'u1', 'ann@contoso.com')],
      teamViewer: [tv('u1', 'ann@contoso.com', { displayName: 'Name e1' })],
    });
    expect(result.actions).toEqual([]);
    expect(result.unchanged).toBe(1);
  });

  it.each([
    ['same case', 'ann@contoso.com'],
    ['different case', 'ANN@contoso.COM'],
  ])('When a TeamViewer user with the same userName exists (%s), then it is linked, not duplicated', (_label, tvName) => {
    const result = plan({ users: [mapUser(entra('e1', 'ann@contoso.com'))], links: [], teamViewer: [tv('u9', tvName, { displayName: 'Name e1' })] });
    expect(result.actions).toHaveLength(1);
    expect(result.actions[0]).toMatchObject({ kind: 'link', teamViewerId: 'u9', patch: {} });
  });

  it('When two TeamViewer users match one Entra user apart from case, then it reports and does not guess', () => {
    const result = plan({ users: [mapUser(entra('e1', 'ann@contoso.com'))], links: [], teamViewer: [tv('u1', 'Ann@contoso.com'), tv('u2', 'ann@contoso.com')] });
    expect(result.actions).toHaveLength(1);
    expect(result.actions[0]).toMatchObject({ kind: 'fail', code: 'AMBIGUOUS_MATCH' });
    expect((result.actions[0] as { reason: string }).reason).toMatch(/2 TeamViewer users.*u1.*u2/);
  });

  it('When the display name changed, then only displayName is patched', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'ann@contoso.com', { displayName: 'Ann Smith', givenName: 'Changed' }))],
      links: [link('e1', 'u1', 'ann@contoso.com')],
      teamViewer: [tv('u1', 'ann@contoso.com', { displayName: 'Ann Jones' })],
    });
    expect(result.actions).toEqual([
      expect.objectContaining({ kind: 'update', teamViewerId: 'u1', patch: { displayName: 'Ann Smith' }, changes: [{ attribute: 'displayName', old: 'Ann Jones', new: 'Ann Smith' }] }),
    ]);
  });

  it('When the UPN is renamed, then the linked user gets a userName PATCH (not a new user)', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'ann.smith@contoso.com', { displayName: 'Name e1' }))],
      links: [link('e1', 'u1', 'ann@contoso.com')],
      teamViewer: [tv('u1', 'ann@contoso.com', { displayName: 'Name e1' })],
    });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'update', patch: { userName: 'ann.smith@contoso.com' } })]);
  });

  it('When the only difference is letter case of the userName, then nothing is written (no verification mail)', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'Ann@Contoso.com', { displayName: 'Name e1' }))],
      links: [link('e1', 'u1', 'ann@contoso.com')],
      teamViewer: [tv('u1', 'ann@contoso.com', { displayName: 'Name e1' })],
    });
    expect(result.actions).toEqual([]);
  });

  it('When a linked user is unassigned, then it is disabled and kept', () => {
    const result = plan({ users: [], links: [link('e1', 'u1', 'ann@contoso.com')], teamViewer: [tv('u1', 'ann@contoso.com')] });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'disable', teamViewerId: 'u1', patch: { active: false } })]);
  });

  it('When a linked user is disabled in Entra, then it is disabled in TeamViewer', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'ann@contoso.com', { accountEnabled: false }))],
      links: [link('e1', 'u1', 'ann@contoso.com')],
      teamViewer: [tv('u1', 'ann@contoso.com')],
    });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'disable', reason: expect.stringMatching(/disabled in Entra/) })]);
  });

  it('When a disabled Entra user has no TeamViewer account, then it is never created', () => {
    const result = plan({ users: [mapUser(entra('e1', 'ann@contoso.com', { accountEnabled: false }))], links: [], teamViewer: [] });
    expect(kinds(result.actions)).toEqual(['skip:e1']);
  });

  it('When a disabled user comes back enabled, then it is re-enabled', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'ann@contoso.com', { displayName: 'Name e1' }))],
      links: [link('e1', 'u1', 'ann@contoso.com', { active: false })],
      teamViewer: [tv('u1', 'ann@contoso.com', { displayName: 'Name e1', active: false })],
    });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'enable', patch: { active: true } })]);
  });

  it('When a TeamViewer user is neither linked nor matched, then it is never touched', () => {
    const result = plan({ users: [mapUser(entra('e1', 'ann@contoso.com'))], links: [], teamViewer: [tv('u5', 'someone.else@contoso.com')] });
    expect(result.actions.every((a) => !('teamViewerId' in a) || a.teamViewerId !== 'u5')).toBe(true);
  });

  it('When an unassigned user owns the API token, then it is not disabled and a warning says why', () => {
    const result = plan({
      users: [],
      links: [link('e1', 'u1', 'admin@contoso.com')],
      teamViewer: [tv('u1', 'admin@contoso.com')],
      protectedTeamViewerIds: new Set(['u1']),
    });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'skip', warning: true, reason: expect.stringMatching(/owns the TeamViewer API token/) })]);
  });

  it('When a create was interrupted after TeamViewer made the user, then the next plan links it', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'ann@contoso.com', { displayName: 'Name e1' }))],
      links: [link('e1', null, 'ann@contoso.com', { pending: 'create' })],
      teamViewer: [tv('u7', 'ann@contoso.com', { displayName: 'Name e1' })],
    });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'link', teamViewerId: 'u7' })]);
  });

  it('When the linked TeamViewer user was deleted in TeamViewer, then it is created again', () => {
    const result = plan({ users: [mapUser(entra('e1', 'ann@contoso.com'))], links: [link('e1', 'u1', 'ann@contoso.com')], teamViewer: [] });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'create', replacesTeamViewerId: 'u1' })]);
  });

  it('When the matching TeamViewer user is already linked to another Entra user, then it is not taken over', () => {
    const result = plan({
      users: [mapUser(entra('e2', 'ann@contoso.com'))],
      links: [link('e1', 'u1', 'ann@contoso.com')],
      teamViewer: [tv('u1', 'ann@contoso.com')],
    });
    expect(result.actions).toEqual(
      expect.arrayContaining([expect.objectContaining({ entraId: 'e2', kind: 'fail', code: 'USERNAME_CONFLICT', reason: expect.stringMatching(/already linked/) })]),
    );
    expect(result.actions.some((a) => a.entraId === 'e2' && a.kind === 'create')).toBe(false);
  });

  it('When the display name is null in Entra, then displayName is never sent', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'ann@contoso.com', { displayName: null, givenName: null, surname: null, mail: null }))],
      links: [],
      teamViewer: [],
    });
    const create = result.actions[0] as Extract<Action, { kind: 'create' }>;
    expect(create.draft).toEqual({ userName: 'ann@contoso.com', active: true });
  });

  it('When SKIP_OUT_OF_SCOPE_DELETIONS is on, then unassigned users stay active but deleted ones are still disabled', () => {
    const links = [link('e1', 'u1', 'a@contoso.com'), link('e2', 'u2', 'b@contoso.com')];
    const teamViewer = [tv('u1', 'a@contoso.com'), tv('u2', 'b@contoso.com')];
    const result = plan({ users: [], links, teamViewer, skipOutOfScopeDeletions: true, goneReasons: new Map([['e2', 'soft-deleted in Entra ID']]) });
    expect(result.actions).toEqual([
      expect.objectContaining({ entraId: 'e1', kind: 'skip', reason: expect.stringMatching(/SKIP_OUT_OF_SCOPE_DELETIONS/) }),
      expect.objectContaining({ entraId: 'e2', kind: 'disable', reason: 'soft-deleted in Entra ID' }),
    ]);
  });

  it('When a user is filtered out of scope, then a matching unmanaged TeamViewer user is never touched or listed', () => {
    const outOfScope = { ...mapUser(entra('e1', 'ann@contoso.com')), entitled: false, notEntitled: { kind: 'out-of-scope' as const, reason: 'filtered' } };
    const result = plan({ users: [outOfScope], links: [], teamViewer: [tv('u9', 'ann@contoso.com')] });
    expect(result.actions).toEqual([]);
    expect(result.outOfScope).toBe(1);
  });

  it('When a mapping failed for a user, then that user fails and the others go on', () => {
    const broken = { ...mapUser(entra('e1', 'ann@contoso.com')), entitled: false, error: { code: 'EXPRESSION_RUNTIME', message: 'two roles' } };
    const result = plan({ users: [broken, mapUser(entra('e2', 'bob@contoso.com'))], links: [], teamViewer: [] });
    expect(kinds(result.actions)).toEqual(['create:e2', 'fail:e1']);
  });

  it('When two Entra users map to the same login, then neither is linked or created (one TeamViewer user, one owner)', () => {
    const a = mapUser(entra('e1', 'john@contoso.com'));
    const b = { ...mapUser(entra('e2', 'adm-john@contoso.com')), attributes: { ...mapUser(entra('e2', 'adm-john@contoso.com')).attributes, userName: { value: 'JOHN@contoso.com', applyOn: 'always' as const } } };
    for (const teamViewer of [[], [tv('u1', 'john@contoso.com')]]) {
      const result = plan({ users: [a, b], links: [], teamViewer });
      expect(kinds(result.actions)).toEqual(['fail:e1', 'fail:e2']);
      expect(result.actions.every((x) => x.kind === 'fail' && x.code === 'USERNAME_CLAIMED_TWICE')).toBe(true);
    }
  });

  it('When a create was interrupted and the user was then unassigned, then the user it made is found and disabled', () => {
    const result = plan({ users: [], links: [link('e1', null, 'a@contoso.com', { pending: 'create' })], teamViewer: [tv('u7', 'a@contoso.com')] });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'link', teamViewerId: 'u7', patch: { active: false } })]);
  });

  it('When a create was interrupted and the user was then disabled, then the user it made is found and disabled', () => {
    const result = plan({ users: [mapUser(entra('e1', 'a@contoso.com', { accountEnabled: false }))], links: [link('e1', null, 'a@contoso.com', { pending: 'create' })], teamViewer: [tv('u7', 'a@contoso.com')] });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'link', teamViewerId: 'u7', patch: { active: false } })]);
  });

  it('When a create was interrupted and the UPN then renamed, then the user it made is linked and renamed, not duplicated', () => {
    const result = plan({
      users: [mapUser(entra('e1', 'new@contoso.com', { displayName: 'Name e1' }))],
      links: [link('e1', null, 'old@contoso.com', { pending: 'create' })],
      teamViewer: [tv('u7', 'old@contoso.com', { displayName: 'Name e1' })],
    });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'link', teamViewerId: 'u7', patch: { userName: 'new@contoso.com' } })]);
  });

  it('When the active mapping gives False for the token owner, then the owner is not deactivated', () => {
    const owner = { ...mapUser(entra('e1', 'admin@contoso.com', { displayName: 'Name e1' })) };
    owner.attributes = { ...owner.attributes, active: { value: false, applyOn: 'always' } };
    const result = plan({ users: [owner], links: [link('e1', 'u1', 'admin@contoso.com')], teamViewer: [tv('u1', 'admin@contoso.com', { displayName: 'Name e1' })], protectedTeamViewerIds: new Set(['u1']) });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'skip', warning: true })]);
  });

  it('When the active mapping gives False for an ordinary user, then it is a disable (counted as one)', () => {
    const user = mapUser(entra('e1', 'a@contoso.com', { displayName: 'Name e1' }));
    user.attributes = { ...user.attributes, active: { value: false, applyOn: 'always' } };
    const result = plan({ users: [user], links: [link('e1', 'u1', 'a@contoso.com')], teamViewer: [tv('u1', 'a@contoso.com', { displayName: 'Name e1' })] });
    expect(result.actions).toEqual([expect.objectContaining({ kind: 'disable', patch: { active: false } })]);
  });

  it('When a disabled user\'s mapping failed, then no TeamViewer user is matched by its UPN', () => {
    const broken = { ...mapUser(entra('e1', 'bob@contoso.com', { accountEnabled: false })), error: { code: 'MAPPING_EMPTY_USERNAME', message: 'no mail' } };
    const result = plan({ users: [broken], links: [], teamViewer: [tv('u3', 'bob@contoso.com')] });
    expect(result.actions).toEqual([]);
  });
});
