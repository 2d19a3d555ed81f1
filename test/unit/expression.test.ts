import { describe, expect, it } from 'vitest';
import {
  canonicalAttribute, graphSelectFor, SOURCE_ATTRIBUTES, UnknownAttributeError,
} from '../../shared/sync/attributes';
import {
  evaluateExpression, type Expression, ExpressionError, type ExpressionValue, expressionValueToBoolean,
  expressionValueToText, MAX_NESTING_DEPTH, parseExpression,
} from '../../shared/sync/expression';

type Attrs = Record<string, unknown>;

function run(text: string, attributes: Attrs = {}, extra: { appRoleAssignments?: string[]; locale?: string; guid?: () => string } = {}): ExpressionValue {
  return evaluateExpression(parseExpression(text), { attributes, ...extra });
}

function parseError(text: string): ExpressionError {
  try {
    parseExpression(text);
  } catch (error) {
    if (error instanceof ExpressionError) return error;
    throw error;
  }
  throw new Error(`expected ${text} to fail parsing`);
}

function runtimeError(text: string, attributes: Attrs, extra: { appRoleAssignments?: string[] } = {}): ExpressionError {
  const expr = parseExpression(text);
  try {
    evaluateExpression(expr, { attributes, ...extra });
  } catch (error) {
    if (error instanceof ExpressionError) return error;
    throw error;
  }
  throw new Error(`expected ${text} to fail at runtime`);
}

describe('source attribute catalogue', () => {
  it.each([
    ['displayName', 'displayName'],
    ['DISPLAYNAME', 'displayName'],
    ['objectId', 'id'],
    ['ID', 'id'],
    ['mobile', 'mobilePhone'],
    ['physicalDeliveryOfficeName', 'officeLocation'],
    ['extensionAttribute7', 'extensionAttribute7'],
    ['onPremisesExtensionAttributes.extensionAttribute15', 'extensionAttribute15'],
    ['issoftdeleted', 'IsSoftDeleted'],
    ['AppRoleAssignments', 'appRoleAssignments'],
    ['extensionAttribute16', null],
    ['manager', null],
    ['', null],
  ])('canonicalAttribute(%j) is %j', (name, expected) => {
    expect(canonicalAttribute(name)).toBe(expected);
  });

  it('lists every attribute the brief names, once', () => {
    const names = SOURCE_ATTRIBUTES.map((a) => a.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of ['userPrincipalName', 'accountEnabled', 'employeeType', 'onPremisesImmutableId', 'extensionAttribute1', 'extensionAttribute15']) {
      expect(names).toContain(name);
    }
    expect(SOURCE_ATTRIBUTES.find((a) => a.name === 'accountEnabled')!.type).toBe('boolean');
  });

  it('graphSelectFor maps extension attributes to one property, drops computed ones and duplicates', () => {
    expect(graphSelectFor(['userPrincipalName', 'extensionAttribute3', 'IsSoftDeleted', 'EXTENSIONATTRIBUTE9', 'objectId', 'appRoleAssignments', 'displayName', 'userprincipalname']))
      .toEqual(['userPrincipalName', 'onPremisesExtensionAttributes', 'id', 'displayName']);
    expect(graphSelectFor([])).toEqual([]);
  });

  it('graphSelectFor rejects an unknown name with a coded error', () => {
    expect(() => graphSelectFor(['displayName', 'manager'])).toThrow(UnknownAttributeError);
    expect(() => graphSelectFor(['manager'])).toThrow(/"manager" is not a known Entra user attribute/);
  });
});

