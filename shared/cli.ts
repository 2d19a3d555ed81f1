/**
 * `tvsync`: the operator's command line. Same powers as the Functions app, through the same
 * composition root (shared/app.ts).
 *
 * Invariant: every value from Entra ID, TeamViewer or an error that reaches the terminal goes
 * through shared/text-safety.ts first (forTerminal for documents, terminalJson for --json,
 * terminalSafe for log lines), so no value can send the terminal an escape sequence or a bidi
 * control, or forge a line of output.
 *
 * Exit codes: 0 all good; 1 the cycle or some users failed (or a check failed); 2 bad settings
 * or usage.
 */
import { createApp, type App } from './app';
import { loadSettings, rawSettings, SettingsError, type Settings } from './config';
import { createLogger, redactText, type Logger, type LogLevel } from './log';
import type { CycleReport, CyclePhase } from './sync/cycle';
import type { StatusDocument } from './status';
import { LeaseHeldError } from './sync/lease';
import { GuardError } from './sync/guard-state';
import { formatProvision } from './provision';
import { serve } from './serve';
import { formatLogs, parseLogFormat, parseSince, type LogFormat } from './logs-format';
import type { ProvisioningLogStatus } from './state/logs';
import { forTerminal, terminalJson, terminalSafe } from './text-safety';
import { memberWords } from './sync/cycle/apply-groups';

/** How long `tvsync sync` waits for a running cycle to finish before giving up (--wait). */
const DEFAULT_WAIT_SECONDS = 30;

const USAGE = `tvsync — provision Microsoft Entra ID users into TeamViewer over SCIM 2.0

Usage:
  tvsync sync [--dry-run] [--json] [--wait S]
                                     run one cycle now (--dry-run: show what would change, write nothing;
                                     --wait: seconds to wait for a cycle already running, default 30)
  tvsync status [--json]             health, last cycle, next run, recent failures
  tvsync test-connection [--json]    check Table Storage, Microsoft Graph and the TeamViewer token
  tvsync provision <upn|objectId> [--dry-run] [--json]
                                     provision one user now: connection test, import, scope evaluation,
                                     matching, action — each step's result and why
  tvsync restart [--full]            forget the delta watermark, retries and the failure quarantine (the next
                                     cycle is a new initial cycle); held-back deactivations stay held until
                                     allowed. --full also matches every user again by userName (no link is
                                     dropped: users who left are still deactivated)
  tvsync unlink <upn|objectId> [--yes]
                                     drop one user's link (a login reused by a new person: USERNAME_CONFLICT);
                                     without --yes, only says what it would do
  tvsync serve [--port N] [--beat S] run the app locally without the Functions host: the heartbeat (every S
                                     seconds, default 60) and the HTTP routes on http://localhost:N/api/…
                                     (default 7071; no keys locally, like func start; 127.0.0.1 only)
  tvsync logs [--user U] [--cycle C] [--status success|failure|skipped|warning|staged]
              [--since 24h] [--format table|json|csv] [--limit N]
                                     provisioning logs: one record per user change, newest first
  tvsync allow-deactivations         apply the deactivations the accidental-deletion guard holds back
                                     (at the next cycle; run "tvsync sync" to apply them now)
  tvsync help                        this text

Settings come from the environment and from local.settings.json (Values) in the current folder;
the environment wins. See README.md for every setting.

Exit codes: 0 all good, 1 the cycle or some users failed, 2 bad settings or usage.`;

export interface CliIo {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

class UsageError extends Error {}

interface Parsed {
  command: string;
  flags: Set<string>;
  values: Map<string, string>;
  positional: string[];
}

/** Commands that take one positional argument, and what it is. */
const POSITIONAL: Readonly<Record<string, string>> = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, {
  provision: 'a user (userPrincipalName or object id)',
  unlink: 'a user (object id, or the userPrincipalName or login of the link)',
}));

/** Options that take a value (the next argument). */
/** Options that take a value (the next argument): those that must be whole numbers, and the rest. */
const NUMBER_OPTIONS = new Set(['--wait', '--port', '--beat', '--limit']);
const VALUE_OPTIONS = new Set([...NUMBER_OPTIONS, '--user', '--cycle', '--status', '--since', '--format']);

