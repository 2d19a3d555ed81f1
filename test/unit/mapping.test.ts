import { describe, expect, it } from 'vitest';
import {
  attributesNeeded,
  configHash,
  DEFAULT_SYNC_CONFIG,
  diff,
  draftFor,
  mapUser,
  MappingConfigError,
  parseMappings,
  type SyncConfig,
} from '../../shared/sync/mapping';
import type { AssignedUser, TeamViewerUser } from '../../shared/domain/model';
import { parseScopingFilters } from '../../shared/sync/scoping';

const user = (extra: Partial<AssignedUser> = {}): AssignedUser => ({
  id: 'e1',
  userPrincipalName: 'ann@contoso.com',
  displayName: 'Ann Smith',
  givenName: 'Ann',
  surname: 'Smith',
  mail: 'ann@contoso.com',
  accountEnabled: true,
  direct: true,
  viaGroups: [],
  appRoleIds: [],
  ...extra,
});

const tv = (extra: Partial<TeamViewerUser> = {}): TeamViewerUser => ({
  id: 'u1', userName: 'ann@contoso.com', displayName: 'Ann Smith', givenName: 'Ann', familyName: 'Smith', email: 'ann@contoso.com', active: true, ...extra,
});

const withMappings = (json: unknown): SyncConfig => ({ ...DEFAULT_SYNC_CONFIG, mappings: parseMappings(json) });

describe('attribute mappings', () => {
  it.each([
    ['not JSON', '[{', /not valid JSON/],
    ['empty list', '[]', /non-empty JSON array/],
    ['unknown target', [{ target: 'phone', source: 'mobilePhone' }, { target: 'userName', source: 'userPrincipalName' }], /target "phone" is not one of/],
    ['two kinds', [{ target: 'userName', source: 'userPrincipalName', constant: 'x' }], /exactly one of/],
    ['unknown source', [{ target: 'userName', source: 'upn2' }], /source "upn2" is not an Entra user attribute/],
    ['bad expression', [{ target: 'userName', expression: 'Join(",", [givenName]' }], /position/],
    ['unknown function', [{ target: 'userName', expression: 'Frobnicate([mail])' }], /Frobnicate/],
    ['userName missing', [{ target: 'displayName', source: 'displayName' }], /userName must be mapped/],
    ['mapped twice', [{ target: 'userName', source: 'mail' }, { target: 'userName', source: 'userPrincipalName' }], /mapped twice/],
    ['create-only forced always', [{ target: 'userName', source: 'mail' }, { target: 'preferredLanguage', constant: 'de', apply: 'always' }], /on create only/],
    ['unknown field', [{ target: 'userName', source: 'mail', when: 'always' }], /unknown field "when"/],
  ])('rejects %s with a message naming the mapping', (_label, json, message) => {
    expect(() => parseMappings(typeof json === 'string' ? json : JSON.stringify(json))).toThrow(MappingConfigError);
    expect(() => parseMappings(typeof json === 'string' ? json : JSON.stringify(json))).toThrow(message);
  });

  it.each(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf', 'Constructor '])(
    'rejects the target %j like any unknown target (no key of Object.prototype passes as one)',
    (target) => {
      // Raw JSON text, as the setting holds it: JSON.parse keeps "__proto__" as an own key.
      const json = `[{"target": ${JSON.stringify(target)}, "constant": "x"}, {"target": "userName", "source": "userPrincipalName"}]`;
      expect(() => parseMappings(json)).toThrow(`mapping 1: target ${JSON.stringify(target)} is not one of userName, displayName`);
    },
  );

  it.each(['__proto__', 'constructor', 'toString'])('rejects %j as a source, an expression attribute and a scoping attribute', (name) => {
    expect(() => parseMappings(`[{"target": "userName", "source": ${JSON.stringify(name)}}]`)).toThrow(`source ${JSON.stringify(name)} is not an Entra user attribute`);
    expect(() => parseMappings([{ target: 'userName', expression: `ToLower([${name}])` }])).toThrow(MappingConfigError);
    expect(() => parseScopingFilters(`[{"clauses": [{"attribute": ${JSON.stringify(name)}, "operator": "EQUALS", "value": "x"}]}]`)).toThrow(`unknown attribute ${name}`);
  });

  it('reports every bad mapping at once', () => {
    try {
      parseMappings([{ target: 'phone' }, { target: 'displayName', source: 'nope' }, { target: 'active', constant: 1 }]);
      expect.unreachable();
    } catch (err) {
      expect((err as MappingConfigError).problems.length).toBeGreaterThanOrEqual(4);
    }
  });

  it('adds the default active mapping when none is given', () => {
    const rules = parseMappings([{ target: 'userName', source: 'userPrincipalName' }]);
    expect(rules.map((r) => r.target)).toEqual(['userName', 'active']);
    expect(mapUser(user({ accountEnabled: false }), { ...DEFAULT_SYNC_CONFIG, mappings: rules }).attributes.active?.value).toBe(false);
  });

  it('applies constant, direct and expression mappings, and a default only on create', () => {
    const config = withMappings([
      { target: 'userName', expression: 'ToLower([userPrincipalName])' },
      { target: 'displayName', expression: 'Join(" ", [givenName], [surname])' },
      { target: 'name.givenName', source: 'givenName', apply: 'create', default: 'Unknown' },
      { target: 'preferredLanguage', constant: 'de' },
    ]);
    const desired = mapUser(user({ userPrincipalName: 'Ann@Contoso.com', givenName: null }), config);
    expect(draftFor(desired)).toEqual({ userName: 'ann@contoso.com', displayName: 'Smith', givenName: 'Unknown', preferredLanguage: 'de', active: true });
    // On update: the default is not sent, create-only targets are not compared.
    expect(diff(desired, tv({ displayName: 'Smith', givenName: 'Other' })).changes).toEqual([]);
  });

  it('never sends null: a null displayName is left out, not blanked', () => {
    const desired = mapUser(user({ displayName: null }));
    expect(diff(desired, tv({ displayName: 'Old' })).changes).toEqual([]);
    expect(draftFor(desired).displayName).toBeUndefined();
  });

  it('a runtime expression error fails that user only, with the reason', () => {
    const config = withMappings([{ target: 'userName', source: 'userPrincipalName' }, { target: 'displayName', expression: 'SingleAppRoleAssignment([appRoleAssignments])' }]);
    const ok = mapUser(user({ appRoleValues: ['User'] }), config);
    const bad = mapUser(user({ appRoleValues: ['User', 'Admin'] }), config);
    expect(ok.error).toBeUndefined();
    expect(ok.attributes.displayName?.value).toBe('User');
    expect(bad.error?.code).toBe('EXPRESSION_RUNTIME');
    expect(bad.entitled).toBe(false);
  });

  it('an expression that maps userName to nothing fails the user', () => {
    const config = withMappings([{ target: 'userName', source: 'mail' }]);
    expect(mapUser(user({ mail: null }), config).error?.code).toBe('MAPPING_EMPTY_USERNAME');
  });
});

