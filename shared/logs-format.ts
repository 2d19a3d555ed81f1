/**
 * Provisioning log records as text: an aligned table for a terminal, JSON, CSV for a spreadsheet;
 * and the `--since` / `?since=` parser shared by `tvsync logs` and GET /api/logs.
 *
 * Invariants:
 * - Table output holds no control characters (shared/text-safety.ts): escape sequences are
 *   removed, other controls shown as \u escapes, so a displayName carrying terminal escape
 *   sequences or newlines cannot repaint the screen or forge rows.
 * - CSV is RFC 4180 (CRLF, a header row, quoted when needed) and no spreadsheet reads a formula
 *   out of it: wherever a cell can start — at the start of the value, after a line feed or
 *   carriage return inside it (an importer that splits lines first), and after a `;` (locales
 *   whose list separator is `;` split our cells there) — a formula trigger (= + - @, their
 *   full-width forms, TAB or CR, even after spaces) gets a ' in front, so it shows as text.
 * - JSON is the records exactly: JSON.parse of the output deep-equals the input (characters a
 *   terminal acts on are written as \u escapes).
 */
import type { ModifiedValue, ProvisioningLogRecord } from './state/logs';
import { terminalJson, terminalSafe } from './text-safety';

export const LOG_FORMATS = ['table', 'json', 'csv'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A --format, --since (or ?format=, ?since=) value that cannot be used; `argument` says which. */
export class LogsArgumentError extends Error {
  readonly code = 'LOGS_INVALID_ARGUMENT';
  constructor(
    readonly argument: 'since' | 'format',
    readonly value: string,
    message: string,
  ) {
    super(message);
    this.name = 'LogsArgumentError';
  }
}

export function parseLogFormat(text: string): LogFormat {
  const format = text.trim().toLowerCase();
  if ((LOG_FORMATS as readonly string[]).includes(format)) return format as LogFormat;
  throw new LogsArgumentError('format', text, `format must be one of ${LOG_FORMATS.join(', ')} (got ${JSON.stringify(text)})`);
}

export function formatLogs(records: readonly ProvisioningLogRecord[], format: LogFormat): string {
  switch (format) {
    case 'json':
      return `${terminalJson(records)}\n`;
    case 'csv':
      return formatCsv(records);
    case 'table':
      return formatTable(records);
    default:
      throw new LogsArgumentError('format', String(format), `format must be one of ${LOG_FORMATS.join(', ')} (got ${JSON.stringify(format)})`);
  }
}

/** `displayName: "A" → "B"; active: true → false`. */
export function summarizeChanges(properties: ProvisioningLogRecord['modifiedProperties']): string {
  return properties.map((p) => `${p.name}: ${showValue(p.old)} → ${showValue(p.new)}`).join('; ');
}

function showValue(value: ModifiedValue): string {
  if (value === null) return '(none)';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function reasonOf(record: ProvisioningLogRecord): string {
  if (record.errorCode && record.reason) return `${record.errorCode}: ${record.reason}`;
  return record.errorCode ?? record.reason ?? '';
}

// ---- table ----

const CHANGES_WIDTH = 80;
const TABLE_HEADER = ['TIME', 'ACTION', 'STATUS', 'USER', 'TEAMVIEWER ID', 'CHANGES', 'REASON'];

function formatTable(records: readonly ProvisioningLogRecord[]): string {
  if (records.length === 0) return '(no records)\n';
  const rows = [
    TABLE_HEADER,
    ...records.map((r) => [
      shortTime(r.time),
      r.action,
      r.status,
      r.userPrincipalName,
      r.teamViewerId ?? '-',
      clip(summarizeChanges(r.modifiedProperties), CHANGES_WIDTH) || '-',
      reasonOf(r),
    ]),
  ].map((cells) => cells.map(terminalSafe));
  const widths = TABLE_HEADER.map((_, column) => Math.max(...rows.map((cells) => width(cells[column]!))));
  return rows
    .map((cells) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell + ' '.repeat(widths[column]! - width(cell)))).join('  ').trimEnd())
    .join('\n')
    .concat('\n');
}

/** 2026-11-28T21:01:33.123Z → 2026-11-28 21:01:33Z; anything else is shown as stored. */
function shortTime(time: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(time);
  return m ? `${m[1]} ${m[2]}Z` : time;
}