describe("examples from Microsoft's expression reference", () => {
  it.each<[string, string, Attrs, ExpressionValue]>([
    ['Append constant suffix', 'Append([userPrincipalName], ".test")', { userPrincipalName: 'John.Doe@contoso.com' }, 'John.Doe@contoso.com.test'],
    ['Coalesce: mail else UPN', 'Coalesce([mail],[userPrincipalName])', { mail: null, userPrincipalName: 'John.Doe@contoso.com' }, 'John.Doe@contoso.com'],
    ['Coalesce: mail present', 'Coalesce([mail],[userPrincipalName])', { mail: 'jd@contoso.com', userPrincipalName: 'John.Doe@contoso.com' }, 'jd@contoso.com'],
    ['CBool of a comparison', 'CBool([mail] = [userPrincipalName])', { mail: 'a@b.c', userPrincipalName: 'a@b.c' }, true],
    ['CBool of a comparison, different', 'CBool([mail] = [userPrincipalName])', { mail: 'a@b.c', userPrincipalName: 'x@b.c' }, false],
    ['CStr of a reference', 'CStr([displayName])', { displayName: 'cn=Joe,dc=contoso,dc=com' }, 'cn=Joe,dc=contoso,dc=com'],
    ['IIF country=USA', 'IIF([country]="USA",[country],[department])', { country: 'USA', department: 'Sales' }, 'USA'],
    ['IIF country<>USA', 'IIF([country]="USA",[country],[department])', { country: 'DE', department: 'Sales' }, 'Sales'],
    ['IIF AND via nesting', 'IIF([country]="USA",IIF([state]="CA","True","False"),"False")', { country: 'USA', state: 'CA' }, 'True'],
    ['IIF AND via nesting, false', 'IIF([country]="USA",IIF([state]="CA","True","False"),"False")', { country: 'USA', state: 'NY' }, 'False'],
    ['IIF OR via nesting', 'IIF([country]="USA","True",IIF([state]="CA","True","False"))', { country: 'MX', state: 'CA' }, 'True'],
    ['IIF OR via nesting, false', 'IIF([country]="USA","True",IIF([state]="CA","True","False"))', { country: 'MX', state: 'NL' }, 'False'],
    ['Switch workaround for empty country', 'Switch([country],[country],"","Other")', {}, 'Other'],
    ['Switch workaround, country present', 'Switch([country],[country],"","Other")', { country: 'Norway' }, 'Norway'],
    ['Switch workaround, empty string', 'Switch([country],[country],"","Other")', { country: '' }, 'Other'],
    ['IsNull of an absent attribute', 'IsNull([displayName])', {}, true],
    ['IsNull of a present attribute', 'IsNull([displayName])', { displayName: 'Jo' }, false],
    ['IsNullOrEmpty of ""', 'IsNullOrEmpty([displayName])', { displayName: '' }, true],
    ['IsNullOrEmpty of absent', 'IsNullOrEmpty([displayName])', {}, true],
    ['IsNullOrEmpty of a value', 'IsNullOrEmpty([displayName])', { displayName: 'Jo' }, false],
    // Microsoft's IsPresent example with attributes of our catalogue (directManager etc. are HR attributes).
    ['IsPresent Switch chain', 'Switch(IsPresent([mail]),[mail], IsPresent([mobilePhone]),[mobilePhone], IsPresent([officeLocation]),[officeLocation])', { mail: 'm', mobilePhone: '1' }, '1'],
    ['Item first (1-based)', 'Item(Split([extensionAttribute5], ","), 1)', { extensionAttribute5: 'x,y' }, 'x'],
    ['Left', 'Left("John Doe", 3)', {}, 'Joh'],
    ['NormalizeDiacritics', 'NormalizeDiacritics([givenName])', { givenName: 'Zoë' }, 'Zoe'],
    ['Replace literal whole value', 'Replace([jobTitle],"Product Developer", , , "Software Engineer", , )', { jobTitle: 'Product Developer' }, 'Software Engineer'],
    ['Replace into a template', 'Replace([mailNickname],"<username>", , , , , "<username>@contoso.com")', { mailNickname: 'jsmith' }, 'jsmith@contoso.com'],
    ['Replace regex with ${group}', 'Replace([mobilePhone], , "\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})", , "${phoneNumber}", , )', { mobilePhone: '+91 9998887777' }, '9998887777'],
    // Microsoft prints 19998887777, but the pattern [()\s-]+ does not remove "+" (in .NET either).
    ['Replace regex collapse', 'Replace([mobilePhone], , "[()\\\\s-]+", , "", , )', { mobilePhone: '+1 (999) 888-7777' }, '+19998887777'],
    ['Replace regex group with value', 'Replace([streetAddress], ,"(?<streetNumber>^\\\\d*)","streetNumber", "888", , )', { streetAddress: '545 Tremont Street' }, '888 Tremont Street'],
    ['Replace regex group: strip UPN suffix', 'Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )', { userPrincipalName: 'jsmith@contoso.com' }, 'jsmith'],
    ['Replace from another attribute when empty', 'Replace([officeLocation], , "\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})", "phoneNumber" , , [mobilePhone], )', { officeLocation: '', mobilePhone: '+91 8887779999' }, '8887779999'],
    ['Replace from another attribute, source present', 'Replace([officeLocation], , "\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})", "phoneNumber" , , [mobilePhone], )', { officeLocation: 'B12', mobilePhone: '+91 8887779999' }, 'B12'],
    ['Replace regex remove letters', 'Replace([mailNickname], , "[a-zA-Z_]*", , "", , )', { mailNickname: 'john_doe72' }, '72'],
    ['Split into a list (items trimmed)', 'Split([extensionAttribute5], ",")', { extensionAttribute5: 'PermissionSetOne, PermissionSetTwo' }, ['PermissionSetOne', 'PermissionSetTwo']],
    ['Switch state to time zone', 'Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane", "SA", "Australia/Adelaide")', { state: 'QLD' }, 'Australia/Brisbane'],
    ['Switch state default', 'Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane", "SA", "Australia/Adelaide")', { state: 'VIC' }, 'Australia/Sydney'],
    ['Switch is case-sensitive', 'Switch([state], "none", "qld", "lower")', { state: 'QLD' }, 'none'],
    ['Switch with nested ToLower', 'Switch(ToLower([extensionAttribute1]), "0", "true", "1", "false", "0")', { extensionAttribute1: 'TRUE' }, '1'],
    ['Switch with "" key, empty source', 'Switch([extensionAttribute1], "Default Value", "true", "1", "", "0")', { extensionAttribute1: '' }, '0'],
    ['Switch with "" key, null source', 'Switch([extensionAttribute1], "Default Value", "true", "1", "", "0")', {}, '0'],
    ['Switch with "" key, other value', 'Switch([extensionAttribute1], "Default Value", "true", "1", "", "0")', { extensionAttribute1: 'maybe' }, 'Default Value'],
    ['ToLower generated UPN', 'ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".",  [givenName], [surname]))), "contoso.com"))', { givenName: 'John', surname: 'Smith' }, 'john.smith@contoso.com'],
    ['Word 3 by space', 'Word("The quick brown fox",3," ")', {}, 'brown'],
    ['Word 3 by several delimiters', 'Word("This,string!has&many separators",3,",!&#")', {}, 'has'],
    ['Strip known domain', 'Replace([mail], "@contoso.com", , ,"", ,)', { mail: 'john.doe@contoso.com' }, 'john.doe'],
    ['Alias from name parts', 'Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))', { givenName: 'John', surname: 'Doe' }, 'JohDoe'],
    ['Comma between last and first name', 'Join(", ", "", [surname], [givenName])', { givenName: 'John', surname: 'Doe' }, 'Doe, John'],
    ['IgnoreFlowIfNullOrEmpty of empty', 'IgnoreFlowIfNullOrEmpty([department])', { department: '' }, null],
    ['IgnoreFlowIfNullOrEmpty of value', 'IgnoreFlowIfNullOrEmpty([department])', { department: 'Sales' }, 'Sales'],
    ['IgnoreFlowIfNullOrEmpty of Switch', 'IgnoreFlowIfNullOrEmpty(Switch([jobTitle], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))', { jobTitle: '9999' }, null],
    ['IgnoreFlowIfNullOrEmpty of Switch, hit', 'IgnoreFlowIfNullOrEmpty(Switch([jobTitle], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))', { jobTitle: '3444' }, 'Prof.'],
  ])('%s: %s', (_title, text, attributes, expected) => {
    expect(run(text, attributes)).toEqual(expected);
  });

  it('Guid() returns a fresh GUID, injectable for tests', () => {
    expect(run('Guid()', {}, { guid: () => '00aa00aa-bb11-cc22-dd33-44ee44ee44ee' })).toBe('00aa00aa-bb11-cc22-dd33-44ee44ee44ee');
    const a = run('Guid()');
    const b = run('Guid()');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });

  it.each([
    ['DateDiff in an IIF', 'IIF(DateDiff("d", Now(), CDate([employeeId])) > 5, "False", "True")', 'DateDiff is an Entra function that tvsync does not support', 4],
    ['SelectUniqueValue', 'SelectUniqueValue(Join("@", [givenName], "contoso.com"), Join("@", [surname], "contoso.com"))', 'SelectUniqueValue is an Entra function that tvsync does not support', 0],
    ['FormatDateTime', 'FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")', 'FormatDateTime is an Entra function that tvsync does not support', 0],
  ])('documented functions tvsync lacks are named as such: %s', (_title, text, detail, position) => {
    const error = parseError(text);
    expect(error.code).toBe('EXPRESSION_UNKNOWN_FUNCTION');
    expect(error.detail).toBe(detail);
    expect(error.position).toBe(position);
  });
});

