/**
 * The failure emails: what tvsync tells a person when it needs one. Pure: a `Notification` in,
 * subject + plain text + HTML out, no clock and no I/O (durations are measured to `at`).
 *
 * Invariant: no value reaches an email unescaped. Every template builds a `Doc` of plain strings;
 * only the two renderers below turn it into text, and they escape every string they emit (HTML
 * escaping in the HTML body, control characters removed in the plain body, one line in the
 * subject). Values also pass through `redactText`, so a registered secret that found its way into
 * an error message is masked, and the status link loses any key in its query string.
 */
import { redactText } from '../log';
import { escapeHtml, headerSafe, plainTextSafe } from './escape';

/** Why tvsync is quarantined. Known codes get an explanation; any other code is shown as it is. */
export type QuarantineReason = 'TooManyDeactivations' | 'SuspiciousDrop' | 'Unauthorized' | 'FailureRate' | (string & {});

interface NotificationBase {
  /** When this happened (ISO 8601); durations in the email are measured to it. */
  at: string;
  /** The status page; the notifier fills it in from its settings when absent. */
  statusUrl?: string;
  /** Which installation this is (e.g. the Function App name), for people who get mail from several. */
  instance?: string;
}

export interface QuarantineEnteredNotification extends NotificationBase {
  kind: 'quarantine-entered';
  reason: QuarantineReason;
  /** What happened, in the words of the error that caused it (e.g. TeamViewer's 401 message). */
  detail?: string;
  /** When the quarantine began. */
  since: string;
  /** The next attempt, or null when tvsync has stopped trying (after 28 days). */
  nextAttemptAt: string | null;
}

export interface QuarantineReasonChangedNotification extends NotificationBase {
  kind: 'quarantine-reason-changed';
  previousReason: QuarantineReason;
  reason: QuarantineReason;
  detail?: string;
  since: string;
  nextAttemptAt: string | null;
}

export interface StagedDeactivation {
  userPrincipalName: string;
  displayName?: string | null;
  /** Why this user would be deactivated (e.g. "unassigned", "disabled in Entra"). */
  reason: string;
  /** A user group going (deleted, or emptied and unlinked), not a user: userPrincipalName is its name. */
  group?: boolean;
}

export interface DeactivationsStagedNotification extends NotificationBase {
  kind: 'deactivations-staged';
  /** How many deactivations are held back. */
  count: number;
  /** DEACTIVATION_THRESHOLD as configured: a count (500) or a share ("15%"). */
  threshold: number | string;
  /** Why they were held: over the threshold (default), or Graph returned suspiciously few users. */
  cause?: 'threshold' | 'suspicious-drop';
  /** Some of the users (user groups first); only the first 10 are shown. */
  sample: StagedDeactivation[];
  /** Of `count`, how many are user groups going (GROUP_PROVISIONING=assigned). */
  groups?: number;
  /** The guard's own words (e.g. how many users the read returned against the last good one). */
  detail?: string;
  /**
   * An allowance applied by the cycle that held these (or before them): how many deactivations it
   * released and applied. The held ones were not part of it: they are newly held.
   */
  allowed?: { count: number; applied: number; by: string; grantedAt: string };
}

export interface NoSuccessfulCycleNotification extends NotificationBase {
  kind: 'no-successful-cycle';
  /** The last successful cycle, or null if none ever succeeded. */
  lastSuccessAt: string | null;
  /** Since when nothing succeeded: the last success, or the first attempt when there was none. */
  since: string;
  /** How many intervals went by without a success (ALERT_AFTER_MISSED_CYCLES or more). */
  missedCycles?: number;
  lastError: { code: string; message: string } | null;
}

export interface RecoveredNotification extends NotificationBase {
  kind: 'recovered';
  /** What ended: a quarantine, or a run of cycles that did not succeed. */
  ended: 'quarantine' | 'outage';
  /** The quarantine reason or the last error code while it lasted. */
  reason?: string;
  /** When the problem began; `at` is when it ended. */
  since: string;
}

export type Notification =
  | QuarantineEnteredNotification
  | QuarantineReasonChangedNotification
  | DeactivationsStagedNotification
  | NoSuccessfulCycleNotification
  | RecoveredNotification;

export type NotificationKind = Notification['kind'];

export interface RenderedEmail {
  subject: string;
  plainText: string;
  html: string;
}

export const SAMPLE_LIMIT = 10;
export const RELEASE_COMMAND = 'tvsync allow-deactivations';
export const RESTART_COMMAND = 'tvsync restart';

/** An email's content as plain strings; the renderers do all escaping. */
interface Doc {
  subject: string;
  title: string;
  paragraphs: string[];
  facts: Array<[label: string, value: string]>;
  list?: { caption: string; items: string[] };
  action?: { text: string; command?: string };
}

