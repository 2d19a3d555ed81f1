import { describe, expect, it } from 'vitest';
import {
  canonicalScopingFilters, evaluateScope, hashScopingFilters, parseScopingFilters, ScopingFilterError,
  type ScopingFilter,
} from '../../shared/sync/scoping';

type Attrs = Record<string, unknown>;

function filtersOf(attribute: string, operator: string, value?: unknown): ScopingFilter[] {
  return parseScopingFilters([{ name: 'f', clauses: [value === undefined ? { attribute, operator } : { attribute, operator, value }] }]);
}

function invalid(input: unknown): ScopingFilterError {
  try {
    parseScopingFilters(input);
  } catch (error) {
    if (error instanceof ScopingFilterError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

const MISSING = Symbol('missing');

describe('each operator on one attribute', () => {
  it.each<[string, string, unknown, unknown, boolean]>([
    // attribute, operator, clause value, user value (MISSING = absent), in scope?
    ['department', 'EQUALS', 'Sales', 'Sales', true],
    ['department', 'EQUALS', 'Sales', 'sales', false],
    ['department', 'EQUALS', 'Sales', 'Sales ', false],
    ['department', 'EQUALS', 'Sales', null, false],
    ['department', 'EQUALS', 'Sales', '', false],
    ['department', 'EQUALS', 'Sales', MISSING, false],
    ['employeeId', 'EQUALS', '42', 42, true],
    ['accountEnabled', 'EQUALS', 'True', true, true],
    ['accountEnabled', 'EQUALS', 'true', true, true],
    ['accountEnabled', 'EQUALS', 'True', false, false],
    ['accountEnabled', 'EQUALS', 'True', 'true', true],
    ['accountEnabled', 'IS TRUE', undefined, 'TRUE', true],
    ['department', 'NOT EQUALS', 'Sales', 'Marketing', true],
    ['department', 'NOT EQUALS', 'Sales', 'Sales', false],
    ['department', 'NOT EQUALS', 'Sales', 'sales', true],
    ['department', 'NOT EQUALS', 'Sales', null, false],
    ['department', 'NOT EQUALS', 'Sales', '', false],
    ['department', 'NOT EQUALS', 'Sales', MISSING, false],
    ['accountEnabled', 'NOT EQUALS', 'false', true, true],
    ['accountEnabled', 'IS TRUE', undefined, true, true],
    ['accountEnabled', 'IS TRUE', undefined, false, false],
    ['accountEnabled', 'IS TRUE', undefined, null, false],
    ['extensionAttribute1', 'IS TRUE', undefined, 'True', true],
    ['extensionAttribute1', 'IS TRUE', undefined, 'true', true],
    ['extensionAttribute1', 'IS TRUE', undefined, 'yes', false],
    ['accountEnabled', 'IS FALSE', undefined, false, true],
    ['accountEnabled', 'IS FALSE', undefined, true, false],
    ['accountEnabled', 'IS FALSE', undefined, MISSING, false],
    ['extensionAttribute1', 'IS FALSE', undefined, 'FALSE', true],
    ['jobTitle', 'IS NULL', undefined, null, true],
    ['jobTitle', 'IS NULL', undefined, '', true],
    ['jobTitle', 'IS NULL', undefined, MISSING, true],
    ['jobTitle', 'IS NULL', undefined, 'Engineer', false],
    ['accountEnabled', 'IS NULL', undefined, false, false],
    ['jobTitle', 'IS NOT NULL', undefined, 'Engineer', true],
    ['jobTitle', 'IS NOT NULL', undefined, ' ', true],
    ['jobTitle', 'IS NOT NULL', undefined, null, false],
    ['jobTitle', 'IS NOT NULL', undefined, '', false],
    ['jobTitle', 'IS NOT NULL', undefined, MISSING, false],
    ['userPrincipalName', 'REGEX MATCH', '.*\\@contoso\\.com$', 'ann@contoso.com', true],
    ['userPrincipalName', 'REGEX MATCH', '.*\\@contoso\\.com$', 'ann@fabrikam.com', false],
    ['userPrincipalName', 'REGEX MATCH', '.*\\@contoso\\.com$', 'ann@Contoso.com', false],
    ['userPrincipalName', 'REGEX MATCH', '(?i).*\\@contoso\\.com$', 'ann@Contoso.com', true],
    ['userPrincipalName', 'REGEX MATCH', '.*\\@contoso\\.com$', null, false],
    ['employeeId', 'REGEX MATCH', '([1-9][0-9])', '42', true],
    ['employeeId', 'REGEX MATCH', '([1-9][0-9])', '5', false],
    ['userPrincipalName', 'NOT REGEX MATCH', '.*\\@contoso\\.com$', 'ann@fabrikam.com', true],
    ['userPrincipalName', 'NOT REGEX MATCH', '.*\\@contoso\\.com$', 'ann@contoso.com', false],
    ['userPrincipalName', 'NOT REGEX MATCH', '.*\\@contoso\\.com$', null, false],
    ['userPrincipalName', 'NOT REGEX MATCH', '.*\\@contoso\\.com$', '', false],
    ['department', 'Includes', 'ale', 'Sales', true],
    ['department', 'Includes', 'ale', 'SALES', false],
    ['department', 'Includes', 'ale', null, false],
    ['mail', 'ENDS_WITH', '@contoso.com', 'ann@contoso.com', true],
    ['mail', 'ENDS_WITH', '@contoso.com', 'ann@Contoso.com', false],
    ['mail', 'ENDS_WITH', '@contoso.com', MISSING, false],
    ['employeeId', 'Greater_Than', '1000000', '1000001', true],
    ['employeeId', 'Greater_Than', '1000000', '1000000', false],
    ['employeeId', 'Greater_Than', '1000000', '999', false],
    ['employeeId', 'Greater_Than', '1000000', 2000000, true],
    ['employeeId', 'Greater_Than', '1000000', ' 1000001 ', true],
    ['employeeId', 'Greater_Than', '1000000', '100000000000000000000000000', true],
    ['employeeId', 'Greater_Than', '1000000', 'E1000001', false],
    ['employeeId', 'Greater_Than', '1000000', '1.5e7', false],
    ['employeeId', 'Greater_Than', '1000000', null, false],
    ['employeeId', 'Greater_Than', '-5', '-4', true],
    ['employeeId', 'Greater_Than_OR_EQUALS', '1000000', '1000000', true],
    ['employeeId', 'Greater_Than_OR_EQUALS', '1000000', '999999', false],
    ['employeeId', 'Greater_Than_OR_EQUALS', '1000000', '', false],
    ['extensionAttribute2', '&', '2', '514', true],
    ['extensionAttribute2', '&', '2', '512', false],
    ['extensionAttribute2', '&', '2', 2, true],
    ['extensionAttribute2', '&', '6', '2', false],
    ['extensionAttribute2', '&', '6', '7', true],
    ['extensionAttribute2', '&', '2', 'abc', false],
    ['extensionAttribute2', '&', '2', null, false],
    ['extensionAttribute2', '!&', '2', '512', true],
    ['extensionAttribute2', '!&', '2', '514', false],
    ['extensionAttribute2', '!&', '6', '2', true],
    ['extensionAttribute2', '!&', '2', null, false],
    ['extensionAttribute2', '!&', '2', 'abc', false],
  ])('%s %s %j on %j → %s', (attribute, operator, value, userValue, expected) => {
    const attributes: Attrs = userValue === MISSING ? {} : { [attribute]: userValue };
    expect(evaluateScope(filtersOf(attribute, operator, value), attributes).inScope).toBe(expected);
  });

  it('reads nested extension attributes and any key casing', () => {
    const filters = filtersOf('extensionAttribute3', 'EQUALS', 'TV');
    expect(evaluateScope(filters, { onPremisesExtensionAttributes: { extensionAttribute3: 'TV' } }).inScope).toBe(true);
    expect(evaluateScope(filters, { EXTENSIONATTRIBUTE3: 'TV' }).inScope).toBe(true);
    expect(evaluateScope(filtersOf('objectId', 'EQUALS', 'abc'), { id: 'abc' }).inScope).toBe(true);
  });

  it('treats a list value on the user as not matching (Entra does not filter multi-valued attributes)', () => {
    const decision = evaluateScope(filtersOf('department', 'EQUALS', 'Sales'), { department: ['Sales'] });
    expect(decision).toEqual({ inScope: false, reason: 'out of scope: clause department EQUALS "Sales" was false (department holds a list of values)' });
  });
});

describe('operator spellings', () => {
  it.each([
    ['EQUALS', 'EQUALS'], ['equals', 'EQUALS'], [' Equals ', 'EQUALS'],
    ['NOT EQUALS', 'NOT_EQUALS'], ['not_equals', 'NOT_EQUALS'], ['NotEquals', 'NOT_EQUALS'], ['NOT-EQUALS', 'NOT_EQUALS'],
    ['IS TRUE', 'IS_TRUE'], ['IsTrue', 'IS_TRUE'], ['is_false', 'IS_FALSE'],
    ['IS NULL', 'IS_NULL'], ['IsNull', 'IS_NULL'], ['IS NOT NULL', 'IS_NOT_NULL'], ['IsNotNull', 'IS_NOT_NULL'],
    ['REGEX MATCH', 'REGEX_MATCH'], ['regex_match', 'REGEX_MATCH'], ['NOT REGEX MATCH', 'NOT_REGEX_MATCH'],
    ['Includes', 'INCLUDES'], ['INCLUDES', 'INCLUDES'], ['ENDS_WITH', 'ENDS_WITH'], ['ends with', 'ENDS_WITH'],
    ['Greater_Than', 'GREATER_THAN'], ['GREATER THAN', 'GREATER_THAN'],
    ['Greater_Than_OR_EQUALS', 'GREATER_THAN_OR_EQUALS'], ['greater than or equals', 'GREATER_THAN_OR_EQUALS'],
    ['&', 'BIT_AND'], ['!&', 'NOT_BIT_AND'],
  ])('%j is %s', (spelling, operator) => {
    const needsValue = !operator.startsWith('IS_');
    const value = needsValue ? (operator.includes('THAN') || operator.includes('BIT') ? '1' : 'x') : undefined;
    expect(filtersOf('department', spelling, value)[0]!.clauses[0]!.operator).toBe(operator);
  });
});

describe('combining clauses and filters', () => {
  const filters = parseScopingFilters(JSON.stringify([
    { name: 'Sales only', clauses: [
      { attribute: 'department', operator: 'EQUALS', value: 'Sales' },
      { attribute: 'accountEnabled', operator: 'IS TRUE' },
    ] },
    { name: 'Contoso staff', clauses: [{ attribute: 'userPrincipalName', operator: 'ENDS_WITH', value: '@contoso.com' }] },
  ]));

  it.each<[string, Attrs, boolean, string]>([
    ['matches the first filter', { department: 'Sales', accountEnabled: true, userPrincipalName: 'a@fabrikam.com' }, true,
      'in scope: filter "Sales only" matched'],
    ['matches the second filter only', { department: 'IT', userPrincipalName: 'a@contoso.com' }, true,
      'in scope: filter "Contoso staff" matched'],
    ['fails the second clause of the first filter and the second filter', { department: 'Sales', accountEnabled: false, userPrincipalName: 'a@fabrikam.com' }, false,
      'out of scope: no filter matched; filter "Sales only": clause accountEnabled IS TRUE was false (accountEnabled is False); filter "Contoso staff": clause userPrincipalName ENDS_WITH "@contoso.com" was false (userPrincipalName is "a@fabrikam.com")'],
    ['has no attributes at all', {}, false,
      'out of scope: no filter matched; filter "Sales only": clause department EQUALS "Sales" was false (department is empty); filter "Contoso staff": clause userPrincipalName ENDS_WITH "@contoso.com" was false (userPrincipalName is empty)'],
  ])('a user who %s', (_title, attributes, inScope, reason) => {
    expect(evaluateScope(filters, attributes)).toEqual({ inScope, reason });
  });

  it('puts everyone in scope when there are no filters', () => {
    expect(evaluateScope([], {})).toEqual({ inScope: true, reason: 'in scope: no scoping filters are set' });
    expect(evaluateScope(parseScopingFilters(''), { department: 'x' }).inScope).toBe(true);
  });

  it('explains a single failing filter without listing filters', () => {
    const one = parseScopingFilters([{ name: 'Sales only', clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }] }]);
    expect(evaluateScope(one, { department: 'Marketing' }))
      .toEqual({ inScope: false, reason: 'out of scope: clause department EQUALS "Sales" was false (department is "Marketing")' });
    const numeric = parseScopingFilters([{ clauses: [{ attribute: 'employeeId', operator: 'Greater_Than', value: 1000 }] }]);
    expect(evaluateScope(numeric, { employeeId: 'abc' }).reason)
      .toBe('out of scope: clause employeeId Greater_Than "1000" was false (employeeId is "abc", not a whole number)');
  });
});

describe("Microsoft's documented examples", () => {
  // New York, Engineering, employee ID between 1,000,000 and 2,000,000, job title not null or empty.
  const example = parseScopingFilters([{ name: 'NY engineers', clauses: [
    { attribute: 'state', operator: 'EQUALS', value: 'New York' },
    { attribute: 'department', operator: 'EQUALS', value: 'Engineering' },
    { attribute: 'employeeId', operator: 'Greater_Than_OR_EQUALS', value: '1000000' },
    { attribute: 'employeeId', operator: 'REGEX MATCH', value: '^(1[0-9]{6}|2000000)$' },
    { attribute: 'jobTitle', operator: 'IS NOT NULL' },
  ] }]);
  const engineer = { state: 'New York', department: 'Engineering', employeeId: '1500000', jobTitle: 'Engineer' };

  it.each<[string, Attrs, boolean]>([
    ['a New York engineer with a title', engineer, true],
    ['the upper bound', { ...engineer, employeeId: '2000000' }, true],
    ['an ID above the range', { ...engineer, employeeId: '2000001' }, false],
    ['an ID below the range', { ...engineer, employeeId: '999999' }, false],
    ['no job title', { ...engineer, jobTitle: '' }, false],
    ['another state', { ...engineer, state: 'New Jersey' }, false],
  ])('the four-criteria filter and %s', (_title, attributes, inScope) => {
    expect(evaluateScope(example, attributes).inScope).toBe(inScope);
  });

  it.each<[string, string, string, Attrs, boolean]>([
    ['userPrincipalName', 'REGEX MATCH', '.*\\@domain.com', { userPrincipalName: 'ann@domain.com' }, true],
    ['userPrincipalName', 'REGEX MATCH', '.*\\@domain.com', { userPrincipalName: 'ann@other.com' }, false],
    ['userPrincipalName', 'NOT REGEX MATCH', '.*\\@domain.com', { userPrincipalName: 'ann@domain.com' }, false],
    ['userPrincipalName', 'NOT REGEX MATCH', '.*\\@domain.com', { userPrincipalName: 'ann@other.com' }, true],
    ['department', 'EQUALS', 'sales', { department: 'sales' }, true],
    ['department', 'EQUALS', 'sales', { department: 'Sales' }, false],
    ['employeeId', 'REGEX MATCH', '(1[0-9][0-9][0-9][0-9][0-9][0-9])', { employeeId: '1234567' }, true],
    ['employeeId', 'REGEX MATCH', '(1[0-9][0-9][0-9][0-9][0-9][0-9])', { employeeId: '234567' }, false],
  ])('common filter %s %s %j on %j → %s', (attribute, operator, value, attributes, inScope) => {
    expect(evaluateScope(filtersOf(attribute, operator, value), attributes).inScope).toBe(inScope);
  });
});

describe('parsing the SCOPING_FILTERS setting', () => {
  it('canonicalises attributes and operators, names unnamed filters, accepts numbers as values', () => {
    expect(parseScopingFilters('[{"clauses":[{"attribute":"Department","operator":"not equals","value":"Sales"}]},' +
      '{"name":" Big IDs ","clauses":[{"attribute":"objectId","operator":"IsNotNull"},{"attribute":"employeeId","operator":"greater_than","value":1000}]}]'))
      .toEqual([
        { name: 'filter 1', clauses: [{ attribute: 'department', operator: 'NOT_EQUALS', value: 'Sales' }] },
        { name: 'Big IDs', clauses: [
          { attribute: 'id', operator: 'IS_NOT_NULL', value: null },
          { attribute: 'employeeId', operator: 'GREATER_THAN', value: '1000' },
        ] },
      ]);
  });

  it('ignores a value given to an operator that takes none', () => {
    const [filter] = parseScopingFilters([{ clauses: [{ attribute: 'jobTitle', operator: 'IS NULL', value: 'ignored' }] }]);
    expect(filter!.clauses[0]).toEqual({ attribute: 'jobTitle', operator: 'IS_NULL', value: null });
    expect(evaluateScope([filter!], {}).inScope).toBe(true);
  });

  it.each([['', []], ['  ', []], ['[]', []], [null, []], [undefined, []]])('treats %j as no filters', (input, expected) => {
    expect(parseScopingFilters(input)).toEqual(expected);
  });

  it.each<[string, unknown, string]>([
    ['an unknown operator', [{ name: 'Sales only', clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }, { attribute: 'department', operator: 'REGEXX', value: 'x' }] }],
      'filter 1 "Sales only", clause 2 (department REGEXX "x"): unknown operator REGEXX'],
    ['a bad regex', [{ clauses: [{ attribute: 'mail', operator: 'REGEX MATCH', value: '([a-z' }] }],
      'filter 1, clause 1 (mail REGEX MATCH "([a-z"): invalid regular expression "([a-z": missing closing ]: `[a-z`'],
    ['an unknown attribute', [{ clauses: [{ attribute: 'manager', operator: 'IS NULL' }] }],
      'filter 1, clause 1 (manager IS NULL): unknown attribute manager'],
    ['a missing value', [{ clauses: [{ attribute: 'department', operator: 'EQUALS' }] }],
      'filter 1, clause 1 (department EQUALS): EQUALS needs a "value"'],
    ['an empty value', [{ clauses: [{ attribute: 'department', operator: 'Includes', value: '' }] }],
      'filter 1, clause 1 (department Includes ""): Includes needs a "value"'],
    ['an object value', [{ clauses: [{ attribute: 'department', operator: 'EQUALS', value: { a: 1 } }] }],
      'filter 1, clause 1 (department EQUALS {"a":1}): "value" must be text or a number'],
    ['a non-integer for Greater_Than', [{ clauses: [{ attribute: 'employeeId', operator: 'Greater_Than', value: '1.5' }] }],
      'filter 1, clause 1 (employeeId Greater_Than "1.5"): Greater_Than needs a whole number, got "1.5"'],
    ['a non-integer for &', [{ clauses: [{ attribute: 'employeeId', operator: '&', value: 'two' }] }],
      'filter 1, clause 1 (employeeId & "two"): & needs a whole number, got "two"'],
    ['a multi-valued attribute', [{ clauses: [{ attribute: 'appRoleAssignments', operator: 'EQUALS', value: 'Admin' }] }],
      'filter 1, clause 1 (appRoleAssignments EQUALS "Admin"): appRoleAssignments is multi-valued, and Entra does not filter on multi-valued attributes'],
    ['IsSoftDeleted', [{ clauses: [{ attribute: 'IsSoftDeleted', operator: 'IS FALSE' }] }],
      'filter 1, clause 1 (IsSoftDeleted IS FALSE): IsSoftDeleted is computed from scope, so it cannot decide scope'],
    ['a missing attribute', [{ clauses: [{ operator: 'IS NULL' }] }],
      'filter 1, clause 1 (? IS NULL): "attribute" is missing'],
    ['a missing operator', [{ clauses: [{ attribute: 'mail' }] }],
      'filter 1, clause 1 (mail ?): "operator" is missing'],
    ['a misspelt key', [{ clauses: [{ attribute: 'mail', operater: 'IS NULL' }] }],
      'filter 1, clause 1 (mail ?): unknown key "operater" (a clause has "attribute", "operator" and "value")'],
    ['a clause that is not an object', [{ clauses: ['department EQUALS Sales'] }],
      'filter 1, clause 1 ("department EQUALS Sales"): expected an object with "attribute", "operator" and "value"'],
    ['a filter without clauses', [{ name: 'Empty' }],
      'filter 1 "Empty": needs at least one clause in "clauses"'],
    ['a filter with an empty clause list', [{ clauses: [] }],
      'filter 1: needs at least one clause in "clauses"'],
    ['a filter with an unknown key', [{ name: 'X', clause: [] }],
      'filter 1 "X": unknown key "clause" (a filter has "name" and "clauses")'],
    ['a filter that is not an object', ['Sales only'],
      'filter 1: expected an object with "name" and "clauses"'],
    ['a non-text name', [{ name: 7, clauses: [{ attribute: 'mail', operator: 'IS NULL' }] }],
      'filter 1: "name" must be text'],
    ['an object instead of a list', { name: 'x', clauses: [] },
      'expected a JSON array of filters: [{ "name": "…", "clauses": [{ "attribute": "…", "operator": "…", "value": "…" }] }]'],
  ])('rejects %s', (_title, input, message) => {
    const error = invalid(input);
    expect(error.code).toBe('SCOPING_FILTER_INVALID');
    expect(error.problems.map((p) => p.message)).toContain(message);
    expect(error.message).toContain(message);
  });

  it('rejects text that is not JSON', () => {
    const error = invalid('[{"clauses": [}]');
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatchObject({ filterIndex: null, clauseIndex: null });
    expect(error.message).toMatch(/^SCOPING_FILTERS is invalid: not valid JSON \(/);
  });

  it('lists every bad clause in one error, with 0-based indexes', () => {
    const error = invalid(JSON.stringify([
      { name: 'Sales only', clauses: [
        { attribute: 'department', operator: 'EQUALS', value: 'Sales' },
        { attribute: 'department', operator: 'REGEXX', value: 'x' },
      ] },
      { name: 'US', clauses: [
        { attribute: 'countryy', operator: 'EQUALS', value: 'US' },
        { attribute: 'mail', operator: 'REGEX MATCH', value: '(' },
        { attribute: 'jobTitle', operator: 'IS NOT NULL' },
      ] },
      { clauses: [] },
    ]));
    expect(error.problems).toEqual([
      { filterIndex: 0, clauseIndex: 1, message: 'filter 1 "Sales only", clause 2 (department REGEXX "x"): unknown operator REGEXX' },
      { filterIndex: 1, clauseIndex: 0, message: 'filter 2 "US", clause 1 (countryy EQUALS "US"): unknown attribute countryy' },
      { filterIndex: 1, clauseIndex: 1, message: 'filter 2 "US", clause 2 (mail REGEX MATCH "("): invalid regular expression "(": missing closing ): `(`' },
      { filterIndex: 2, clauseIndex: null, message: 'filter 3: needs at least one clause in "clauses"' },
    ]);
    expect(error.filterIndex).toBe(0);
    expect(error.clauseIndex).toBe(1);
    expect(error.message.split('\n')).toEqual([
      'SCOPING_FILTERS is invalid (4 problems):',
      '- filter 1 "Sales only", clause 2 (department REGEXX "x"): unknown operator REGEXX',
      '- filter 2 "US", clause 1 (countryy EQUALS "US"): unknown attribute countryy',
      '- filter 2 "US", clause 2 (mail REGEX MATCH "("): invalid regular expression "(": missing closing ): `(`',
      '- filter 3: needs at least one clause in "clauses"',
    ]);
  });

  it('reports several problems of one clause together', () => {
    const error = invalid([{ clauses: [{ attribute: 'nope', operator: 'Greater_Than', value: 'x', extra: 1 }] }]);
    expect(error.problems.map((p) => p.message)).toEqual([
      'filter 1, clause 1 (nope Greater_Than "x"): unknown key "extra" (a clause has "attribute", "operator" and "value")',
      'filter 1, clause 1 (nope Greater_Than "x"): unknown attribute nope',
      'filter 1, clause 1 (nope Greater_Than "x"): Greater_Than needs a whole number, got "x"',
    ]);
  });
});