describe('the default TeamViewer mappings', () => {
  const active = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")';

  it.each<[Attrs, ExpressionValue, boolean | undefined]>([
    [{ IsSoftDeleted: false }, 'True', true],
    [{ IsSoftDeleted: true }, 'False', false],
    [{ isSoftDeleted: 'True' }, 'False', false],
    [{ IsSoftDeleted: 'true' }, 'False', false],
    [{ IsSoftDeleted: 'false' }, 'True', true],
    [{}, null, undefined],
  ])('active for %j is %j', (attributes, expected, asBoolean) => {
    const value = run(active, attributes);
    expect(value).toBe(expected);
    expect(expressionValueToBoolean(value)).toBe(asBoolean);
  });

  it('direct mappings are expressions too', () => {
    const upn = parseExpression('[userPrincipalName]');
    expect(upn.attributes).toEqual(['userPrincipalName']);
    expect(evaluateExpression(upn, { attributes: { userPrincipalName: 'Ann@Contoso.com' } })).toBe('Ann@Contoso.com');
    expect(run('[displayName]', { displayName: 'Ann Lee' })).toBe('Ann Lee');
    expect(parseExpression(active).attributes).toEqual(['IsSoftDeleted']);
  });
});

describe('function behaviour and null semantics', () => {
  it.each<[string, Attrs, ExpressionValue]>([
    // Append
    ['Append([mail], "x")', {}, null],
    ['Append([mail], [department])', { mail: 'a' }, 'a'],
    ['Append("", "x")', {}, 'x'],
    // Coalesce
    ['Coalesce([mail], [department])', {}, null],
    ['Coalesce([mail], [department], "fallback")', {}, 'fallback'],
    ['Coalesce([mail], "fallback")', { mail: '' }, ''],
    ['Coalesce([appRoleAssignments], "none")', { appRoleAssignments: [] }, 'none'],
    // Join
    ['Join(" ", [givenName], [surname])', { givenName: 'Ann' }, 'Ann'],
    ['Join(" ", [givenName], [surname])', {}, null],
    ['Join(";", Split([extensionAttribute1], ","), [mail])', { extensionAttribute1: 'a,b', mail: 'c' }, 'a;b;c'],
    ['Join("", 1000, [employeeId])', { employeeId: '42' }, '100042'],
    ['Join(",", [accountEnabled], 2.5)', { accountEnabled: true }, 'True,2.5'],
    // Left / Mid
    ['Left([givenName], 3)', {}, ''],
    ['Left("abc", 0)', {}, ''],
    ['Left("abc", -1)', {}, 'abc'],
    ['Left("abc", 10)', {}, 'abc'],
    ['Left("abc", "2")', {}, 'ab'],
    ['Mid([givenName], 1, 2)', {}, null],
    ['Mid("abcdef", 3, 2)', {}, 'cd'],
    ['Mid("abcdef", 5, 10)', {}, 'ef'],
    ['Mid("abc", 7, 1)', {}, ''],
    // Case
    ['ToLower([mail])', { mail: 'Ann@Contoso.COM' }, 'ann@contoso.com'],
    ['ToUpper([mail])', { mail: 'ann' }, 'ANN'],
    ['ToLower([mail])', {}, null],
    ['ToLower("TITLE", "tr-TR")', {}, 'tıtle'],
    ['ToUpper("title", "tr-TR")', {}, 'TİTLE'],
    // StripSpaces / Trim / Word / Split / Item
    ['StripSpaces(" a b  c ")', {}, 'abc'],
    ['StripSpaces([displayName])', {}, null],
    ['Trim("  a b ")', {}, 'a b'],
    ['Word([displayName], 1, " ")', {}, ''],
    ['Word("a  b", 2, " ")', {}, 'b'],
    ['Word("a b", 0, " ")', {}, ''],
    ['Word("a b", 3, " ")', {}, ''],
    ['Split([extensionAttribute2], ",")', {}, null],
    ['Split("a,,b", ",")', {}, ['a', '', 'b']],
    ['Split("a b", "")', {}, ['a b']],
    ['Item(Split("a,b,c", ","), 2)', {}, 'b'],
    ['Item(Split("a,b,c", ","), 4)', {}, null],
    ['Item([mail], 1)', { mail: 'x' }, 'x'],
    ['Item([mail], 1)', {}, null],
    // Boolean helpers
    ['Not([accountEnabled])', { accountEnabled: true }, false],
    ['Not([accountEnabled])', { accountEnabled: false }, true],
    ['Not("True")', {}, false],
    ['Not("false")', {}, true],
    ['Not([department])', {}, true],
    ['Not(IsPresent([mail]))', { mail: 'a' }, false],
    ['CBool("1")', {}, true],
    ['CBool("0")', {}, false],
    ['CBool("TRUE")', {}, true],
    ['CBool([mail])', {}, false],
    ['CBool(0)', {}, false],
    ['CStr(True)', {}, 'True'],
    ['CStr([accountEnabled])', { accountEnabled: false }, 'False'],
    ['CStr(12)', {}, '12'],
    ['CStr([mail])', {}, null],
    ['IsNull("")', {}, false],
    ['IsPresent("")', {}, false],
    ['IsPresent(" ")', {}, true],
    ['IsNullOrEmpty([appRoleAssignments])', { appRoleAssignments: [] }, true],
    // IIF: conditions on null/empty work here (Microsoft documents them as failing in Entra)
    ['IIF(IsPresent([country]),[country],"Other")', {}, 'Other'],
    ['IIF(IsNullOrEmpty([country]),"Other",[country])', { country: '' }, 'Other'],
    ['IIF([country]="","Other",[country])', {}, 'Other'],
    ['IIF([country]="USA","us","other")', {}, 'other'],
    ['IIF([country]<>"USA","other","us")', {}, 'other'],
    ['IIF([accountEnabled] = True, "on", "off")', { accountEnabled: true }, 'on'],
    ['IIF([accountEnabled] = "true", "on", "off")', { accountEnabled: true }, 'on'],
    ['IIF([accountEnabled], "on", "off")', { accountEnabled: false }, 'off'],
    ['IIF([employeeId] > 1000, "big", "small")', { employeeId: '999' }, 'small'],
    ['IIF([employeeId] >= 1000, "big", "small")', { employeeId: '1000' }, 'big'],
    ['IIF([employeeId] < 1000, "lt", "ge")', {}, 'ge'],
    ['IIF([employeeId] = 7, "seven", "no")', { employeeId: '7.0' }, 'seven'],
    ['IIF([employeeId] = "7", "seven", "no")', { employeeId: '7.0' }, 'no'],
    ['IIF([surname] < "M", "A-L", "M-Z")', { surname: 'Lee' }, 'A-L'],
    ['IIF(True, "a", CBool("not a boolean"))', {}, 'a'],
    // Switch
    ['Switch([accountEnabled], "?", "True", "on", "False", "off")', { accountEnabled: false }, 'off'],
    ['Switch([department], , "Sales", "S")', { department: 'IT' }, null],
    ['Switch([department], "d", "Sales", , "IT", "I")', { department: 'Sales' }, null],
    // SingleAppRoleAssignment
    ['SingleAppRoleAssignment([appRoleAssignments])', { appRoleAssignments: ['Admin'] }, 'Admin'],
    ['SingleAppRoleAssignment([appRoleAssignments])', { appRoleAssignments: ['User', 'User'] }, 'User'],
    ['SingleAppRoleAssignment([appRoleAssignments])', { appRoleAssignments: [] }, null],
    ['SingleAppRoleAssignment([appRoleAssignments])', {}, null],
    // Replace details
    ['Replace([mail], "a", , , "b", , )', { mail: 'banana' }, 'bbnbnb'],
    ['Replace([mail], "a", , , "b", , )', {}, null],
    ['Replace([mail], "<u>", , , , , [department])', {}, null],
    ['Replace([mail], , "(?i)CONTOSO", , "fabrikam", , )', { mail: 'a@Contoso.com' }, 'a@fabrikam.com'],
    ['Replace([mail], , "^(\\\\w+)@(\\\\w+)", , "$2\\\\$1 $$ ${1}", , )', { mail: 'ann@contoso.com' }, 'contoso\\ann $ ann.com'],
    ['Replace([mail], , "\\\\Aann", , "bob", , )', { mail: 'ann@ann.com' }, 'bob@ann.com'],
    ['Replace([mail], , "(?\'user\'\\\\w+)@", "user", "x", , )', { mail: 'ann@contoso.com' }, 'x@contoso.com'],
    ['Replace([mail], , "(?<d>\\\\d)", , "", , )', {}, null],
    ['Replace([department], , "(?<d>\\\\d+)", "d", , [mail], )', { mail: 'no digits' }, null],
  ])('%s with %j → %j', (text, attributes, expected) => {
    expect(run(text, attributes)).toEqual(expected);
  });

  it('ToLower/ToUpper use the context locale when the expression names none', () => {
    expect(run('ToLower("I")', {}, { locale: 'tr-TR' })).toBe('ı');
    expect(run('ToLower("I")')).toBe('i');
    expect(run('ToLower("I", "en-US")', {}, { locale: 'tr-TR' })).toBe('i');
  });

  it('reads appRoleAssignments from the context first, then from the attributes', () => {
    expect(run('SingleAppRoleAssignment([appRoleAssignments])', { appRoleAssignments: ['A'] }, { appRoleAssignments: ['B'] })).toBe('B');
    expect(run('Join(",", [appRoleAssignments])', {}, { appRoleAssignments: ['B', 'C'] })).toBe('B,C');
  });

  it('returns lists and booleans as values, and converts them for string targets', () => {
    expect(expressionValueToText(run('Split("a,b", ",")'))).toBe('a,b');
    expect(expressionValueToText(run('IsNull([mail])'))).toBe('True');
    expect(expressionValueToText(run('Left("abc", 2)'))).toBe('ab');
    expect(expressionValueToText(1000)).toBe('1000');
    expect(expressionValueToText(null)).toBeNull();
    expect(expressionValueToText([])).toBeNull();
  });
});