export function renderNotification(n: Notification): RenderedEmail {
  const doc = build(n);
  const prefix = n.instance ? `[tvsync ${n.instance}]` : '[tvsync]';
  const statusUrl = safeStatusUrl(n.statusUrl);
  const footer = `Sent by tvsync${n.instance ? ` (${n.instance})` : ''} to the addresses in NOTIFY_EMAIL_TO. `
    + 'You get one email per problem and one when it is over, not one per run.';
  return {
    subject: headerSafe(clean(`${prefix} ${doc.subject}`)),
    plainText: renderPlain(doc, statusUrl, footer),
    html: renderHtml(doc, statusUrl, footer),
  };
}

function build(n: Notification): Doc {
  switch (n.kind) {
    case 'quarantine-entered':
      return {
        subject: `Quarantined: ${n.reason}`,
        title: 'tvsync is in quarantine',
        paragraphs: [
          `tvsync has stopped provisioning users into TeamViewer (reason: ${n.reason}).`,
          explainReason(n.reason),
          ...(n.detail ? [`Details: ${n.detail}`] : []),
        ],
        facts: quarantineFacts(n),
        action: actionFor(n.reason, n.nextAttemptAt),
      };
    case 'quarantine-reason-changed':
      return {
        subject: `Quarantine reason is now ${n.reason} (was ${n.previousReason})`,
        title: 'The quarantine reason changed',
        paragraphs: [
          `tvsync is still in quarantine, now for a different reason: ${n.reason} (before: ${n.previousReason}).`,
          explainReason(n.reason),
          ...(n.detail ? [`Details: ${n.detail}`] : []),
        ],
        facts: [['Previous reason', n.previousReason], ...quarantineFacts(n)],
        action: actionFor(n.reason, n.nextAttemptAt),
      };
    case 'deactivations-staged': {
      const shown = n.sample.slice(0, SAMPLE_LIMIT);
      const more = Math.max(0, n.count - shown.length);
      const why = n.cause === 'suspicious-drop'
        ? 'Microsoft Graph returned far fewer users than the last cycle (SUSPICIOUS_DROP_PERCENT), so tvsync treats the read as suspicious rather than as people leaving.'
        : `That is more than DEACTIVATION_THRESHOLD (${n.threshold}) allows in one cycle, so they are held back in case the change is an accident (a removed group assignment, a scoping mistake).`;
      return {
        subject: `${count(n.count)} deactivation${n.count === 1 ? '' : 's'} held back (threshold ${n.threshold})`,
        title: 'Deactivations are waiting for approval',
        paragraphs: [
          n.groups
            ? `A cycle would deactivate ${count(n.count - n.groups)} TeamViewer user${n.count - n.groups === 1 ? '' : 's'} and delete or unlink ${count(n.groups)} TeamViewer user group${n.groups === 1 ? '' : 's'} (each counts as one deactivation). ${why}`
            : `A cycle would deactivate ${count(n.count)} TeamViewer user${n.count === 1 ? '' : 's'}. ${why}`,
          ...(n.detail ? [`Details: ${n.detail}.`] : []),
          n.groups ? 'None of them has been deactivated, and no user group has been deleted or emptied.' : 'None of them has been deactivated.',
          ...(n.allowed
            ? [`They are newly held: none of them was among the ${count(n.allowed.count)} deactivation${n.allowed.count === 1 ? '' : 's'} ${n.allowed.by} allowed on ${time(n.allowed.grantedAt)}, of which ${count(n.allowed.applied)} ${n.allowed.applied === 1 ? 'was' : 'were'} applied. An allowance covers exactly the users it was given for.`]
            : []),
        ],
        facts: [
          ['Held back', count(n.count)],
          ...(n.groups ? [['Of them user groups', count(n.groups)]] as Array<[string, string]> : []),
          ...(n.allowed ? [['Newly held', count(n.count)], ['Allowed before and applied', `${count(n.allowed.applied)} of ${count(n.allowed.count)}`]] as Array<[string, string]> : []),
          ['Threshold', String(n.threshold)],
          ['Held since', time(n.at)],
        ],
        list: {
          caption: shown.length === 0
            ? 'The users are listed on the status page.'
            : `${n.groups ? 'User groups and users' : 'Users'} who would be ${n.groups ? 'deleted, unlinked or deactivated' : 'deactivated'} (${shown.length === n.count ? 'all' : `first ${shown.length}`} of ${count(n.count)}):`,
          items: [
            ...shown.map((u) => `${u.group ? 'User group ' : ''}${u.userPrincipalName}${u.displayName ? ` (${u.displayName})` : ''}: ${u.reason}`),
            ...(more > 0 && shown.length > 0 ? [`…and ${count(more)} more (see the status page).`] : []),
          ],
        },
        action: {
          text: 'If these deactivations are intended, release them with the command below (or the allow-deactivations operator endpoint); they are applied on the next cycle. If not, do not release them: fix the assignments or scoping in Entra ID first.',
          command: RELEASE_COMMAND,
        },
      };
    }
    case 'no-successful-cycle': {
      const never = n.lastSuccessAt === null;
      const howLong = duration(n.since, n.at);
      return {
        subject: never ? `No cycle has succeeded yet (trying for ${howLong})` : `No successful cycle for ${howLong}`,
        title: never ? 'No cycle has ever succeeded' : 'Cycles are not succeeding',
        paragraphs: [
          never
            ? `tvsync has been trying for ${howLong} and no cycle has succeeded yet, so no user has been provisioned.`
            : `No cycle has succeeded for ${howLong}${n.missedCycles ? ` (${n.missedCycles} intervals)` : ''}. Changes in Entra ID are not reaching TeamViewer.`,
          ...(n.lastError ? [`Last error: ${n.lastError.code}: ${n.lastError.message}`] : []),
        ],
        facts: [
          ['Last success', never ? 'never' : time(n.lastSuccessAt as string)],
          ['Failing since', time(n.since)],
          ...(n.missedCycles ? [['Missed intervals', String(n.missedCycles)] as [string, string]] : []),
          ...(n.lastError ? [['Last error', n.lastError.code] as [string, string]] : []),
        ],
        action: { text: 'The status page shows each cycle and its error. Once the cause is fixed, the next cycle runs on schedule; you will get an email when one succeeds.' },
      };
    }
    case 'recovered': {
      const what = n.ended === 'quarantine' ? 'The quarantine is over' : 'Cycles succeed again';
      return {
        subject: `Recovered: ${n.ended === 'quarantine' ? `quarantine${n.reason ? ` (${n.reason})` : ''} ended` : 'cycles succeed again'}`,
        title: what,
        paragraphs: [
          `${what}: a cycle succeeded at ${time(n.at)}, after ${duration(n.since, n.at)}${n.reason ? ` (${n.reason})` : ''}.`,
          'tvsync is provisioning users into TeamViewer normally. No action is needed.',
        ],
        facts: [
          ['Problem began', time(n.since)],
          ['Recovered at', time(n.at)],
          ...(n.reason ? [['Was', n.reason] as [string, string]] : []),
        ],
      };
    }
    default: {
      const unknown: never = n;
      throw new Error(`unknown notification kind: ${JSON.stringify((unknown as { kind?: unknown }).kind)}`);
    }
  }
}