describe('canonical form and hash', () => {
  const base = parseScopingFilters([
    { name: 'Sales only', clauses: [
      { attribute: 'department', operator: 'EQUALS', value: 'Sales' },
      { attribute: 'jobTitle', operator: 'IS NOT NULL' },
    ] },
    { name: 'US', clauses: [{ attribute: 'country', operator: 'EQUALS', value: 'US' }] },
  ]);

  it('ignores names, order and spelling, which do not change who is in scope', () => {
    const same = parseScopingFilters([
      { clauses: [{ attribute: 'Country', operator: 'equals', value: 'US' }] },
      { name: 'Renamed', clauses: [
        { attribute: 'JOBTITLE', operator: 'IsNotNull', value: 'ignored' },
        { attribute: 'department', operator: 'EQUALS', value: 'Sales' },
      ] },
    ]);
    expect(canonicalScopingFilters(same)).toBe(canonicalScopingFilters(base));
    expect(hashScopingFilters(same)).toBe(hashScopingFilters(base));
    expect(hashScopingFilters(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each<[string, unknown]>([
    ['a value', [{ clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'sales' }, { attribute: 'jobTitle', operator: 'IS NOT NULL' }] }, { clauses: [{ attribute: 'country', operator: 'EQUALS', value: 'US' }] }]],
    ['an operator', [{ clauses: [{ attribute: 'department', operator: 'NOT EQUALS', value: 'Sales' }, { attribute: 'jobTitle', operator: 'IS NOT NULL' }] }, { clauses: [{ attribute: 'country', operator: 'EQUALS', value: 'US' }] }]],
    ['moving a clause to another filter', [{ clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }] }, { clauses: [{ attribute: 'jobTitle', operator: 'IS NOT NULL' }, { attribute: 'country', operator: 'EQUALS', value: 'US' }] }]],
    ['dropping a filter', [{ clauses: [{ attribute: 'department', operator: 'EQUALS', value: 'Sales' }, { attribute: 'jobTitle', operator: 'IS NOT NULL' }] }]],
  ])('changes with %s', (_title, other) => {
    expect(hashScopingFilters(parseScopingFilters(other))).not.toBe(hashScopingFilters(base));
  });

  it('is stable text', () => {
    expect(canonicalScopingFilters(base)).toBe('[[["country","EQUALS","US"]],[["department","EQUALS","Sales"],["jobTitle","IS_NOT_NULL",null]]]');
    expect(canonicalScopingFilters([])).toBe('[]');
  });
});