describe('attribute lookup', () => {
  it.each<[string, Attrs, ExpressionValue]>([
    ['[displayName]', { DisplayName: 'Ann' }, 'Ann'],
    ['[DISPLAYNAME]', { displayName: 'Ann' }, 'Ann'],
    ['[objectId]', { id: '42' }, '42'],
    ['[mobile]', { mobilePhone: '+1' }, '+1'],
    ['[extensionAttribute5]', { onPremisesExtensionAttributes: { extensionAttribute5: 'nested' } }, 'nested'],
    ['[extensionAttribute5]', { onPremisesExtensionAttributes: { extensionAttribute5: null } }, null],
    ['[extensionAttribute5]', { extensionAttribute5: 'flat' }, 'flat'],
    ['[onPremisesExtensionAttributes.extensionAttribute5]', { onPremisesExtensionAttributes: { extensionAttribute5: 'x' } }, 'x'],
    ['[department]', { department: undefined }, null],
    ['[employeeId]', { employeeId: 1234 }, 1234],
  ])('%s in %j is %j', (text, attributes, expected) => {
    expect(run(text, attributes)).toEqual(expected);
  });

  it('reports the canonical names referenced, once each, in order of first use', () => {
    expect(parseExpression('Join(" ", [GivenName], [objectId], [givenname], [extensionAttribute3], [IsSoftDeleted])').attributes)
      .toEqual(['givenName', 'id', 'extensionAttribute3', 'IsSoftDeleted']);
    expect(parseExpression('Guid()').attributes).toEqual([]);
  });

  it('evaluates an expression rebuilt from storage (source and attributes only)', () => {
    const stored: Expression = JSON.parse(JSON.stringify(parseExpression('ToUpper([mail])')));
    expect(evaluateExpression(stored, { attributes: { mail: 'a@b' } })).toBe('A@B');
  });

  it('keeps the source text exactly as written', () => {
    const text = '  ToLower( [mail] )  ';
    expect(parseExpression(text).source).toBe(text);
  });
});