function quarantineFacts(n: QuarantineEnteredNotification | QuarantineReasonChangedNotification): Array<[string, string]> {
  return [
    ['Reason', n.reason],
    ['In quarantine since', time(n.since)],
    ['Next attempt', n.nextAttemptAt === null ? 'none: tvsync has stopped retrying' : `${time(n.nextAttemptAt)} (in ${duration(n.at, n.nextAttemptAt)})`],
  ];
}

function explainReason(reason: QuarantineReason): string {
  switch (reason) {
    case 'TooManyDeactivations':
      return 'A cycle would have deactivated more TeamViewer users than DEACTIVATION_THRESHOLD allows, so those deactivations are held back until someone approves them.';
    case 'SuspiciousDrop':
      return 'Microsoft Graph returned far fewer users than the last cycle, so tvsync treats the read as suspicious instead of deactivating people.';
    case 'Unauthorized':
      return 'TeamViewer or Microsoft Graph refused tvsync\'s credentials: the TeamViewer API token may be revoked or expired, or the managed identity may be missing a permission.';
    case 'FailureRate':
      return 'Too large a share of the users in recent cycles failed (over the configured failure thresholds), so tvsync backs off rather than keep failing.';
    default:
      return `tvsync reported the reason code ${reason}.`;
  }
}

function actionFor(reason: QuarantineReason, nextAttemptAt: string | null): Doc['action'] {
  const stopped = nextAttemptAt === null
    ? 'tvsync has been in quarantine for 28 days and will not retry by itself. '
    : 'tvsync retries on its own with growing back-off (6 h, 12 h, 24 h, then daily). ';
  switch (reason) {
    case 'TooManyDeactivations':
    case 'SuspiciousDrop':
      return {
        text: `${stopped}Review the held-back deactivations on the status page. If they are intended, release them with the command below (or the allow-deactivations operator endpoint).`,
        command: RELEASE_COMMAND,
      };
    case 'Unauthorized':
      return {
        text: `${stopped}Renew the TeamViewer API token (TEAMVIEWER_API_TOKEN) or fix the managed identity's permissions, then retry at once with the command below.`,
        command: RESTART_COMMAND,
      };
    default:
      return {
        text: `${stopped}Check the failing users on the status page; once the cause is fixed, retry at once with the command below.`,
        command: RESTART_COMMAND,
      };
  }
}