/** Columns a cell takes, counted in code points (what a terminal advances for most text). */
function width(text: string): number {
  return [...text].length;
}

function clip(text: string, max: number): string {
  const points = [...text];
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

// ---- CSV ----

const CSV_COLUMNS: Array<[string, (r: ProvisioningLogRecord) => string | number | null]> = [
  ['time', (r) => r.time],
  ['id', (r) => r.id],
  ['cycleId', (r) => r.cycleId],
  ['changeId', (r) => r.changeId],
  ['action', (r) => r.action],
  ['status', (r) => r.status],
  ['entraId', (r) => r.entraId],
  ['userPrincipalName', (r) => r.userPrincipalName],
  ['teamViewerId', (r) => r.teamViewerId],
  ['modifiedProperties', (r) => summarizeChanges(r.modifiedProperties)],
  ['errorCode', (r) => r.errorCode],
  ['reason', (r) => r.reason],
  ['durationMs', (r) => r.durationMs],
];

function formatCsv(records: readonly ProvisioningLogRecord[]): string {
  const lines = [CSV_COLUMNS.map(([name]) => csvCell(name))];
  for (const record of records) lines.push(CSV_COLUMNS.map(([, read]) => csvCell(read(record))));
  return lines.map((cells) => cells.join(',')).join('\r\n').concat('\r\n');
}

/**
 * A formula trigger where a cell may start: at the start, or after LF, CR or `;` (looked behind,
 * so a CR that is itself a trigger still starts the next cell); spaces before the trigger do not
 * help (some importers trim them). Linear: a one-character look-behind, no nested quantifier.
 */
const FORMULA_START = /(?<=^|[\n\r;])[ ]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]/g;

export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value).replace(FORMULA_START, "'$&");
  return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

// ---- since ----

const DURATION = /^(\d{1,7})\s*([mhdw])$/i;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * `90m`, `24h`, `7d` (or `2w`) before `now`; an ISO date (`2026-11-28`, midnight UTC); or an ISO
 * date and time with Z or an offset. A time without a zone is refused rather than guessed.
 */
export function parseSince(text: string, now: Date = new Date()): Date {
  const value = typeof text === 'string' ? text.trim() : '';
  const fail = (why: string): never => {
    throw new LogsArgumentError(
      'since',
      String(text),
      `since ${why}: use a duration such as 90m, 24h or 7d, or an ISO date such as 2026-11-28 or 2026-11-28T09:00:00Z (got ${JSON.stringify(text)})`,
    );
  };
  const duration = DURATION.exec(value);
  if (duration) {
    const at = new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2]!.toLowerCase()]!);
    return at.getTime() >= 0 ? at : fail('reaches back before 1970');
  }
  const date = DATE_ONLY.exec(value);
  if (date) return after1970(utc(Number(date[1]), Number(date[2]), Number(date[3]), 0, 0, 0, 0) ?? fail('is not a date in the calendar'));
  const dateTime = DATE_TIME.exec(value);
  if (dateTime) {
    const [, y, mo, d, h, mi, s, fraction, zone] = dateTime;
    if (!zone) return fail('has a time but no time zone (add Z for UTC, or an offset such as +01:00)');
    const ms = fraction ? Number(fraction.slice(0, 3).padEnd(3, '0')) : 0;
    const local = utc(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s ?? 0), ms) ?? fail('is not a date and time in the calendar');
    const offset = offsetMs(zone) ?? fail('has an offset beyond ±14:00');
    return after1970(new Date(local.getTime() - offset));
  }
  return fail('is not understood');

  function after1970(at: Date): Date {
    return at.getTime() >= 0 ? at : fail('is before 1970');
  }
}

/** The date, or null when a component is out of range (Date.UTC would roll 2026-02-31 into March). */
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): Date | null {
  if (hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
  const ok = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  return ok ? date : null;
}

function offsetMs(zone: string): number | null {
  if (zone.toUpperCase() === 'Z') return 0;
  const digits = zone.replace(':', '');
  const hours = Number(digits.slice(1, 3));
  const minutes = Number(digits.slice(3, 5));
  if (hours * 60 + minutes > 14 * 60 || minutes > 59) return null;
  return (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes) * 60_000;
}