describe('unicode', () => {
  it.each([
    ['Zoë Ångström', 'Zoe Angstrom'],
    ['Straße', 'Strasse'],
    ['Øyvind Sørensen', 'OEyvind Soerensen'],
    ['Łukasz Żółć', 'Lukasz Zolc'],
    ['Ærøskøbing', 'AEroeskoebing'],
    ['Dvořák Škoda Ťuk', 'Dvorak Skoda Tuk'],
    ['Đorđe', 'Dorde'],
    ['İstanbul ılık', 'Istanbul ilik'],
    ['François Núñez', 'Francois Nunez'],
    ['Zoe\u0308', 'Zoe'], // decomposed input
    ['Ā̀ ǖ ȫ', 'A u o'], // letters with two marks, from Microsoft's table
    ['Άλφα Йосиф 한글 हिंदी', 'Άλφα Йосиф 한글 हिंदी'], // other scripts pass through unchanged
    ['plain ASCII', 'plain ASCII'],
  ])('NormalizeDiacritics(%j) = %j', (input, expected) => {
    expect(run('NormalizeDiacritics([displayName])', { displayName: input })).toBe(expected);
  });

  it('keeps unicode text intact through string functions', () => {
    expect(run('Left([displayName], 3)', { displayName: 'Zoë Ångström' })).toBe('Zoë');
    expect(run('ToUpper([displayName])', { displayName: 'zoë' })).toBe('ZOË');
    expect(run('Join("·", [givenName], [surname])', { givenName: '田中', surname: '太郎' })).toBe('田中·太郎');
  });
});