describe('scope', () => {
  const filters = parseScopingFilters([{ name: 'Sales', clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }] }]);

  it.each([
    ['in scope by filter', { department: 'Sales' }, true, undefined],
    ['out of scope by filter', { department: 'Marketing' }, false, 'out-of-scope'],
    ['null value is false', {}, false, 'out-of-scope'],
  ])('%s', (_label, attributes, entitled, kind) => {
    const desired = mapUser(user({ attributes }), { ...DEFAULT_SYNC_CONFIG, filters });
    expect(desired.entitled).toBe(entitled);
    expect(desired.notEntitled?.kind).toBe(kind);
    if (kind) expect(desired.notEntitled?.reason).toMatch(/department/);
  });

  it('a disabled user in scope is "disabled", and active maps to false', () => {
    const desired = mapUser(user({ accountEnabled: false, attributes: { department: 'Sales' } }), { ...DEFAULT_SYNC_CONFIG, filters });
    expect(desired.notEntitled?.kind).toBe('disabled');
    expect(desired.attributes.active?.value).toBe(false);
  });

  it('with SYNC_SCOPE=all an unassigned user is in scope (then only scoping filters decide), as in Entra', () => {
    expect(mapUser(user({ direct: false, viaGroups: [], appRoleIds: [] })).entitled).toBe(true);
  });

  it('the $select list holds what filters and mappings read, without computed attributes', () => {
    const config = { ...withMappings([{ target: 'userName', source: 'userPrincipalName' }, { target: 'displayName', expression: 'Append([jobTitle], IIF([IsSoftDeleted], "", ""))' }]), filters };
    expect(attributesNeeded(config).sort()).toEqual(['department', 'jobTitle', 'userPrincipalName'].sort());
    const roles = withMappings([{ target: 'userName', source: 'userPrincipalName' }, { target: 'displayName', expression: 'SingleAppRoleAssignment([appRoleAssignments])' }]);
    expect(attributesNeeded(roles)).toContain('appRoleAssignments');
  });

  it('the configuration hash changes with scope, filters and mappings, not with filter names', () => {
    const base = configHash(DEFAULT_SYNC_CONFIG);
    expect(configHash({ ...DEFAULT_SYNC_CONFIG })).toBe(base);
    expect(configHash({ ...DEFAULT_SYNC_CONFIG, scope: 'all' })).not.toBe(base);
    expect(configHash({ ...DEFAULT_SYNC_CONFIG, expandNestedGroups: true })).not.toBe(base);
    expect(configHash({ ...DEFAULT_SYNC_CONFIG, filters })).not.toBe(base);
    const renamed = parseScopingFilters([{ name: 'Other name', clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }] }]);
    expect(configHash({ ...DEFAULT_SYNC_CONFIG, filters: renamed })).toBe(configHash({ ...DEFAULT_SYNC_CONFIG, filters }));
    expect(configHash(withMappings([{ target: 'userName', source: 'mail' }]))).not.toBe(base);
  });

  it('the configuration hash takes the group settings only when group provisioning is on: off hashes as before, and prefix or roles change it', () => {
    const base = configHash(DEFAULT_SYNC_CONFIG);
    const on = { provisioning: 'assigned' as const, prefix: '', roles: [] };
    expect(configHash(DEFAULT_SYNC_CONFIG, { provisioning: 'off', prefix: 'X', roles: [{ group: 'G', role: 'R' }] })).toBe(base);
    expect(configHash(DEFAULT_SYNC_CONFIG, on)).not.toBe(base);
    expect(configHash(DEFAULT_SYNC_CONFIG, { ...on, prefix: 'Entra - ' })).not.toBe(configHash(DEFAULT_SYNC_CONFIG, on));
    expect(configHash(DEFAULT_SYNC_CONFIG, { ...on, roles: [{ group: 'Helpdesk', role: 'Support agent' }] })).not.toBe(configHash(DEFAULT_SYNC_CONFIG, { ...on, roles: [{ group: 'Helpdesk', role: 'Administrator' }] }));
  });
});