const COMMAND_FLAGS: Record<string, string[]> = {
  sync: ['--dry-run', '--json', '--wait'],
  status: ['--json'],
  'test-connection': ['--json'],
  'allow-deactivations': [],
  provision: ['--dry-run', '--json'],
  serve: ['--port', '--beat'],
  logs: ['--user', '--cycle', '--status', '--since', '--format', '--limit'],
  restart: ['--full'],
  unlink: ['--yes', '--json'],
  help: [],
};

function parseArgs(argv: string[]): Parsed {
  const [command = 'help', ...rest] = argv;
  const name = command === '--help' || command === '-h' ? 'help' : command;
  // Own keys only: "tvsync constructor" is an unknown command, not Object's constructor.
  const allowed = Object.hasOwn(COMMAND_FLAGS, name) ? COMMAND_FLAGS[name] : undefined;
  if (!allowed) throw new UsageError(`unknown command "${command}"`);
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--help' || arg === '-h') return { command: 'help', flags, values, positional };
    if (!arg.startsWith('-') && POSITIONAL[name] && positional.length === 0) {
      positional.push(arg);
      continue;
    }
    if (!allowed.includes(arg)) throw new UsageError(`"${arg}" is not an option of "tvsync ${name}"`);
    if (VALUE_OPTIONS.has(arg)) {
      const value = rest[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
      if (NUMBER_OPTIONS.has(arg) && !/^\d+$/.test(value)) throw new UsageError(`${arg} needs a whole number`);
      values.set(arg, value);
    } else {
      flags.add(arg);
    }
  }
  if (POSITIONAL[name] && positional.length === 0) throw new UsageError(`"tvsync ${name}" needs ${POSITIONAL[name]}`);
  return { command: name, flags, values, positional };
}

/** Log lines on stderr. A command hides info lines (its output says what happened); serve shows them. */
function stderrLogger(io: CliIo, level: LogLevel, options: { showInfo?: boolean } = {}): Logger {
  return createLogger((lvl, message) => {
    io.err.write(`${lvl === 'error' ? 'error' : lvl === 'warn' ? 'warning' : lvl}: ${terminalSafe(message)}\n`);
  }, level === 'info' && !options.showInfo ? 'warn' : level);
}

/** Loads settings the way the Functions host does, and exposes them to DefaultAzureCredential. */
function settingsFor(io: CliIo): Settings {
  const raw = rawSettings({ env: io.env, localSettingsDir: io.cwd });
  for (const [key, value] of Object.entries(raw.values)) {
    if (value !== undefined && io.env[key] === undefined) io.env[key] = value;
  }
  return loadSettings({ env: io.env, localSettingsDir: io.cwd });
}

export async function main(argv: string[], io: CliIo = { out: process.stdout, err: process.stderr, env: process.env, cwd: process.cwd() }): Promise<number> {
  try {
    return await command(argv, io);
  } catch (err) {
    // Whatever a command did not handle: its message only, redacted and terminal-safe.
    io.err.write(`${terminalSafe(redactText(err instanceof Error ? err.message : String(err)))}\n`);
    return 1;
  }
}