describe('pasted-from-portal forms', () => {
  it.each<[string, string, Attrs, ExpressionValue]>([
    ['extra spaces everywhere', '   Switch (  [IsSoftDeleted]  ,  ,  "False" , "True" ,"True","False" )   ', { IsSoftDeleted: false }, 'True'],
    ['spaces inside brackets', 'ToLower([ mail ])', { mail: 'A' }, 'a'],
    ['line breaks and tabs', 'Switch([state], "x",\n\t"NSW", "Australia/Sydney",\r\n\t"QLD", "Australia/Brisbane")', { state: 'NSW' }, 'Australia/Sydney'],
    ['non-breaking spaces', 'Append(\u00a0[mail],\u00a0"x")', { mail: 'a' }, 'ax'],
    ['zero-width space', 'Append([mail],\u200b"x")', { mail: 'a' }, 'ax'],
    ['lower-case function names', 'switch([companyName], "External", "Company A", "A", "Company B", "B")', { companyName: 'Company B' }, 'B'],
    ['upper-case function names', 'TOLOWER(APPEND([mail], "X"))', { mail: 'A' }, 'ax'],
    ['escaped quotes', '"Company name: \\"Contoso\\""', {}, 'Company name: "Contoso"'],
    ['escaped backslash', 'Append("a\\\\", "b")', {}, 'a\\b'],
    ['lone backslash kept', 'Replace([mail], , "\\d+", , "#", , )', { mail: 'a12b3' }, 'a#b#'],
    ['string constant alone', '"United States"', {}, 'United States'],
  ])('%s', (_title, text, attributes, expected) => {
    expect(run(text, attributes)).toEqual(expected);
  });
});

