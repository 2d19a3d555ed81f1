import { describe, expect, it } from 'vitest';
import type { Link } from '../../shared/domain/model';
import type { AssignedGroup, GroupLink, TeamViewerGroup, TeamViewerRole } from '../../shared/domain/group-model';
import { groupNameFor, planGroups, removesGroup, type GroupAction, type GroupPlanInput } from '../../shared/sync/group-planner';

const G1 = 'aaaaaaaa-0000-4000-8000-000000000001';
const G2 = 'aaaaaaaa-0000-4000-8000-000000000002';
const G3 = 'aaaaaaaa-0000-4000-8000-000000000003';
const SUPPORT: TeamViewerRole = { id: 'bbbbbbbb-0000-4000-8000-000000000001', name: 'Support agent' };
const ADMIN: TeamViewerRole = { id: 'bbbbbbbb-0000-4000-8000-000000000002', name: 'Administrator' };

const helpdesk: AssignedGroup = { id: G1, displayName: 'Helpdesk' };
const field: AssignedGroup = { id: G2, displayName: 'Field engineers' };

/** e1–e3 active and linked; e4 linked but deactivated; e5 not provisioned yet. */
const userLinks: Array<Pick<Link, 'entraId' | 'teamViewerId' | 'active'>> = [
  { entraId: 'e1', teamViewerId: 'u1', active: true },
  { entraId: 'e2', teamViewerId: 'u2', active: true },
  { entraId: 'e3', teamViewerId: 'u3', active: true },
  { entraId: 'e4', teamViewerId: 'u4', active: false },
  { entraId: 'e5', teamViewerId: null, active: true },
];
/** Helpdesk: e1, e2, e4, e5; Field engineers: e2, e3. */
const users = [
  { id: 'e1', viaGroups: [G1] },
  { id: 'e2', viaGroups: [G1, G2] },
  { id: 'e3', viaGroups: [G2] },
  { id: 'e4', viaGroups: [G1] },
  { id: 'e5', viaGroups: [G1] },
];

const glink = (entraGroupId: string, teamViewerGroupId: string | null, name: string, extra: Partial<GroupLink> = {}): GroupLink => ({
  entraGroupId,
  teamViewerGroupId,
  name,
  origin: 'created',
  role: null,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  ...(teamViewerGroupId === null ? { pending: 'create' as const } : {}),
  ...extra,
});
const tvg = (id: string, name: string): TeamViewerGroup => ({ id, name });

/** Both groups linked, written and with nothing to do. */
function settled(extra: Partial<GroupPlanInput> = {}): GroupPlanInput {
  return {
    prefix: '',
    groups: [helpdesk, field],
    users,
    userLinks,
    groupLinks: [glink(G1, '101', 'Helpdesk'), glink(G2, '102', 'Field engineers')],
    written: new Map([[G1, ['u1', 'u2']], [G2, ['u2', 'u3']]]),
    ...extra,
  };
}

/** One line per action: kind, group, and what it carries. */
function lines(actions: GroupAction[]): string[] {
  const group = (id: string) => ({ [G1]: 'G1', [G2]: 'G2', [G3]: 'G3' })[id] ?? id;
  return actions.map((a) => {
    const head = `${a.kind} ${group(a.entraGroupId)}`;
    switch (a.kind) {
      case 'group-create': return `${head} "${a.name}"${a.replacesTeamViewerGroupId ? ` replacing ${a.replacesTeamViewerGroupId}` : ''}`;
      case 'group-link': return `${head} ${a.teamViewerGroupId} ${a.origin}`;
      case 'group-rename': return `${head} ${a.teamViewerGroupId} "${a.from}" → "${a.name}"`;
      case 'member-add':
      case 'member-remove': return `${head} ${a.teamViewerGroupId ?? 'new'} ${a.members.join(',')}`;
      case 'role-assign': return `${head} ${a.teamViewerGroupId ?? 'new'} ${a.role.name}${a.previous ? ` (was ${a.previous.name})` : ''}`;
      case 'group-record': return `${head} record ${a.record.join(',') || '-'} forget ${a.forget.join(',') || '-'}${a.role !== undefined ? ` role ${a.role?.name ?? 'none'}` : ''}`;
      case 'group-delete': return `${head} ${a.teamViewerGroupId}`;
      case 'group-unlink': return `${head} ${a.teamViewerGroupId ?? 'intent'}`;
      case 'group-fail': return `${head} ${a.code}`;
    }
  });
}