/**
 * The status link, or null when it is not an http(s) URL. Credentials in it are removed: an
 * Azure Functions key (`code=`) or a SAS signature must not travel in an email.
 */
export function safeStatusUrl(raw: string | undefined): string | null {
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  url.username = '';
  url.password = '';
  for (const name of [...url.searchParams.keys()]) {
    if (/^(code|sig|key|token|access_token|api[-_]?key|secret|password)$/i.test(name)) url.searchParams.delete(name);
  }
  return url.toString();
}

const clean = (value: string): string => plainTextSafe(redactText(value));

function renderPlain(doc: Doc, statusUrl: string | null, footer: string): string {
  const title = clean(doc.title);
  const lines: string[] = [title, '='.repeat(title.length), ''];
  for (const p of doc.paragraphs) lines.push(clean(p), '');
  if (doc.facts.length > 0) {
    const width = Math.max(...doc.facts.map(([label]) => label.length)) + 2;
    for (const [label, value] of doc.facts) lines.push(`${`${clean(label)}:`.padEnd(width)}${clean(value)}`);
    lines.push('');
  }
  if (doc.list) {
    lines.push(clean(doc.list.caption));
    for (const item of doc.list.items) lines.push(`  - ${clean(item)}`);
    lines.push('');
  }
  if (doc.action) {
    lines.push(clean(doc.action.text));
    if (doc.action.command) lines.push('', `    ${clean(doc.action.command)}`);
    lines.push('');
  }
  if (statusUrl) lines.push(`Status page: ${clean(statusUrl)}`, '');
  lines.push('-- ', clean(footer));
  return `${lines.join('\n')}\n`;
}

function renderHtml(doc: Doc, statusUrl: string | null, footer: string): string {
  const h = (value: string): string => escapeHtml(clean(value));
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    `<title>${h(doc.title)}</title></head>`,
    '<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.5;color:#1b1b1b;max-width:680px">',
    `<h2 style="font-size:18px;margin:0 0 12px">${h(doc.title)}</h2>`,
  ];
  for (const p of doc.paragraphs) out.push(`<p>${h(p)}</p>`);
  if (doc.facts.length > 0) {
    out.push('<table role="presentation" style="border-collapse:collapse;margin:8px 0 16px">');
    for (const [label, value] of doc.facts) {
      out.push(`<tr><th scope="row" style="text-align:left;vertical-align:top;padding:2px 16px 2px 0;font-weight:600">${h(label)}</th><td style="padding:2px 0">${h(value)}</td></tr>`);
    }
    out.push('</table>');
  }
  if (doc.list) {
    out.push(`<p>${h(doc.list.caption)}</p>`);
    if (doc.list.items.length > 0) out.push('<ul>', ...doc.list.items.map((item) => `<li>${h(item)}</li>`), '</ul>');
  }
  if (doc.action) {
    out.push(`<p>${h(doc.action.text)}</p>`);
    if (doc.action.command) {
      out.push(`<pre style="background:#f3f3f3;padding:8px 12px;border-radius:4px"><code>${h(doc.action.command)}</code></pre>`);
    }
  }
  if (statusUrl) out.push(`<p><a href="${h(statusUrl)}">Open the status page</a></p>`);
  out.push(`<hr style="border:none;border-top:1px solid #ddd"><p style="color:#666;font-size:12px">${h(footer)}</p>`, '</body></html>');
  return `${out.join('\n')}\n`;
}

const NUMBER = new Intl.NumberFormat('en-US');
const count = (n: number): string => NUMBER.format(n);

/** "2025-03-01 14:05 UTC"; a value that is not a date is shown as given (and escaped later). */
function time(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC` : iso;
}

/** "3 h 20 min", "2 days 4 h"; the time from `from` to `to`. */
function duration(from: string, to: string): string {
  const ms = Date.parse(to) - Date.parse(from);
  if (!Number.isFinite(ms)) return 'an unknown time';
  if (ms < 60_000) return 'less than a minute';
  const minutes = Math.floor(ms / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days > 0) return `${days} day${days === 1 ? '' : 's'}${hours ? ` ${hours} h` : ''}`;
  if (hours > 0) return `${hours} h${mins ? ` ${mins} min` : ''}`;
  return `${mins} min`;
}