describe('parse errors', () => {
  it.each<[string, string, ExpressionError['code'], number, string | RegExp]>([
    ['missing ")"', 'Join(",", [givenName]', 'EXPRESSION_PARSE', 21, 'Expected "," or ")" to continue Join(, but the expression ended at position 21: Join(",", [givenName]'],
    ['extra ")"', 'Append([mail], ".x"))', 'EXPRESSION_PARSE', 20, /^Unexpected "\)" with no "\(" to close at position 20/],
    ['missing comma', 'Append([mail] "x")', 'EXPRESSION_PARSE', 14, /Expected "," or "\)" to continue Append\(, but found "x" at position 14/],
    ['unterminated string', 'Append([mail], "abc)', 'EXPRESSION_PARSE', 15, /^Unterminated string/],
    ['unterminated attribute', 'Append([mail, "x")', 'EXPRESSION_PARSE', 7, /^Unterminated attribute name/],
    ['empty attribute', 'ToLower([])', 'EXPRESSION_PARSE', 8, /^Empty attribute name/],
    ['stray "]"', 'ToLower(mail])', 'EXPRESSION_PARSE', 8, /^Unexpected word "mail"/],
    ['smart double quotes', 'Append([mail], “.test”)', 'EXPRESSION_PARSE', 15, /^Typographic quote “ is not allowed: use a straight double quote \(\"\)/],
    ['closing smart quote', 'Append([mail], ".test”)', 'EXPRESSION_PARSE', 15, /^Unterminated string/],
    ['single quotes', "Append([mail], '.test')", 'EXPRESSION_PARSE', 15, /^Unexpected quote ': text goes in straight double quotes/],
    ['curly single quotes', 'Append([mail], ‘.test’)', 'EXPRESSION_PARSE', 15, /^Unexpected quote ‘/],
    ['bare word', 'ToLower(mail)', 'EXPRESSION_PARSE', 8, 'Unexpected word "mail": attributes go in square brackets ([mail]) and text in double quotes ("mail") at position 8: ToLower(mail)'],
    ['function without (', 'ToLower', 'EXPRESSION_PARSE', 7, /^Expected "\(" after the function name ToLower/],
    ['empty expression', '', 'EXPRESSION_PARSE', 0, /^Expected a function call, an \[attribute\], "text" or a number, found the end of the expression at position 0/],
    ['blank expression', '   ', 'EXPRESSION_PARSE', 3, /found the end of the expression at position 3/],
    ['leading comma', ',', 'EXPRESSION_PARSE', 0, /found ","/],
    ['two expressions', 'Append([mail], "x") Append([mail], "y")', 'EXPRESSION_PARSE', 20, /^Expected the end of the expression, found "Append"/],
    ['AND between conditions', 'IIF([country]="USA" AND [state]="CA", "a", "b")', 'EXPRESSION_PARSE', 20, /no AND operator: nest IIF calls instead/],
    ['OR at top level', '[country]="USA" or [state]="CA"', 'EXPRESSION_PARSE', 16, /no OR operator: nest IIF calls instead/],
    ['!= instead of <>', 'IIF([country] != "US", "a", "b")', 'EXPRESSION_PARSE', 14, /^Unexpected "!=": write <> for "not equal"/],
    ['chained comparison', 'CBool([mail] = [mail] = [mail])', 'EXPRESSION_PARSE', 22, /^Comparisons cannot be chained/],
    ['unknown character', 'Append([mail]; "x")', 'EXPRESSION_PARSE', 13, /^Unexpected character ";"/],
    ['integer literal not a number', 'Left("abc", "x")', 'EXPRESSION_PARSE', 12, /^Left argument 2 \(numChars\): "x" is not a whole number/],
    ['fractional integer', 'Mid("abc", 1.5, 2)', 'EXPRESSION_PARSE', 11, /^Mid argument 2 \(start\): 1.5 is not a whole number/],
    ['bad regex', 'Replace([mail], , "([a-z", , "", , )', 'EXPRESSION_PARSE', 18, /^Replace argument 3 \(regexPattern\): invalid regular expression "\(\[a-z": /],
    ['unsupported regex option', 'Replace([mail], , "(?x)a b", , "", , )', 'EXPRESSION_PARSE', 18, /inline option "x" is not supported/],
    ['bad culture', 'ToLower([mail], "not a culture!!")', 'EXPRESSION_PARSE', 16, /^ToLower argument 2 \(culture\): "not a culture!!" is not a culture name/],
  ])('%s', (_title, text, code, position, message) => {
    const error = parseError(text);
    expect(error.code).toBe(code);
    expect(error.position).toBe(position);
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
    expect(error.message).toContain(`at position ${position}: ${text}`);
  });

  it.each<[string, string, number, RegExp]>([
    ['Left with one argument', 'Left("abc")', 0, /^Left takes 2 arguments, got 1: Left\(string, numChars\)/],
    ['Append with three', 'Append([mail], "x", "y")', 0, /^Append takes 2 arguments, got 3/],
    ['Guid with one', 'Guid("x")', 0, /^Guid takes 0 arguments, got 1/],
    ['ToLower with three', 'ToLower([mail], "en-US", "x")', 0, /^ToLower takes 1 to 2 arguments, got 3/],
    ['Join with a separator only', 'Join(",")', 0, /^Join takes at least 2 arguments, got 1: Join\(separator, source…\)/],
    ['Coalesce with none', 'Coalesce()', 0, /^Coalesce takes at least 1 argument/],
    ['trailing empty argument', 'Append([mail] , "x" , )', 0, /^Append takes 2 arguments, got 3/],
    ['empty required argument', 'Append([mail], , )', 0, /^Append takes 2 arguments, got 3/],
    ['empty required position', 'Mid([mail], , 3)', 0, /^Mid needs argument 2 \(start\); it is empty/],
    ['nested call position', 'ToLower(Left([mail]))', 8, /^Left takes 2 arguments, got 1/],
    ['Switch with an odd count', 'Switch([mail], "d", "k")', 0, /a key has no value/],
    ['Switch without pairs', 'Switch([mail], "d")', 0, /^Switch takes a source, a defaultValue, then key, value pairs/],
    ['Switch with an empty key', 'Switch([mail], "d", , "v")', 0, /^Switch needs argument 3 \(key\); it is empty/],
    ['Replace with both oldValue and regex', 'Replace([mail], "a", "b", , "c", , )', 21, /not both/],
    ['Replace without a replacement', 'Replace([mail], "a")', 0, /^Replace with an oldValue needs a replacementValue \(argument 5\) or a template/],
    ['Replace with neither form', 'Replace([mail])', 0, /^Replace needs an oldValue \(argument 2\) or a regexPattern/],
    ['Replace group not in pattern', 'Replace([mail], , "(?<x>a)", "y", "z", , )', 29, /^Replace: the regexPattern has no group named "y"/],
    ['Replace template with regex', 'Replace([mail], , "a", , "b", , "t")', 32, /template \(argument 7\) goes with an oldValue/],
  ])('arity: %s', (_title, text, position, message) => {
    const error = parseError(text);
    expect(error.code).toBe('EXPRESSION_ARITY');
    expect(error.position).toBe(position);
    expect(error.message).toMatch(message);
  });

  it.each<[string, ExpressionError['code'], number, RegExp]>([
    ['Frobnicate([mail])', 'EXPRESSION_UNKNOWN_FUNCTION', 0, /^Unknown function Frobnicate at position 0/],
    ['Joinn(",", [mail])', 'EXPRESSION_UNKNOWN_FUNCTION', 0, /^Unknown function Joinn; did you mean Join\?/],
    ['ToLower(Coalese([mail], "x"))', 'EXPRESSION_UNKNOWN_FUNCTION', 8, /did you mean Coalesce\?/],
    ['ToLower([mial])', 'EXPRESSION_UNKNOWN_ATTRIBUTE', 8, /^Unknown attribute \[mial\]; did you mean \[mail\]\? at position 8/],
    ['Join(" ", [givenName], [manager])', 'EXPRESSION_UNKNOWN_ATTRIBUTE', 23, /^Unknown attribute \[manager\] at position 23/],
    ['[extensionAttribute16]', 'EXPRESSION_UNKNOWN_ATTRIBUTE', 0, /did you mean \[extensionAttribute1\d?\]\?/],
  ])('unknown names: %s', (text, code, position, message) => {
    const error = parseError(text);
    expect(error.code).toBe(code);
    expect(error.position).toBe(position);
    expect(error.message).toMatch(message);
  });

  it(`accepts nesting ${MAX_NESTING_DEPTH} deep and rejects one level more`, () => {
    const nest = (depth: number): string => `${'ToLower('.repeat(depth)}[mail]${')'.repeat(depth)}`;
    expect(run(nest(MAX_NESTING_DEPTH), { mail: 'ABC' })).toBe('abc');
    const error = parseError(nest(MAX_NESTING_DEPTH + 1));
    expect(error.code).toBe('EXPRESSION_PARSE');
    expect(error.position).toBe(8 * MAX_NESTING_DEPTH);
    expect(error.message).toMatch(/^Functions are nested more than 100 deep/);
  });

  it('rejects absurd nesting quickly without overflowing the stack', () => {
    const started = Date.now();
    const error = parseError(`${'ToLower('.repeat(50_000)}[mail]${')'.repeat(50_000)}`);
    expect(error.code).toBe('EXPRESSION_PARSE');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('errors carry code, position, detail and the expression as fields', () => {
    const error = parseError('ToLower([mial])');
    expect(error).toBeInstanceOf(ExpressionError);
    expect(error.name).toBe('ExpressionError');
    expect(error.detail).toBe('Unknown attribute [mial]; did you mean [mail]?');
    expect(error.expression).toBe('ToLower([mial])');
  });
});

describe('runtime errors', () => {
  it.each<[string, string, Attrs, number, RegExp]>([
    ['several app roles', 'SingleAppRoleAssignment([appRoleAssignments])', { appRoleAssignments: ['Admin', 'User'] }, 0,
      /^SingleAppRoleAssignment: the user holds 2 app roles \("Admin", "User"\); this function supports one role per user at position 0/],
    ['Mid start 0', 'ToUpper(Mid([givenName], 0, 2))', { givenName: 'Ann' }, 8, /^Mid: start counts from 1, got 0 at position 8/],
    ['Mid negative length', 'Mid([givenName], 1, -2)', { givenName: 'Ann' }, 0, /^Mid: length cannot be negative/],
    ['Item index 0', 'Item(Split([mail], ","), 0)', { mail: 'a,b' }, 0, /^Item: index starts at 1, got 0/],
    ['CBool of text', 'CBool([department])', { department: 'Sales' }, 0, /^CBool: cannot convert "Sales" to True or False/],
    ['IIF on text', 'IIF([department], "a", "b")', { department: 'Sales' }, 0, /^IIF: the condition must be True or False, got "Sales"/],
    ['numChars from a text attribute', 'Left([givenName], [department])', { givenName: 'Ann', department: 'abc' }, 0, /^Left: numChars must be a whole number, got "abc"/],
    ['list where one value goes', 'ToLower(Split([mail], ","))', { mail: 'a,b' }, 0, /^ToLower: source needs a single value, got a list of 2 values/],
    ['object attribute', 'ToLower([department])', { department: { name: 'x' } }, 8, /^attribute \[department\] holds an object/],
    ['regex from an attribute', 'Replace([mail], , [department], , "x", , )', { mail: 'a', department: '(' }, 0, /^Replace: invalid regular expression "\("/],
    ['comparison of a list', 'IIF(Split([mail], ",") = "a", "y", "n")', { mail: 'a,b' }, 23, /compares single values, got a list/],
  ])('%s', (_title, text, attributes, position, message) => {
    const error = runtimeError(text, attributes);
    expect(error.code).toBe('EXPRESSION_RUNTIME');
    expect(error.position).toBe(position);
    expect(error.message).toMatch(message);
  });
});

describe('leftmost problem first', () => {
  it.each<[string, number, RegExp]>([
    ['Append([mail], "x") ;', 20, /^Unexpected character ";"/],
    ['Append([mail], "x") “', 20, /^Typographic quote/],
    ['ToLower(mail]) + "x', 8, /^Unexpected word "mail"/],
    ['Frob([mial], “x”)', 0, /^Unknown function Frob/],
  ])('%s', (text, position, message) => {
    const error = parseError(text);
    expect(error.position).toBe(position);
    expect(error.detail).toMatch(message);
  });
});