describe('group planner', () => {
  describe('first cycle: create or adopt, never twice', () => {
    it('When no TeamViewer group has the names, then both are created with their active, provisioned members and mapped role', () => {
      const plan = planGroups({
        ...settled({ groupLinks: [], written: new Map(), teamViewerGroups: [tvg('900', 'Unrelated')] }),
        roles: { byGroup: new Map([[G1, SUPPORT]]), unresolved: new Set() },
      });
      expect(lines(plan.actions)).toEqual([
        'group-create G1 "Helpdesk"', 'member-add G1 new u1,u2', 'role-assign G1 new Support agent',
        'group-create G2 "Field engineers"', 'member-add G2 new u2,u3',
      ]);
      expect(plan.deletions).toEqual([]);
    });

    it('When TeamViewer has a group of the wanted name in other letters, then it is adopted and renamed to Entra\'s spelling, never created again', () => {
      const plan = planGroups(settled({ groupLinks: [], written: new Map(), teamViewerGroups: [tvg('201', 'HELPDESK'), tvg('202', 'Field engineers')] }));
      expect(lines(plan.actions)).toEqual([
        'group-link G1 201 adopted', 'group-rename G1 201 "HELPDESK" → "Helpdesk"', 'member-add G1 201 u1,u2',
        'group-link G2 202 adopted', 'member-add G2 202 u2,u3',
      ]);
    });

    it.each([
      ['a prefix', 'Entra - ', 'Entra - Helpdesk'],
      ['a display name with spaces around it', '', 'Helpdesk'],
    ])('When the name is built with %s, then the group is created under that name', (_what, prefix, name) => {
      const plan = planGroups(settled({ prefix, groups: [{ id: G1, displayName: '  Helpdesk  ' }], groupLinks: [], written: new Map(), teamViewerGroups: [] }));
      expect(plan.actions[0]).toMatchObject({ kind: 'group-create', name });
    });

    it('When the TeamViewer group list was not read, then unlinked groups wait for it and linked ones are still planned', () => {
      const plan = planGroups(settled({ groupLinks: [glink(G2, '102', 'Field engineers')], written: new Map([[G2, ['u2']]]) }));
      expect(plan.needTeamViewerGroups).toEqual([G1]);
      expect(lines(plan.actions)).toEqual(['member-add G2 102 u3']);
    });
  });

  describe('an interrupted create', () => {
    const intent = glink(G1, null, 'Helpdesk');

    it.each([
      ['it made the group', [tvg('301', 'helpdesk')], ['group-link G1 301 adopted', 'group-rename G1 301 "helpdesk" → "Helpdesk"', 'member-add G1 301 u1,u2']],
      ['it made nothing', [], ['group-create G1 "Helpdesk"', 'member-add G1 new u1,u2']],
      ['two groups match the name it sent', [tvg('301', 'helpdesk'), tvg('302', 'HelpDesk')], ['group-fail G1 GROUP_AMBIGUOUS_MATCH']],
    ])('When %s, then it is resolved by the name it was sent with', (_what, groups, expected) => {
      const plan = planGroups(settled({ groups: [helpdesk], groupLinks: [intent], written: new Map(), teamViewerGroups: groups }));
      expect(lines(plan.actions)).toEqual(expected);
    });

    it('When the group list was not read, then the intent waits for it', () => {
      const plan = planGroups(settled({ groups: [helpdesk], groupLinks: [intent], written: new Map() }));
      expect(plan).toMatchObject({ actions: [], needTeamViewerGroups: [G1] });
    });

    it('When the group it may have made is linked to another Entra group, then it is not taken: this group fails with GROUP_NAME_TAKEN until the name is free', () => {
      const plan = planGroups(settled({ groups: [helpdesk, field], groupLinks: [intent, glink(G2, '301', 'Helpdesk')], written: new Map(), teamViewerGroups: [tvg('301', 'Helpdesk')] }));
      expect(lines(plan.actions).filter((l) => l.includes('G1'))).toEqual(['group-fail G1 GROUP_NAME_TAKEN']);
    });
  });

  describe('names', () => {
    it('When nothing changed, then there is no action and both groups count as unchanged', () => {
      const plan = planGroups(settled({ teamViewerGroups: [tvg('101', 'Helpdesk'), tvg('102', 'Field engineers')] }));
      expect(plan).toEqual({ actions: [], deletions: [], unchanged: 2, needTeamViewerGroups: [] });
    });

    it('When a group is renamed in Entra, then it is renamed in TeamViewer (PUT), from the name last written', () => {
      const plan = planGroups(settled({ groups: [{ id: G1, displayName: 'Service desk' }, field] }));
      expect(lines(plan.actions)).toEqual(['group-rename G1 101 "Helpdesk" → "Service desk"']);
    });

    it('When the prefix changes, then every linked group is renamed', () => {
      const plan = planGroups(settled({ prefix: 'TV: ' }));
      expect(lines(plan.actions)).toEqual(['group-rename G1 101 "Helpdesk" → "TV: Helpdesk"', 'group-rename G2 102 "Field engineers" → "TV: Field engineers"']);
    });

    it('When someone renamed the group in TeamViewer, then it is renamed back to the Entra name', () => {
      const plan = planGroups(settled({ teamViewerGroups: [tvg('101', 'Help'), tvg('102', 'Field engineers')] }));
      expect(lines(plan.actions)).toEqual(['group-rename G1 101 "Help" → "Helpdesk"']);
    });

    it.each([
      ['too long with the prefix', 'x'.repeat(90), 'GROUP_NAME_TOO_LONG'],
      ['empty', '   ', 'GROUP_NAME_EMPTY'],
      ['holding a line break', 'Help\ndesk', 'GROUP_NAME_INVALID'],
    ])('When the wanted name is %s, then that group fails and the other group is planned', (_what, displayName, code) => {
      const plan = planGroups(settled({ prefix: 'Entra group: ', groups: [{ id: G1, displayName }, field], groupLinks: [], written: new Map(), teamViewerGroups: [] }));
      expect(lines(plan.actions)).toEqual([`group-fail G1 ${code}`, 'group-create G2 "Entra group: Field engineers"', 'member-add G2 new u2,u3']);
    });

    it('When a linked group\'s new name is too long, then only the rename fails: its members are still kept right', () => {
      const plan = planGroups(settled({ groups: [{ id: G1, displayName: 'y'.repeat(101) }, field], written: new Map([[G1, ['u1']], [G2, ['u2', 'u3']]]) }));
      expect(lines(plan.actions)).toEqual(['group-fail G1 GROUP_NAME_TOO_LONG', 'member-add G1 101 u2']);
    });

    it('When two assigned groups want one name ignoring case and neither has it, then both fail and nothing is created', () => {
      const plan = planGroups(settled({ groups: [helpdesk, { id: G2, displayName: 'HELPDESK' }], groupLinks: [], written: new Map(), teamViewerGroups: [] }));
      expect(lines(plan.actions)).toEqual(['group-fail G1 GROUP_NAME_CLAIMED_TWICE', 'group-fail G2 GROUP_NAME_CLAIMED_TWICE']);
    });

    it('When two assigned groups want one name and one already holds it, then it keeps it and only the other fails', () => {
      const plan = planGroups(settled({ groups: [helpdesk, { id: G2, displayName: 'helpdesk' }], groupLinks: [glink(G1, '101', 'Helpdesk')], written: new Map([[G1, ['u1', 'u2']]]), teamViewerGroups: [tvg('101', 'Helpdesk')] }));
      expect(lines(plan.actions)).toEqual(['group-fail G2 GROUP_NAME_CLAIMED_TWICE']);
    });

    it('When the wanted name belongs to a TeamViewer group linked to another Entra group, then this group fails with GROUP_NAME_TAKEN', () => {
      const plan = planGroups(settled({ groups: [helpdesk, field], groupLinks: [glink(G2, '102', 'Helpdesk')], written: new Map(), teamViewerGroups: [tvg('102', 'Helpdesk')] }));
      expect(lines(plan.actions)).toContain('group-fail G1 GROUP_NAME_TAKEN');
      expect(lines(plan.actions).filter((l) => l.startsWith('group-create'))).toEqual([]);
    });

    it('When two TeamViewer groups have the wanted name apart from letter case, then the group fails rather than pick one', () => {
      const plan = planGroups(settled({ groups: [helpdesk], groupLinks: [], written: new Map(), teamViewerGroups: [tvg('1', 'helpdesk'), tvg('2', 'HELPDESK')] }));
      expect(lines(plan.actions)).toEqual(['group-fail G1 GROUP_AMBIGUOUS_MATCH']);
    });

    it('When a rename would take the name of a group tvsync does not manage, then the rename fails and members are still planned', () => {
      const plan = planGroups(settled({
        groups: [{ id: G1, displayName: 'Support' }, field],
        written: new Map([[G1, ['u1']], [G2, ['u2', 'u3']]]),
        teamViewerGroups: [tvg('101', 'Helpdesk'), tvg('102', 'Field engineers'), tvg('500', 'support')],
      }));
      expect(lines(plan.actions)).toEqual(['group-fail G1 GROUP_NAME_TAKEN', 'member-add G1 101 u2']);
    });

    it('When a linked TeamViewer group was deleted by hand, then it is created again and its old member rows are dropped with it', () => {
      const plan = planGroups(settled({ teamViewerGroups: [tvg('102', 'Field engineers')] }));
      expect(lines(plan.actions)).toEqual(['group-create G1 "Helpdesk" replacing 101', 'member-add G1 new u1,u2']);
    });
  });

  describe('members', () => {
    it.each<[string, Partial<GroupPlanInput>, string[]]>([
      ['a user joins the Entra group', { users: [...users, { id: 'e3', viaGroups: [G1, G2] }] }, ['member-add G1 101 u3']],
      ['a user leaves the Entra group', { users: users.map((u) => (u.id === 'e1' ? { ...u, viaGroups: [] } : u)) }, ['member-remove G1 101 u1']],
      ['a user is deactivated', { userLinks: userLinks.map((l) => (l.entraId === 'e2' ? { ...l, active: false } : l)) }, ['member-remove G1 101 u2', 'member-remove G2 102 u2']],
      ['a user tvsync no longer links was written once', { userLinks: userLinks.filter((l) => l.entraId !== 'e1') }, ['group-record G1 record - forget u1']],
      ['a new user was provisioned this cycle', { userLinks: userLinks.map((l) => (l.entraId === 'e5' ? { ...l, teamViewerId: 'u5' } : l)) }, ['member-add G1 101 u5']],
    ])('When %s, then the groups follow', (_what, change, expected) => {
      expect(lines(planGroups(settled(change)).actions)).toEqual(expected);
    });

    it('When TeamViewer\'s members were read, then hand-added accounts stay, managed strays go, and state catches up without calls', () => {
      // Helpdesk in TeamViewer: u1 (ours), u2 (desired, there, not recorded), u3 (linked, not in the
      // Entra group: added by hand), u77 (no tvsync user: stays). State says u1, u4 (gone by hand).
      const plan = planGroups(settled({
        written: new Map([[G1, ['u1', 'u4']], [G2, ['u2', 'u3']]]),
        teamViewerMembers: new Map([['101', ['u1', 'u2', 'u3', 'u77']], ['102', ['u2']]]),
      }));
      expect(lines(plan.actions)).toEqual([
        'member-remove G1 101 u3',
        'group-record G1 record u2 forget u4',
        'member-add G2 102 u3',
      ]);
    });

    describe('a user whose deactivation is held (staged, the token owner, failed)', () => {
      // e1 left the Entra group Helpdesk (and with it scope); its deactivation did not happen.
      const left = { users: users.map((u) => (u.id === 'e1' ? { ...u, viaGroups: [] } : u)), held: new Set(['u1']) };
      it.each<[string, Partial<GroupPlanInput>, string[]]>([
        ['its member row says it is in the group', left, []],
        ['TeamViewer (read) shows it there, unrecorded', { ...left, written: new Map([[G1, ['u2']], [G2, ['u2', 'u3']]]), teamViewerMembers: new Map([['101', ['u1', 'u2']]]) }, ['group-record G1 record u1 forget -']],
        ['TeamViewer (read) shows it gone by hand', { ...left, teamViewerMembers: new Map([['101', ['u2']]]) }, ['group-record G1 record - forget u1']],
        ['it is not in the group at all', { ...left, written: new Map([[G1, ['u2']], [G2, ['u2', 'u3']]]) }, []],
        ['it is still in the Entra group of a group just created', { held: new Set(['u1']), groupLinks: [glink(G2, '102', 'Field engineers')], teamViewerGroups: [tvg('102', 'Field engineers')] }, ['group-create G1 "Helpdesk"', 'member-add G1 new u1,u2']],
        ['another user leaves the Entra group meanwhile', { ...left, users: left.users.map((u) => (u.id === 'e2' ? { ...u, viaGroups: [G1] } : u)) }, ['member-remove G2 102 u2']],
      ])('When %s, then it stays where it is and is never added for it', (_what, change, expected) => {
        expect(lines(planGroups(settled(change)).actions)).toEqual(expected);
      });

      it('When the deactivation happened (no longer held, inactive), then it leaves', () => {
        const plan = planGroups(settled({ users: left.users, userLinks: userLinks.map((l) => (l.entraId === 'e1' ? { ...l, active: false } : l)) }));
        expect(lines(plan.actions)).toEqual(['member-remove G1 101 u1']);
      });

      it('When an adopted group it is in goes, then the group is emptied whole (the guard judged the group going)', () => {
        const plan = planGroups(settled({ ...left, groups: [field], groupLinks: [glink(G1, '101', 'Helpdesk', { origin: 'adopted' }), glink(G2, '102', 'Field engineers')] }));
        expect(lines(plan.deletions)).toEqual(['member-remove G1 101 u1,u2', 'group-unlink G1 101']);
      });
    });

    it('When a member tvsync wrote is gone from TeamViewer but still wanted, then it is added again', () => {
      const plan = planGroups(settled({ teamViewerMembers: new Map([['101', ['u2']]]) }));
      expect(lines(plan.actions)).toEqual(['member-add G1 101 u1']);
    });

    it('When an adopted group\'s members were read, then managed users that are not in the Entra group leave it, and others stay', () => {
      const plan = planGroups(settled({
        groups: [helpdesk], groupLinks: [], written: new Map([[G1, ['u9']]]),
        teamViewerGroups: [tvg('201', 'Helpdesk')],
        teamViewerMembers: new Map([['201', ['u1', 'u3', 'u55']]]),
      }));
      expect(lines(plan.actions)).toEqual(['group-link G1 201 adopted', 'member-remove G1 201 u3', 'member-add G1 201 u2', 'group-record G1 record u1 forget -']);
    });
  });

  describe('roles', () => {
    const roles = (byGroup: Array<[string, TeamViewerRole]>, unresolved: string[] = []) => ({ roles: { byGroup: new Map(byGroup), unresolved: new Set(unresolved) } });

    it.each<[string, Partial<GroupPlanInput>, string[]]>([
      ['a mapping is new', roles([[G1, SUPPORT]]), ['role-assign G1 101 Support agent']],
      ['the mapping changes', { ...roles([[G1, ADMIN]]), groupLinks: [glink(G1, '101', 'Helpdesk', { role: SUPPORT }), glink(G2, '102', 'Field engineers')] }, ['role-assign G1 101 Administrator (was Support agent)']],
      ['the role was written and is unchanged', { ...roles([[G1, SUPPORT]]), groupLinks: [glink(G1, '101', 'Helpdesk', { role: SUPPORT }), glink(G2, '102', 'Field engineers')] }, []],
      ['someone changed the role in TeamViewer (read)', { ...roles([[G1, SUPPORT]]), groupLinks: [glink(G1, '101', 'Helpdesk', { role: SUPPORT }), glink(G2, '102', 'Field engineers')], teamViewerRoles: new Map([['101', ADMIN.id]]) }, ['role-assign G1 101 Support agent (was Support agent)']],
      ['TeamViewer already holds the mapped role (read)', { ...roles([[G1, SUPPORT]]), teamViewerRoles: new Map([['101', SUPPORT.id.toUpperCase()]]) }, ['group-record G1 record - forget - role Support agent']],
      ['the role name is unknown (unresolved)', { ...roles([], [G1]), groupLinks: [glink(G1, '101', 'Helpdesk', { role: SUPPORT }), glink(G2, '102', 'Field engineers')] }, []],
      ['the mapping was removed', { ...roles([]), groupLinks: [glink(G1, '101', 'Helpdesk', { role: SUPPORT }), glink(G2, '102', 'Field engineers')] }, ['group-record G1 record - forget - role none']],
      ['the roles could not be read this cycle', { groupLinks: [glink(G1, '101', 'Helpdesk', { role: SUPPORT }), glink(G2, '102', 'Field engineers')] }, []],
    ])('When %s, then roles follow GROUP_ROLES and nothing else', (_what, change, expected) => {
      expect(lines(planGroups(settled(change)).actions)).toEqual(expected);
    });
  });

  describe('groups that go', () => {
    const gone = (groupLinks: GroupLink[], extra: Partial<GroupPlanInput> = {}) =>
      planGroups(settled({ groups: [], groupLinks, written: new Map([[G1, ['u1', 'u2', 'u8']], [G2, ['u2', 'u3']]]), ...extra }));

    it('When a group tvsync created is unassigned, then it is deleted — held apart in deletions for the guard', () => {
      const plan = gone([glink(G1, '101', 'Helpdesk')]);
      expect(plan.actions).toEqual([]);
      expect(lines(plan.deletions)).toEqual(['group-delete G1 101']);
      expect(plan.deletions.filter(removesGroup)).toHaveLength(1);
    });

    it('When an adopted group is unassigned, then only the members tvsync manages are removed and the group is unlinked, not deleted', () => {
      const plan = gone([glink(G2, '102', 'Field engineers', { origin: 'adopted' }), glink(G1, '101', 'Helpdesk', { origin: 'adopted' })], {
        teamViewerMembers: new Map([['102', ['u2', 'u3', 'u66']]]),
      });
      expect(lines(plan.deletions)).toEqual([
        'member-remove G1 101 u1,u2', 'group-unlink G1 101',
        'member-remove G2 102 u2,u3', 'group-unlink G2 102',
      ]);
      expect(plan.deletions.filter(removesGroup)).toHaveLength(2);
    });

    it('When the group is gone from TeamViewer already, or only an interrupted create is left, then the link is dropped outside the guard', () => {
      const plan = gone([glink(G1, '101', 'Helpdesk'), glink(G3, null, 'Finance')], { teamViewerGroups: [tvg('777', 'Finance')] });
      expect(lines(plan.actions)).toEqual(['group-unlink G1 101', 'group-unlink G3 intent']);
      expect(plan.deletions).toEqual([]);
      expect((plan.actions[1] as Extract<GroupAction, { kind: 'group-unlink' }>).reason).toContain('777');
    });

    it('When a group went with a reason from Entra, then the action says it', () => {
      const plan = gone([glink(G1, '101', 'Helpdesk')], { goneReasons: new Map([[G1, 'deleted in Entra ID']]) });
      expect(plan.deletions[0]).toMatchObject({ kind: 'group-delete', reason: 'deleted in Entra ID' });
    });
  });

  describe('names as given', () => {
    it('When an Entra name holds quotes, slashes and markup, then it becomes the TeamViewer name as it is (escaping is the output\'s job)', () => {
      expect(groupNameFor('', ' "Ops" / <b>R&D</b> \'x\' ')).toEqual({ name: '"Ops" / <b>R&D</b> \'x\'' });
    });

    it('When prefix and name make exactly 100 characters, then that is accepted; 101 is not', () => {
      expect(groupNameFor('p'.repeat(50), 'n'.repeat(50))).toEqual({ name: `${'p'.repeat(50)}${'n'.repeat(50)}` });
      expect(groupNameFor('p'.repeat(50), 'n'.repeat(51))).toMatchObject({ code: 'GROUP_NAME_TOO_LONG' });
    });
  });
});