async function command(argv: string[], io: CliIo): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    io.err.write(`tvsync: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (parsed.command === 'help') {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  let settings: Settings;
  try {
    settings = settingsFor(io);
  } catch (err) {
    if (err instanceof SettingsError) {
      io.err.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = stderrLogger(io, settings.logLevel);
  let app: App;
  try {
    app = await createApp(settings, { logger });
  } catch (err) {
    io.err.write(`tvsync: could not start: ${terminalSafe((err as Error).message)}\n`);
    return 1;
  }
  const json = parsed.flags.has('--json');
  switch (parsed.command) {
    case 'sync':
      return sync(app, io, parsed.flags.has('--dry-run'), json, Number(parsed.values.get('--wait') ?? DEFAULT_WAIT_SECONDS));
    case 'status':
      return status(app, io, json);
    case 'test-connection':
      return testConnection(app, io, json);
    case 'allow-deactivations':
      return allowDeactivations(app, io);
    case 'provision': {
      const result = await app.provision(parsed.positional[0], { dryRun: parsed.flags.has('--dry-run') });
      io.out.write(json ? `${terminalJson(result)}\n` : formatProvision(forTerminal(result)));
      return result.ok ? 0 : 1;
    }
    case 'logs': {
      let since: Date | undefined;
      let format: LogFormat = 'table';
      try {
        since = parsed.values.has('--since') ? parseSince(parsed.values.get('--since')!) : undefined;
        format = parseLogFormat(parsed.values.get('--format') ?? 'table');
      } catch (err) {
        io.err.write(`tvsync: ${(err as Error).message}\n`);
        return 2;
      }
      const status = parsed.values.get('--status') as ProvisioningLogStatus | undefined;
      try {
        const { records } = await app.logs.query({
          user: parsed.values.get('--user'),
          cycleId: parsed.values.get('--cycle'),
          status,
          since,
          limit: Number(parsed.values.get('--limit') ?? 100),
        });
        io.out.write(formatLogs(format === 'json' ? records : forTerminal(records), format));
        return 0;
      } catch (err) {
        if ((err as { code?: string }).code !== 'STATE_INVALID_ARGUMENT') throw err;
        io.err.write(`tvsync: ${(err as Error).message}\n`);
        return 2;
      }
    }
    case 'serve': {
      const server = await serve({ port: Number(parsed.values.get('--port') ?? 7071), beatSeconds: Number(parsed.values.get('--beat') ?? 60), logger: stderrLogger(io, settings.logLevel, { showInfo: true }) });
      io.out.write(`tvsync serve: status page ${server.url}/status — Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
      return 0;
    }
    case 'restart':
      return restart(app, io, parsed.flags.has('--full'));
    case 'unlink':
      return unlink(app, io, parsed.positional[0], parsed.flags.has('--yes'), json);
    default:
      return 2;
  }
}

async function sync(app: App, io: CliIo, dryRun: boolean, json: boolean, waitSeconds: number): Promise<number> {
  const bar = io.err.isTTY && !json ? progressBar(io) : null;
  let report: CycleReport;
  try {
    report = await app.runCycle({ dryRun, trigger: 'cli', onProgress: bar ?? undefined, waitMs: waitSeconds * 1000 });
  } catch (err) {
    if (!(err instanceof LeaseHeldError)) throw err;
    io.err.write(`tvsync: not run: ${terminalSafe(err.message)}. Nothing was done; try again when it has finished (tvsync status shows progress).\n`);
    return 1;
  }
  bar?.({ phase: 'finished', done: 0, total: 0 });
  if (json) {
    await writeReportJson(io.out, report);
  } else {
    io.out.write(formatReport(forTerminal(printedPart(report))));
  }
  if (report.result === 'failed') return 1;
  return report.counts.failed > 0 || report.counts.staged > 0 || report.counts.groups.failed > 0 || report.counts.groups.staged > 0 ? 1 : 0;
}

