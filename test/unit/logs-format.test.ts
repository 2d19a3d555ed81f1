import { describe, expect, it } from 'vitest';
import { LogsArgumentError, csvCell, formatLogs, parseLogFormat, parseSince, summarizeChanges } from '../../shared/logs-format';
import type { ProvisioningLogRecord } from '../../shared/state/logs';

function record(overrides: Partial<ProvisioningLogRecord> = {}): ProvisioningLogRecord {
  return {
    id: '20261128T210133.123Z-7f3a09c1',
    cycleId: '20261128T210000.000Z-1a2b',
    changeId: '0d6f3a4e-5b1c-4e8f-9a2d-3c4b5a6f7e8d',
    time: '2026-11-28T21:01:33.123Z',
    action: 'update',
    status: 'success',
    entraId: '6f1c2b7e-3d4a-4c4e-9a51-0b2f7f6c1d2e',
    userPrincipalName: 'ada@contoso.example',
    teamViewerId: 'u123',
    modifiedProperties: [{ name: 'displayName', old: 'A', new: 'B' }],
    errorCode: null,
    reason: null,
    durationMs: 42,
    ...overrides,
  };
}

/** A minimal RFC 4180 reader, to check that what we write reads back as the same cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  expect(cell).toBe('');
  expect(row).toEqual([]);
  return rows;
}

describe('formatLogs: csv', () => {
  it('When cells hold commas, quotes and line breaks, then they are quoted per RFC 4180 and read back unchanged', () => {
    const r = record({ reason: 'said "no", then\r\nleft', userPrincipalName: 'a,b@contoso.example' });
    const csv = formatLogs([r], 'csv');
    expect(csv.endsWith('\r\n')).toBe(true);
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual([
      'time', 'id', 'cycleId', 'changeId', 'action', 'status', 'entraId', 'userPrincipalName',
      'teamViewerId', 'modifiedProperties', 'errorCode', 'reason', 'durationMs',
    ]);
    expect(rows).toHaveLength(2);
    const cells = Object.fromEntries(rows[0]!.map((name, i) => [name, rows[1]![i]]));
    expect(cells).toMatchObject({
      userPrincipalName: 'a,b@contoso.example',
      reason: 'said "no", then\r\nleft',
      modifiedProperties: 'displayName: "A" → "B"',
      errorCode: '',
      durationMs: '42',
    });
    expect(csv).toContain('"said ""no"", then\r\nleft"');
  });

  it('When a cell starts with = + - @ tab or CR, then it is prefixed with an apostrophe so a spreadsheet shows text', () => {
    for (const evil of ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2+3', '@SUM(A1)', '\t=1', '\r=1']) {
      const csv = formatLogs([record({ userPrincipalName: evil, reason: evil })], 'csv');
      const cells = parseCsv(csv)[1]!;
      // A CR is a trigger and also starts a cell, so what follows it is defused too.
      const expected = evil === '\r=1' ? "'\r'=1" : `'${evil}`;
      expect(cells[7]).toBe(expected);
      expect(cells[11]).toBe(expected);
    }
    // A trigger inside the text is plain text; spaces before one do not hide it (importers trim them).
    expect(csvCell('a=b')).toBe('a=b');
    expect(csvCell('a-b; c+d')).toBe('"a-b; c+d"');
    expect(csvCell(' =1')).toBe("' =1");
    expect(csvCell('\uff1dHYPERLINK("x")')).toBe('"\'\uff1dHYPERLINK(""x"")"');
    expect(csvCell(null)).toBe('');
    // A changes summary starts with the attribute name, but a hostile name is defused too.
    expect(parseCsv(formatLogs([record({ modifiedProperties: [{ name: '=cmd', old: null, new: 'x' }] })], 'csv'))[1]![9]).toBe(`'=cmd: (none) → "x"`);
  });

  it('When a hostile value hides a formula after a line feed, a CR or a ";", then every place a cell can start is defused', () => {
    const evil = 'Ada\n=HYPERLINK("http://evil.example","x");@SUM(A1)\r+cmd|\' /C calc\'!A0; -2+3';
    const csv = formatLogs([record({ reason: evil, userPrincipalName: `ok;=1+1` })], 'csv');
    const defused = (cell: string) => !/(^|[\n\r;])[ ]*[=+\-@]/.test(cell);
    // An RFC 4180 reader gets one cell back, with an apostrophe at each cell start.
    const cells = parseCsv(csv)[1]!;
    expect(cells[11]).toBe('Ada\n\'=HYPERLINK("http://evil.example","x");\'@SUM(A1)\r\'+cmd|\' /C calc\'!A0;\' -2+3');
    expect(cells[7]).toBe("ok;'=1+1");
    // A spreadsheet whose list separator is ";" splits there, ignoring our quotes mid-cell.
    const semicolonCells = csv.split('\r\n')[1]!.split(';');
    expect(semicolonCells.length).toBeGreaterThan(3);
    expect(semicolonCells.filter((cell) => !defused(cell))).toEqual([]);
    // An importer that splits lines before it reads cells sees each line start defused.
    expect(csv.split(/\r\n|\n|\r/).filter((line) => !defused(line))).toEqual([]);
  });

  it('When there are no records, then the CSV is the header row alone', () => {
    expect(parseCsv(formatLogs([], 'csv'))).toHaveLength(1);
  });
});

describe('formatLogs: table', () => {
  it('When records have values of different widths, then every column starts at the same place on every line', () => {
    const records = [
      record({ userPrincipalName: 'a@x.example', teamViewerId: null, modifiedProperties: [] }),
      record({
        action: 'disable',
        status: 'failure',
        userPrincipalName: 'zoë.山田@contoso.example',
        modifiedProperties: [
          { name: 'displayName', old: 'Ada', new: 'Ada Lovelace' },
          { name: 'active', old: true, new: false },
          { name: 'email', old: null, new: 'ada@contoso.example' },
        ],
        errorCode: 'TEAMVIEWER_FORBIDDEN',
        reason: 'the token may not modify this user',
      }),
    ];
    const lines = formatLogs(records, 'table').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const header = lines[0]!;
    const starts = ['ACTION', 'STATUS', 'USER', 'TEAMVIEWER ID', 'CHANGES', 'REASON'].map((h) => header.indexOf(h));
    expect(starts.every((s, i) => s > (starts[i - 1] ?? 0))).toBe(true);
    const values = [
      ['update', 'success', 'a@x.example', '-', '-'],
      ['disable', 'failure', 'zoë.山田@contoso.example', 'u123', `${[...summarizeChanges(records[1]!.modifiedProperties)].slice(0, 79).join('')}…`],
    ];
    values.forEach((cells, row) => {
      const points = [...lines[row + 1]!];
      cells.forEach((cell, column) => {
        expect(points.slice(starts[column]!, starts[column]! + [...cell].length).join('')).toBe(cell);
      });
    });
    expect(lines[1]!.startsWith('2026-11-28 21:01:33Z')).toBe(true);
    expect(lines[2]!.endsWith('TEAMVIEWER_FORBIDDEN: the token may not modify this user')).toBe(true);
    expect(lines.every((line) => line === line.trimEnd())).toBe(true);
  });

  it('When a value carries escape sequences or control characters, then the table drops the sequences, shows the rest escaped and stays one line per record', () => {
    const table = formatLogs([record({ userPrincipalName: 'evil\u001b[2J@x\u0007', reason: 'line one\nline two \u202eevil', teamViewerId: '\u001b]8;;https://evil.example\u0007u1\u001b]8;;\u0007' })], 'table');
    expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(table.trimEnd().split('\n')).toHaveLength(2);
    expect(table).toContain('evil@x\\u0007');
    expect(table).toContain(' u1 ');
    expect(table).not.toContain('evil.example');
    expect(table).toContain('line one\\u000aline two \\u202eevil');
  });

  it('When there are no records, then it says so', () => {
    expect(formatLogs([], 'table')).toBe('(no records)\n');
  });
});

describe('formatLogs: json', () => {
  it('When records are written as JSON, then parsing the output gives the same records', () => {
    const records = [
      record(),
      record({ teamViewerId: null, modifiedProperties: [{ name: 'active', old: null, new: true }], durationMs: null, reason: 'ünïcode "quoted"\n' }),
      record({ userPrincipalName: 'a\u009b2J\u202e\u2028b@x', reason: '\u001b]0;title\u0007' }),
    ];
    expect(JSON.parse(formatLogs(records, 'json'))).toEqual(records);
    // Lossless, yet nothing a terminal acts on is written raw.
    expect(formatLogs(records, 'json')).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202e]/u);
    expect(JSON.parse(formatLogs([], 'json'))).toEqual([]);
  });
});

describe('summarizeChanges and parseLogFormat', () => {
  it('When changes are summarized, then strings are quoted, booleans bare and null shown as (none)', () => {
    expect(summarizeChanges([
      { name: 'displayName', old: 'A', new: 'B' },
      { name: 'active', old: true, new: false },
      { name: 'email', old: 'a"b', new: null },
    ])).toBe('displayName: "A" → "B"; active: true → false; email: "a\\"b" → (none)');
  });

  it('When a format is named, then table, json and csv are accepted in any case and anything else is refused', () => {
    expect(parseLogFormat('CSV')).toBe('csv');
    expect(parseLogFormat(' table ')).toBe('table');
    const error = (() => {
      try {
        parseLogFormat('xml');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(LogsArgumentError);
    expect(error).toMatchObject({ code: 'LOGS_INVALID_ARGUMENT', argument: 'format', value: 'xml' });
  });
});

describe('parseSince', () => {
  const now = new Date('2026-11-28T12:00:00.000Z');

  it.each([
    ['24h', '2026-11-27T12:00:00.000Z'],
    ['7d', '2026-11-21T12:00:00.000Z'],
    ['90m', '2026-11-28T10:30:00.000Z'],
    ['2w', '2026-11-14T12:00:00.000Z'],
    [' 12H ', '2026-11-28T00:00:00.000Z'],
    ['0h', '2026-11-28T12:00:00.000Z'],
    ['2026-11-01', '2026-11-01T00:00:00.000Z'],
    ['2026-11-01T08:30:00Z', '2026-11-01T08:30:00.000Z'],
    ['2026-11-01T08:30Z', '2026-11-01T08:30:00.000Z'],
    ['2026-11-01T08:30:00.5+01:00', '2026-11-01T07:30:00.500Z'],
    ['2026-11-01 08:30:00-0530', '2026-11-01T14:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
  ])('When since is %j, then it means %s', (text, expected) => {
    expect(parseSince(text, now).toISOString()).toBe(expected);
  });

  it.each([
    ['', 'is not understood'],
    ['yesterday', 'is not understood'],
    ['24', 'is not understood'],
    ['-7d', 'is not understood'],
    ['7 days', 'is not understood'],
    ['1.5h', 'is not understood'],
    ['2026-02-30', 'is not a date in the calendar'],
    ['2026-13-01', 'is not a date in the calendar'],
    ['2026-11-01T25:00Z', 'is not a date and time in the calendar'],
    ['2026-11-01T08:30:00', 'has a time but no time zone'],
    ['2026-11-01T08:30:00+15:00', 'has an offset beyond ±14:00'],
    ['9999999w', 'reaches back before 1970'],
    ['1969-12-31', 'is before 1970'],
  ])('When since is %j, then it is refused: %s', (text, why) => {
    let error: unknown;
    try {
      parseSince(text, now);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LogsArgumentError);
    expect(error).toMatchObject({ code: 'LOGS_INVALID_ARGUMENT', argument: 'since', value: text });
    expect((error as Error).message).toContain(why);
    expect((error as Error).message).toContain('such as 90m, 24h or 7d');
  });

  it('When no clock is given, then durations count back from the current time', () => {
    const before = Date.now();
    const at = parseSince('1h').getTime();
    expect(at).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(at).toBeLessThanOrEqual(Date.now() - 3_600_000);
  });
});