function progressBar(io: CliIo) {
  let last = '';
  return ({ phase, done, total }: { phase: CyclePhase; done: number; total: number }) => {
    if (phase === 'finished') {
      if (last) io.err.write('\r\x1b[2K');
      last = '';
      return;
    }
    const width = 30;
    const share = total > 0 ? done / total : 0;
    const filled = Math.round(share * width);
    const line = phase === 'applying' && total > 0
      ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${phase}`
      : `${phase}…`;
    if (line !== last) io.err.write(`\r\x1b[2K${line}`);
    last = line;
  };
}

const pad = (label: string, width = 11) => label.padEnd(width);

/**
 * The cycle report as --json, written a slice of actions at a time, each slice only once the
 * stream took the one before (stdout to a pipe buffers what its reader has not taken yet): a cycle
 * of 100,000 users never holds its report as one string, nor as a queue of buffers behind a slow
 * reader. Parses to the same document as terminalJson(report); only the place of "actions" among
 * the keys differs.
 */
export async function writeReportJson(out: NodeJS.WritableStream, report: CycleReport, slice = 500): Promise<void> {
  const gone = () => (out as { destroyed?: boolean }).destroyed === true;
  const write = (text: string) => (gone() || out.write(text) ? Promise.resolve() : drained(out));
  const { actions, ...rest } = report;
  const head = terminalJson(rest);
  await write(`${head.slice(0, head.lastIndexOf('}')).trimEnd()},\n  "actions": [`);
  for (let start = 0; start < actions.length; start += slice) {
    const items = actions.slice(start, start + slice).map((a) => terminalJson(a).replace(/\n/g, '\n    '));
    await write(`${start === 0 ? '' : ','}\n    ${items.join(',\n    ')}`);
  }
  await write(`${actions.length ? '\n  ' : ''}]\n}\n`);
}

/** Resolves when the stream wants more, or can take nothing more (closed, failed): never hangs. */
function drained(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    if ((out as { destroyed?: boolean }).destroyed === true) {
      resolve();
      return;
    }
    const done = () => {
      out.removeListener('drain', done);
      out.removeListener('close', done);
      out.removeListener('error', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    out.once('error', done);
  });
}

/**
 * What formatReport prints of the actions, and nothing more, so making a 100,000-user report
 * terminal-safe copies a few dozen actions. Keeps formatReport's totals: they count these lists.
 */
export function printedPart(report: CycleReport): CycleReport {
  const changed = report.actions.filter((a) => a.status === (report.dryRun ? 'planned' : 'success') && a.kind !== 'unlink');
  const staged = report.actions.filter((a) => a.status === 'staged');
  const problems = report.actions.filter((a) => a.status === 'failure' || a.status === 'warning');
  if (changed.length + staged.length + problems.length === report.actions.length) return report;
  return { ...report, actions: [...changed, ...staged, ...problems] };
}

export function formatReport(report: CycleReport): string {
  const lines: string[] = [];
  const title = report.dryRun ? 'Dry run (nothing written)' : `Cycle ${report.cycleId}`;
  lines.push(`${title} — ${report.kind}`);
  lines.push(`  ${pad('read')}${report.imported} users from Entra ID`);
  const c = report.counts;
  for (const [label, value] of [
    ['created', c.created], ['linked', c.linked], ['updated', c.updated], ['enabled', c.enabled], ['disabled', c.disabled],
    ['unchanged', c.unchanged], ['skipped', c.skipped], ['failed', c.failed], ['staged', c.staged], ['drift', c.drift],
  ] as const) {
    lines.push(`  ${pad(label)}${String(value).padStart(6)}`);
  }
  const changed = report.actions.filter((a) => a.status === (report.dryRun ? 'planned' : 'success') && a.kind !== 'unlink');
  if (changed.length > 0) {
    lines.push('', `${changed.length} change${changed.length === 1 ? '' : 's'} ${report.dryRun ? 'would be made' : 'made'}:`);
    for (const a of changed.slice(0, 15)) {
      const what = a.kind === 'create'
        ? JSON.stringify(a.changes.find((ch) => ch.attribute === 'displayName')?.new ?? '')
        : a.changes.map((ch) => `${ch.attribute}: ${JSON.stringify(ch.old)} → ${JSON.stringify(ch.new)}`).join(', ');
      lines.push(`  ${pad(a.kind, 8)} ${a.userPrincipalName}${a.teamViewerId ? ` (${a.teamViewerId})` : ''}${what ? `  ${what}` : ''}${a.reason ? `  — ${a.reason}` : ''}`);
    }
    if (changed.length > 15) lines.push(`  … and ${changed.length - 15} more (use --json for all)`);
  }
  const staged = report.actions.filter((a) => a.status === 'staged');
  if (staged.length > 0) {
    lines.push('', `${staged.length} deactivation(s) held back by the accidental-deletion guard — ${staged[0].reason ?? ''}`, 'Check them, then run "tvsync allow-deactivations" to apply them.');
    for (const a of staged.slice(0, 10)) lines.push(`  staged  ${a.userPrincipalName}${a.teamViewerId ? ` (${a.teamViewerId})` : ''}`);
    if (staged.length > 10) lines.push(`  … and ${staged.length - 10} more (use --json for all)`);
  }
  const problems = report.actions.filter((a) => a.status === 'failure' || a.status === 'warning');
  if (problems.length > 0) {
    lines.push('', 'Needs attention:');
    for (const a of problems.slice(0, 20)) {
      lines.push(`  ${a.status === 'failure' ? 'FAILED ' : 'warning'} ${a.kind} ${a.userPrincipalName}: ${a.error?.message ?? a.reason ?? ''}`);
    }
    if (problems.length > 20) lines.push(`  … and ${problems.length - 20} more (use --json for all)`);
  }
  if (report.groupActions) lines.push(...formatGroups(report));
  const seconds = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
  lines.push('', `Result: ${report.result}${report.error ? ` — ${report.error.message}` : ''} (${seconds.toFixed(1)} s)`);
  return `${lines.join('\n')}\n`;
}

/** The user groups' part of a cycle report (GROUP_PROVISIONING=assigned): counts, changes, held, failed, warnings. */
function formatGroups(report: CycleReport): string[] {
  const lines = ['', 'User groups'];
  const g = report.counts.groups;
  for (const [label, value] of [
    ['created', g.created], ['linked', g.linked], ['updated', g.updated], ['deleted', g.deleted], ['unlinked', g.unlinked],
    ['members +', g.membersAdded], ['members -', g.membersRemoved], ['staged', g.staged], ['failed', g.failed],
  ] as const) {
    lines.push(`  ${pad(label)}${String(value).padStart(6)}`);
  }
  const groups = report.groupActions ?? [];
  const shown = report.dryRun ? 'planned' : 'success';
  const changes = groups.flatMap((r) => r.steps.filter((s) => s.status === shown && s.kind !== 'group-record').map((s) => ({ r, s })));
  if (changes.length > 0) {
    lines.push('', `${changes.length} group change${changes.length === 1 ? '' : 's'} ${report.dryRun ? 'would be made' : 'made'}:`);
    for (const { r, s } of changes.slice(0, 20)) {
      const id = s.teamViewerGroupId ?? r.teamViewerGroupId;
      const members = s.members ? `  ${s.kind === 'member-remove' ? '-' : '+'}${memberWords(s.members)}` : '';
      const what = s.kind === 'group-create' || s.kind === 'group-link' ? '' : s.changes.map((c) => `${c.attribute}: ${JSON.stringify(c.old)} → ${JSON.stringify(c.new)}`).join(', ');
      const why = s.kind === 'group-delete' || s.kind === 'group-unlink' || s.kind === 'group-link' ? s.reason : undefined;
      lines.push(`  ${s.kind.padEnd(13)} ${JSON.stringify(r.name)}${id ? ` (${id})` : ''}${members}${what && !members ? `  ${what}` : ''}${why ? `  — ${why}` : ''}`);
    }
    if (changes.length > 20) lines.push(`  … and ${changes.length - 20} more (use --json for all)`);
  }
  const staged = groups.filter((r) => r.status === 'staged');
  if (staged.length > 0) {
    lines.push('', `${staged.length} user group(s) going held back by the accidental-deletion guard, with the deactivations — run "tvsync allow-deactivations" to apply them:`);
    for (const r of staged.slice(0, 10)) lines.push(`  staged  ${JSON.stringify(r.name)}${r.teamViewerGroupId ? ` (${r.teamViewerGroupId})` : ''}: ${r.steps.map((s) => s.kind).join(', ')}`);
  }
  const failed = groups.filter((r) => r.status === 'failure');
  if (failed.length > 0) {
    lines.push('', 'User groups that need attention:');
    for (const r of failed.slice(0, 20)) lines.push(`  FAILED  ${r.kind} ${r.name ? JSON.stringify(r.name) : '(every group)'}: ${r.error?.code ?? ''} — ${r.error?.message ?? r.reason ?? ''}`);
  }
  for (const w of report.groupWarnings ?? []) lines.push(`  warning ${w}`);
  return lines;
}

async function status(app: App, io: CliIo, json: boolean): Promise<number> {
  const doc = await app.status();
  io.out.write(json ? `${terminalJson(doc)}\n` : formatStatus(forTerminal(doc)));
  return 0;
}

export function formatStatus(doc: StatusDocument): string {
  const lines = [`Health: ${doc.health.toUpperCase()} — ${doc.healthReason}`];
  if (doc.currentCycle) {
    const c = doc.currentCycle;
    lines.push(`Running: ${c.id} (${c.kind}) started ${c.startedAt}, ${c.done}/${c.total} done`);
  }
  if (doc.lastCycle) {
    const l = doc.lastCycle;
    lines.push(`Last cycle: ${l.id} (${l.kind}) ${l.result}, ${l.startedAt} → ${l.finishedAt ?? '…'}${l.durationSeconds !== null ? ` (${l.durationSeconds} s)` : ''}`);
    const c = l.counts;
    lines.push(`  read ${l.imported}; created ${c.created}, linked ${c.linked}, updated ${c.updated}, enabled ${c.enabled}, disabled ${c.disabled}, unchanged ${c.unchanged}, skipped ${c.skipped}, failed ${c.failed}${c.drift ? `; ${c.drift} of the changes put back hand edits in TeamViewer` : ''}`);
    if (l.error) lines.push(`  error ${l.error.code}: ${l.error.message}`);
  }
  if (doc.lastCycle?.counts.groups && doc.groups) {
    const g = doc.lastCycle.counts.groups;
    lines.push(`  user groups: created ${g.created}, linked ${g.linked}, updated ${g.updated}, deleted ${g.deleted}, unlinked ${g.unlinked}, members +${g.membersAdded} -${g.membersRemoved}, staged ${g.staged}, failed ${g.failed}`);
  }
  if (doc.nextRunAt) lines.push(`Next run: ${doc.nextRunAt} (every ${doc.intervalMinutes} min)`);
  if (doc.stagedDeactivations) {
    const st = doc.stagedDeactivations;
    lines.push(`Staged deactivations: ${st.count} held back since ${st.since} (${st.reason})${st.groups ? ` — ${st.groups} of them user groups going` : ''}, ${st.newlyHeld} newly held by the last cycle${st.allowed ? ' — allowed, the next cycle applies exactly these' : ' — run "tvsync allow-deactivations" to apply exactly these'}`);
    for (const u of st.sample.slice(0, 10)) lines.push(`  ${terminalSafe(`${u.userPrincipalName}: ${u.reason}`)}`);
    if (st.count > 10) lines.push(`  … and ${st.count - 10} more: tvsync logs --status staged --cycle ${st.cycleId}`);
  }
  if (doc.reenabledLeavers.length > 0) {
    lines.push(`Re-enabled by hand in TeamViewer (users who should not be active): ${doc.reenabledLeavers.length}`);
    for (const u of doc.reenabledLeavers.slice(0, 10)) lines.push(`  ${terminalSafe(`${u.userPrincipalName} (TeamViewer ${u.teamViewerId ?? '—'}), found ${u.foundAt}: ${u.outcome}`)}`);
  }
  if (doc.allowance) {
    const a = doc.allowance;
    lines.push(a.pending
      ? `Allowed: ${a.count} deactivation(s) by ${a.by} at ${a.grantedAt}; the next cycle applies exactly those`
      : `Last allowance: ${a.count} deactivation(s) allowed by ${a.by} at ${a.grantedAt}; cycle ${a.cycleId} applied ${a.applied}`);
  }
  if (doc.quarantine) lines.push(`Quarantine: ${doc.quarantine.reason} since ${doc.quarantine.since}${doc.quarantine.nextAttemptAt ? `, next attempt ${doc.quarantine.nextAttemptAt}` : ''} — ${doc.quarantine.howToRelease}`);
  if (doc.escrows.count > 0) {
    lines.push(`Escrowed users (${doc.escrows.count}), retried with a growing back-off:`);
    for (const e of doc.escrows.users.slice(0, 10)) lines.push(`  ${e.userPrincipalName} (${e.action}): ${e.code} — failed ${e.attempts} time(s), next attempt ${e.nextAttemptAt}`);
  }
  if (doc.recentFailures.length > 0) {
    lines.push('Recent failures:');
    for (const f of doc.recentFailures.slice(0, 20)) lines.push(`  ${f.userPrincipalName} (${f.action}): ${f.code} — ${f.message}`);
  }
  if (doc.groups) lines.push(...formatGroupsStatus(doc.groups));
  return `${lines.join('\n')}\n`;
}

function formatGroupsStatus(groups: NonNullable<StatusDocument['groups']>): string[] {
  const lines = [`User groups: ${groups.linked} linked${groups.prefix ? ` (names start with ${JSON.stringify(groups.prefix)})` : ''}`];
  for (const g of groups.list.slice(0, 20)) {
    lines.push(`  ${JSON.stringify(g.name)} — TeamViewer user group ${g.teamViewerGroupId ?? '(being created)'}, ${g.origin}${g.role ? `, role ${JSON.stringify(g.role)}` : ''}${g.members !== null ? `, ${g.members} member(s)` : ''}`);
  }
  if (groups.list.length > 20) lines.push(`  … and ${groups.list.length - 20} more (tvsync status --json)`);
  if (groups.heldDeletions) lines.push(`  ${groups.heldDeletions.count} user group(s) going held back with the deactivations: ${groups.heldDeletions.sample.map((h) => JSON.stringify(h.name)).join(', ')}`);
  for (const f of groups.failures.slice(0, 20)) lines.push(`  FAILED ${f.action} ${f.name ? JSON.stringify(f.name) : '(every group)'}: ${f.code} — ${f.message}`);
  for (const w of groups.warnings) lines.push(`  warning ${w}`);
  return lines;
}

/** Who is acting, for the audit lines (no secrets: a login name). */
const operator = (io: CliIo) => `${io.env.USER ?? io.env.USERNAME ?? 'an operator'} (tvsync CLI)`;

async function allowDeactivations(app: App, io: CliIo): Promise<number> {
  let released: Awaited<ReturnType<App['allowDeactivations']>>;
  try {
    released = forTerminal(await app.allowDeactivations(operator(io)));
  } catch (err) {
    if (!(err instanceof GuardError)) throw err;
    io.err.write(`tvsync: nothing allowed: ${terminalSafe(err.message)}\n`);
    return 1;
  }
  if (!released) {
    io.out.write('Nothing is held back: no deactivations are staged.\n');
    return 0;
  }
  io.out.write(`Allowed: ${released.count} deactivation(s)${released.groups ? ` (${released.groups} of them user groups going)` : ''} held back since ${released.since} (${released.reason}) will be applied by the next cycle.\n`);
  for (const u of released.sample) io.out.write(`  ${terminalSafe(`${u.userPrincipalName}${u.teamViewerId ? ` (${u.teamViewerId})` : ''}: ${u.reason}`)}\n`);
  if (released.count > released.sample.length) io.out.write(`  … and ${released.count - released.sample.length} more (every one: tvsync logs --status staged --cycle ${released.cycleId})\n`);
  io.out.write('Only these are released: any other deactivation the next cycle plans is judged by the guard again.\nRun "tvsync sync" to apply them now.\n');
  return 0;
}

async function restart(app: App, io: CliIo, full: boolean): Promise<number> {
  try {
    const { rematching, stagedKept } = await app.restart({ full, by: operator(io) });
    const lines = ['Restarted: the delta watermark, retries (escrows) and the failure quarantine are cleared; the next cycle is a new initial cycle.'];
    if (full) lines.push(`${rematching} link(s) will be matched again by userName as their users are read; none was dropped, so users who are no longer assigned are still deactivated (under the accidental-deletion guard).`);
    if (stagedKept) lines.push(`${stagedKept} held-back deactivation(s) stay held: check them with "tvsync status", then run "tvsync allow-deactivations".`);
    io.out.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof LeaseHeldError)) throw err;
    io.err.write(`tvsync: not restarted: ${terminalSafe(err.message)}. Try again when it has finished.\n`);
    return 1;
  }
}

async function unlink(app: App, io: CliIo, query: string, confirm: boolean, json: boolean): Promise<number> {
  let result: Awaited<ReturnType<App['unlink']>>;
  try {
    result = await app.unlink(query, { by: operator(io), confirm });
  } catch (err) {
    if (!(err instanceof LeaseHeldError)) throw err;
    io.err.write(`tvsync: not unlinked: ${terminalSafe(err.message)}. Try again when it has finished.\n`);
    return 1;
  }
  if (json) {
    io.out.write(`${terminalJson(result)}\n`);
  } else {
    // Logins come from the directory: no control character reaches the terminal.
    for (const line of result.message.split('\n')) io.out.write(`${terminalSafe(line)}\n`);
    for (const c of result.candidates) io.out.write(`  ${terminalSafe(`${c.entraId}  ${c.userPrincipalName} (login ${c.userName}, TeamViewer user ${c.teamViewerId ?? 'none yet'})`)}\n`);
  }
  // Dropped, or found and shown (without --yes): 0; nothing or several found, or gone meanwhile: 1.
  return result.dropped || (!confirm && result.link) ? 0 : 1;
}

async function testConnection(app: App, io: CliIo, json: boolean): Promise<number> {
  const checks = await app.testConnection();
  if (json) io.out.write(`${terminalJson({ ok: checks.every((c) => c.ok), checks })}\n`);
  else for (const c of forTerminal(checks)) io.out.write(`${c.ok ? 'ok    ' : 'FAILED'} ${pad(c.target, 16)} ${c.detail}\n`);
  return checks.every((c) => c.ok) ? 0 : 1;
}
