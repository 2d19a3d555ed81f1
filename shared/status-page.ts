/**
 * The human status page: the status document as one self-contained HTML page (inline CSS, inline
 * SVG, no script, no external asset) that reads on a phone. Pure: a document in, a string out,
 * no clock (relative times are measured to `options.now`, else to the document's generatedAt).
 *
 * Invariant: no value from the document reaches the page unescaped. Every string from the
 * document goes through `text()` (control/bidi characters dropped, registered secrets masked,
 * HTML-escaped) and every number through `count()`/`numberOr()` (finite or shown as "—"); class
 * names and colours come only from the fixed tables below, never from the document. Attributes
 * are always double-quoted, so escaped text cannot leave them.
 *
 * The document may be older or newer than this file (fields are added over time, and the 503
 * answer carries only health and an error), so every field is read defensively: a missing or
 * odd-shaped field renders as "—" or an empty section, never as an exception.
 */
import { redactText } from './log';
import { escapeHtml, plainTextSafe } from './notify/escape';
import type { StatusDocument } from './status';

export interface StatusPageOptions {
  /** Adds <meta http-equiv="refresh">: the browser reloads the page every N seconds. */
  refreshSeconds?: number;
  /** The clock for "5 min ago"; defaults to the document's generatedAt. */
  now?: Date;
}

interface HealthLook {
  label: string;
  words: string;
  background: string;
  foreground: string;
}

/** Colours chosen for contrast (WCAG AA for the banner text on its background). */
export const HEALTH_LOOK: Record<string, HealthLook> = {
  healthy: { label: 'Healthy', words: 'Provisioning is working.', background: '#1e7b34', foreground: '#ffffff' },
  degraded: { label: 'Degraded', words: 'Provisioning runs, but something failed: see below.', background: '#f2b01e', foreground: '#1b1b1b' },
  quarantined: { label: 'Quarantined', words: 'Provisioning is paused until the problem below is fixed.', background: '#b3261e', foreground: '#ffffff' },
  disabled: { label: 'Disabled', words: 'Provisioning is off: it cannot start with the current settings.', background: '#5f6368', foreground: '#ffffff' },
  'never-run': { label: 'Never run', words: 'No provisioning cycle has finished yet.', background: '#1a5fb4', foreground: '#ffffff' },
};
const UNKNOWN_LOOK: HealthLook = { label: 'Unknown', words: 'The status could not be read.', background: '#5f6368', foreground: '#ffffff' };

const BANNER_CSS = [...Object.entries(HEALTH_LOOK), ['unknown', UNKNOWN_LOOK] as const]
  .map(([health, l]) => `.banner-${health}{background:${l.background};color:${l.foreground}}`)
  .join('\n');

const RESULT_CLASS: Record<string, string> = { succeeded: 'ok', partial: 'warn', failed: 'bad', running: 'info' };

/** The changes the chart draws, in stacking order, with their colours. */
const CHART_SERIES = [
  { key: 'created', label: 'Created', color: '#2e7d32' },
  { key: 'updated', label: 'Updated', color: '#1565c0' },
  { key: 'disabled', label: 'Disabled', color: '#6d4c41' },
  { key: 'enabled', label: 'Enabled', color: '#00897b' },
  { key: 'failed', label: 'Failed', color: '#c62828' },
] as const;

const TABLE_COUNTS = ['created', 'updated', 'disabled', 'enabled', 'linked', 'skipped', 'staged', 'failed', 'drift'] as const;

/**
 * What a failure code means, in words an admin acts on. The failure's own message follows (it
 * names the specifics); a code not listed here is shown with its message only.
 */
const FAILURE_WORDS: Record<string, string> = {
  AMBIGUOUS_MATCH: 'More than one TeamViewer user could be this person, so none was changed.',
  USERNAME_CLAIMED_TWICE: 'Several Entra users map to the same TeamViewer login, so none of them was provisioned.',
  USERNAME_CONFLICT: 'The TeamViewer login is already linked to another Entra user.',
  MAPPING_EMPTY_USERNAME: 'The attribute mappings gave this user an empty TeamViewer login.',
  MAPPING_NOT_BOOLEAN: 'An attribute mapping for "active" did not give true or false for this user.',
  MAPPING_FAILED: 'An attribute mapping could not be evaluated for this user.',
  TEAMVIEWER_UNAUTHORIZED: 'TeamViewer rejected the API token.',
  TEAMVIEWER_FORBIDDEN: 'The TeamViewer API token lacks a permission this change needs.',
  TEAMVIEWER_THROTTLED: 'TeamViewer asked tvsync to slow down before this change was made.',
  TEAMVIEWER_CONFLICT: 'TeamViewer already has a user with this login.',
  TEAMVIEWER_BAD_REQUEST: 'TeamViewer refused a value sent for this user.',
  TEAMVIEWER_NOT_FOUND: 'The linked TeamViewer user no longer exists.',
  TEAMVIEWER_TRANSIENT: 'TeamViewer could not be reached or failed for a moment.',
  TEAMVIEWER_TIMEOUT: 'TeamViewer did not answer in time.',
  TEAMVIEWER_PROTOCOL: 'TeamViewer answered in a form tvsync could not read.',
  TEAMVIEWER_GROUPS_FORBIDDEN: 'TeamViewer refused user groups: the script token needs "User groups: create, delete, edit, read", and the company a Tensor licence. Users are provisioned as usual.',
  GROUP_NAME_TAKEN: 'Another user group already has this name in TeamViewer.',
  GROUP_NAME_CLAIMED_TWICE: 'Several assigned Entra groups want the same TeamViewer name.',
  GROUP_AMBIGUOUS_MATCH: 'Several TeamViewer user groups have this name apart from letter case.',
  GROUP_NAME_TOO_LONG: 'The group name is longer than TeamViewer allows.',
  STATE_WRITE_FAILED: 'The change was made in TeamViewer but tvsync could not record it.',
  CYCLE_INTERRUPTED: 'The process running the cycle stopped before it finished.',
};

const ACTION_WORDS: Record<string, string> = {
  create: 'create',
  update: 'update',
  disable: 'disable',
  enable: 'enable',
  link: 'link',
  fail: 'provision',
};

/** `doc` is a whole StatusDocument, or any part of one (the 503 answer has only health and why). */
export function renderStatusPage(doc: Partial<StatusDocument>, options: StatusPageOptions = {}): string {
  const d = (doc ?? {}) as unknown as Record<string, unknown>;
  const generatedAt = str(d.generatedAt);
  const nowMs = options.now?.getTime() ?? (generatedAt !== null && Number.isFinite(Date.parse(generatedAt)) ? Date.parse(generatedAt) : NaN);
  const clock = new Clock(nowMs);
  const health = str(d.health) ?? '';
  const look = HEALTH_LOOK[health] ?? UNKNOWN_LOOK;
  const refresh = options.refreshSeconds !== undefined && Number.isFinite(options.refreshSeconds) && options.refreshSeconds > 0 ? Math.max(1, Math.round(options.refreshSeconds)) : null;

  const cycles = arr(d.recentCycles).map(obj);
  const failures = arr(d.recentFailures).map(obj);

  const body = [
    `<header class="top"><h1>tvsync status</h1><p class="muted">${generatedAt ? `as of ${clock.time(generatedAt)}` : 'time unknown'}${refresh ? ` · reloads every ${refresh} s` : ''}</p></header>`,
    banner(health, look, str(d.healthReason)),
    quarantineSection(d.quarantine, clock),
    // A field the document lacks (an older writer, the 503 answer) hides its section: "none" would be a claim.
    d.currentCycle === undefined && d.nextRunAt === undefined ? '' : runningSection(d.currentCycle, d, clock),
    d.lastCycle === undefined ? '' : lastCycleSection(d.lastCycle, clock, d.groups !== undefined && d.groups !== null),
    d.recentFailures === undefined ? '' : failuresSection(failures, clock),
    stagedSection(d.stagedDeactivations, d.allowance, clock),
    groupsSection(d.groups, clock),
    reenabledSection(d.reenabledLeavers, clock),
    escrowSection(d.escrows, clock),
    d.recentCycles === undefined ? '' : cyclesSection(cycles, clock),
    chartSection(cycles, clock),
  ].join('\n');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh ? `<meta http-equiv="refresh" content="${refresh}">\n` : ''}<meta name="color-scheme" content="light">
<link rel="icon" href="data:,">
<title>${escapeHtml(look.label)} · tvsync status</title>
<style>${CSS}${BANNER_CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function banner(health: string, look: HealthLook, reason: string | null): string {
  const cls = HEALTH_LOOK[health] ? `banner-${health}` : 'banner-unknown';
  return `<section id="health" class="banner ${cls}" role="status" aria-label="Health">
<p class="state">${escapeHtml(look.label)}</p>
<p class="words">${escapeHtml(look.words)}</p>
${reason ? `<p class="reason">Why: ${text(reason)}</p>` : ''}
</section>`;
}

function quarantineSection(value: unknown, clock: Clock): string {
  if (value === null || typeof value !== 'object') return '';
  const q = value as Record<string, unknown>;
  const since = str(q.since);
  return `<section id="quarantine" aria-labelledby="quarantine-h"><h2 id="quarantine-h">Quarantine</h2>
<p><strong>${text(q.message) || 'tvsync is quarantined.'}</strong></p>
<p class="muted">${str(q.reason) ? `<span class="code">${text(q.reason)}</span>` : ''}${since ? ` since ${clock.time(since)} (${clock.relative(since)})` : ''}</p>
${str(q.howToRelease) ? `<p>To release: ${text(q.howToRelease)}</p>` : ''}
</section>`;
}

/** Deactivations the accidental-deletion guard holds back, with the users it names, and what was allowed. */
function stagedSection(value: unknown, allowanceValue: unknown, clock: Clock): string {
  if (value === null || typeof value !== 'object') return '';
  const s = value as Record<string, unknown>;
  const since = str(s.since);
  const sample = arr(s.sample).map(obj);
  const users = sample.map((u) => `<li>${u.kind === 'group' ? '<span class="tag">user group</span> ' : ''}<span class="upn">${text(u.userPrincipalName) || '(no user name)'}</span>${str(u.reason) ? ` — ${text(u.reason)}` : ''}</li>`);
  const more = (numberOr(s.count, 0) as number) - sample.length;
  const fresh = numberOr(s.newlyHeld, null);
  const groups = numberOr(s.groups, 0) ?? 0;
  return `<section id="staged" aria-labelledby="staged-h"><h2 id="staged-h">${groups > 0 ? 'Deactivations and user groups going held back' : 'Deactivations held back'}</h2>
<p><strong>${count(s.count)}</strong> deactivation(s) held back (limit ${count(s.limit)})${groups > 0 ? `, ${count(groups)} of them user groups to be deleted or unlinked` : ''}${since ? ` since ${clock.time(since)}` : ''}${fresh !== null ? `, ${count(fresh)} of them newly held by the last cycle` : ''}${s.allowed === true ? ' · <strong>allowed: the next cycle applies them</strong>' : ''}.</p>
${str(s.message) ? `<p>${text(s.message)}</p>` : ''}
${allowanceLine(allowanceValue, since, clock)}
${users.length ? `<ul class="staged">${users.join('')}</ul>${more > 0 ? `<p class="muted">and ${count(more)} more.</p>` : ''}` : ''}
</section>`;
}

/** The allowance an admin gave: waiting for the next cycle, or what the cycle that used it applied. */
function allowanceLine(value: unknown, heldSince: string | null, clock: Clock): string {
  if (value === null || typeof value !== 'object') return '';
  const a = value as Record<string, unknown>;
  const applied = str(a.appliedAt);
  // A used-up allowance belongs next to this batch only when the batch began with (or after) it.
  if (a.pending !== true && !(applied && heldSince && Date.parse(applied) >= Date.parse(heldSince))) return '';
  const granted = str(a.grantedAt);
  const who = `${count(a.count)} deactivation(s) allowed by ${text(a.by) || 'an admin'}${granted ? ` at ${clock.time(granted)}` : ''}`;
  return a.pending === true
    ? `<p class="muted">${who}: the next cycle applies exactly those.</p>`
    : `<p class="muted">${who}: ${count(a.applied)} applied by cycle <code>${text(a.cycleId)}</code>. Those held now were not part of it.</p>`;
}

/** Users who should not be active and were found re-enabled by hand in TeamViewer, and what became of it. */
function reenabledSection(value: unknown, clock: Clock): string {
  const users = arr(value).map(obj);
  if (users.length === 0) return '';
  const items = users.map((u) => {
    const found = str(u.foundAt);
    return `<li><span class="upn">${text(u.userPrincipalName) || '(no user name)'}</span> — TeamViewer user <code>${text(u.teamViewerId) || '—'}</code>${found ? `, found ${clock.time(found)} <span class="muted">(${clock.relative(found)})</span>` : ''}: ${text(u.outcome)}</li>`;
  });
  return `<section id="reenabled" aria-labelledby="reenabled-h"><h2 id="reenabled-h">Re-enabled by hand in TeamViewer (${count(users.length)})</h2>
<p class="muted">These users should not be active, and someone activated them in TeamViewer's console. What tvsync did about each is shown; find out who activated them.</p>
<ul class="staged">${items.join('')}</ul>
</section>`;
}

/** Users whose change keeps failing: what failed, how often, and when it is tried next. */
function escrowSection(value: unknown, clock: Clock): string {
  if (value === null || typeof value !== 'object') return '';
  const e = value as Record<string, unknown>;
  const users = arr(e.users).map(obj);
  if (users.length === 0) return '';
  const items = users.map((u) => {
    const next = str(u.nextAttemptAt);
    return `<li><span class="upn">${text(u.userPrincipalName) || '(no user name)'}</span> — ${text(u.action)} failed ${count(u.attempts)} time(s): <code>${text(u.code)}</code> ${text(u.message)}${next ? ` · next attempt ${clock.time(next)} <span class="muted">(${clock.relative(next)})</span>` : ''}</li>`;
  });
  const more = (numberOr(e.count, users.length) as number) - users.length;
  return `<section id="escrows" aria-labelledby="escrows-h"><h2 id="escrows-h">Retried users (${count(e.count)})</h2>
<p class="muted">Each is retried with a growing back-off and never holds up the others.</p>
<ul class="staged">${items.join('')}</ul>${more > 0 ? `<p class="muted">and ${count(more)} more.</p>` : ''}
</section>`;
}

function runningSection(current: unknown, d: Record<string, unknown>, clock: Clock): string {
  const interval = numberOr(d.intervalMinutes, null);
  const every = interval !== null && interval > 0 ? `every ${count(interval)} min` : null;
  if (current === null || typeof current !== 'object') {
    const next = str(d.nextRunAt);
    return `<section id="running" aria-labelledby="running-h"><h2 id="running-h">Now</h2>
<p>No cycle is running. Next run: <strong id="next-run">${next ? clock.time(next) : '—'}</strong>${next ? ` <span class="muted">(${clock.relative(next)})</span>` : ''}${every ? ` · cycles run ${every}` : ''}.</p>
</section>`;
  }
  const c = current as Record<string, unknown>;
  const done = numberOr(c.done, 0);
  const total = numberOr(c.total, 0);
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const pct = Math.round(fraction * 1000) / 10;
  const started = str(c.startedAt);
  const beat = str(c.heartbeatAt);
  return `<section id="running" aria-labelledby="running-h"><h2 id="running-h">Running now</h2>
<p>Cycle <code>${text(c.id)}</code> (${text(c.kind)}) started ${started ? `${clock.time(started)} <span class="muted">(${clock.relative(started)})</span>` : '—'}.</p>
<div class="progress" role="progressbar" aria-label="Cycle progress" aria-valuemin="0" aria-valuemax="${count(total)}" aria-valuenow="${count(done)}"><div class="fill" style="width:${pct}%"></div></div>
<p class="progress-text"><strong>${count(done)}</strong> of <strong>${count(total)}</strong> changes done (${pct}%)${beat ? ` · last progress ${clock.relative(beat)}` : ''}.</p>
${every ? `<p class="muted">Cycles run ${every}.</p>` : ''}
</section>`;
}

function lastCycleSection(last: unknown, clock: Clock, groupsOn = false): string {
  if (last === null || typeof last !== 'object') {
    return `<section id="last" aria-labelledby="last-h"><h2 id="last-h">Last cycle</h2><p>No cycle has finished yet.</p></section>`;
  }
  const c = last as Record<string, unknown>;
  const counts = obj(c.counts);
  const error = c.error && typeof c.error === 'object' ? (c.error as Record<string, unknown>) : null;
  const row = (label: string, value: string) => `<dt>${label}</dt><dd>${value}</dd>`;
  const started = str(c.startedAt);
  const finished = str(c.finishedAt);
  return `<section id="last" aria-labelledby="last-h"><h2 id="last-h">Last cycle</h2>
<dl class="facts">
${row('Result', resultBadge(c.result))}
${row('Cycle', `<code>${text(c.id)}</code>`)}
${row('Kind', `${text(c.kind)}${str(c.trigger) ? ` <span class="muted">(started by ${text(c.trigger)})</span>` : ''}`)}
${row('Started', started ? `${clock.time(started)} <span class="muted">(${clock.relative(started)})</span>` : '—')}
${row('Finished', finished ? `${clock.time(finished)} <span class="muted">(${clock.relative(finished)})</span>` : '—')}
${row('Duration', duration(c.durationSeconds))}
${row('Users read', count(c.imported))}
${row('Changes', countsSentence(counts))}
${groupsOn ? row('User groups', groupCountsSentence(obj(counts.groups))) : ''}
${error ? row('Error', `${text(error.message)} <span class="code">${text(error.code)}</span>`) : ''}
</dl>
</section>`;
}

function failuresSection(failures: Record<string, unknown>[], clock: Clock): string {
  if (failures.length === 0) {
    return `<section id="failures" aria-labelledby="failures-h"><h2 id="failures-h">Failed users</h2><p>No user failed in the last cycle.</p></section>`;
  }
  const items = failures.map((f) => {
    const code = str(f.code) ?? '';
    const words = FAILURE_WORDS[code];
    const action = ACTION_WORDS[str(f.action) ?? ''];
    const at = str(f.at);
    return `<li class="failure">
<p class="upn">${text(f.userPrincipalName) || '(no user name)'}</p>
<p class="what">Could not ${action ? escapeHtml(action) : `do “${text(f.action)}” for`} this user${at ? ` <span class="muted">· ${clock.time(at)}</span>` : ''}</p>
${words ? `<p class="plain">${escapeHtml(words)}</p>` : ''}
${str(f.message) ? `<p class="message">${text(f.message)}</p>` : ''}
<p class="muted small">${code ? `<span class="code">${text(code)}</span> · ` : ''}Entra id <code>${text(f.entraId)}</code></p>
</li>`;
  });
  return `<section id="failures" aria-labelledby="failures-h"><h2 id="failures-h">Failed users <span class="muted">(${count(failures.length)}, last cycle)</span></h2>
<ul class="failures">
${items.join('\n')}
</ul>
</section>`;
}

function cyclesSection(cycles: Record<string, unknown>[], clock: Clock): string {
  if (cycles.length === 0) {
    return `<section id="cycles" aria-labelledby="cycles-h"><h2 id="cycles-h">Recent cycles</h2><p>No cycles yet.</p></section>`;
  }
  const head = TABLE_COUNTS.map((k) => `<th scope="col" class="num">${escapeHtml(capital(k))}</th>`).join('');
  const rows = cycles.map((c) => {
    const counts = obj(c.counts);
    const started = str(c.startedAt);
    return `<tr><th scope="row"><span class="when">${started ? clock.time(started) : '—'}</span><br><span class="small muted">${text(c.kind)}</span> <code class="small">${text(c.id)}</code></th><td>${resultBadge(c.result)}</td><td class="num">${duration(c.durationSeconds)}</td>${TABLE_COUNTS.map((k) => `<td class="num">${count(counts[k])}</td>`).join('')}</tr>`;
  });
  return `<section id="cycles" aria-labelledby="cycles-h"><h2 id="cycles-h">Recent cycles</h2>
<p class="muted small narrow-only">Swipe the table sideways for every count.</p>
<div class="scroll" tabindex="0" role="region" aria-label="Recent cycles table">
<table>
<thead><tr><th scope="col">Started · kind · cycle</th><th scope="col">Result</th><th scope="col" class="num">Duration</th>${head}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</div>
</section>`;
}

/** Stacked bars, oldest cycle on the left, so the newest reads last, like a timeline. */
function chartSection(cycles: Record<string, unknown>[], clock: Clock): string {
  if (cycles.length === 0) return '';
  const ordered = [...cycles].reverse();
  const values = ordered.map((c) => {
    const counts = obj(c.counts);
    return CHART_SERIES.map((s) => numberOr(counts[s.key], 0) ?? 0).map((v) => Math.max(0, v));
  });
  const max = Math.max(1, ...values.map((v) => v.reduce((a, b) => a + b, 0)));
  const W = 320;
  const H = 120;
  const top = 14;
  const base = H - 16;
  const slot = W / Math.max(ordered.length, 1);
  const barW = Math.max(4, Math.min(28, slot * 0.6));
  const alt: string[] = [];
  const bars = ordered.map((c, i) => {
    const x = round(i * slot + (slot - barW) / 2);
    let y = base;
    const started = str(c.startedAt);
    const label = `${started ? clock.plain(started) : text(c.id)}: ${CHART_SERIES.map((s, j) => `${values[i]![j]} ${s.key}`).join(', ')}`;
    alt.push(label);
    const rects = CHART_SERIES.map((s, j) => {
      const v = values[i]![j]!;
      if (v <= 0) return '';
      const h = Math.max(1, ((base - top) * v) / max);
      y -= h;
      return `<rect x="${x}" y="${round(y)}" width="${round(barW)}" height="${round(h)}" fill="${s.color}"><title>${escapeHtml(s.label)}: ${v}</title></rect>`;
    }).join('');
    return `<g class="bar"><title>${label}</title>${rects || `<rect x="${x}" y="${base - 1}" width="${round(barW)}" height="1" fill="#9e9e9e"></rect>`}</g>`;
  });
  const legend = CHART_SERIES.map((s) => `<li><span class="swatch" style="background:${s.color}"></span>${escapeHtml(s.label)}</li>`).join('');
  return `<section id="chart" aria-labelledby="chart-h"><h2 id="chart-h">Changes per cycle</h2>
<figure>
<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet">
<title id="chart-title">Changes per cycle, oldest on the left (tallest bar: ${max})</title>
<desc id="chart-desc">${alt.join('; ')}</desc>
<line x1="0" y1="${base}" x2="${W}" y2="${base}" stroke="#9e9e9e" stroke-width="1"></line>
<text x="2" y="10" font-size="9" fill="#555">${max}</text>
${bars.join('\n')}
<text x="2" y="${H - 3}" font-size="9" fill="#555">older</text>
<text x="${W - 2}" y="${H - 3}" font-size="9" fill="#555" text-anchor="end">newer</text>
</svg>
<figcaption><ul class="legend">${legend}</ul>
<details><summary>The same as text</summary><ol class="chart-text">${alt.map((a) => `<li>${a}</li>`).join('')}</ol></details></figcaption>
</figure>
</section>`;
}

function resultBadge(result: unknown): string {
  const r = str(result);
  const cls = r !== null ? RESULT_CLASS[r] : undefined;
  return `<span class="badge${cls ? ` badge-${cls}` : ''}">${r ? text(r) : '—'}</span>`;
}

/** A user group's failed step, in words ("Could not …"). */
const GROUP_ACTION_WORDS: Record<string, string> = {
  'group-read': 'read the user groups',
  'group-create': 'create the user group',
  'group-link': 'link the user group',
  'group-rename': 'rename the user group',
  'member-add': 'add members',
  'member-remove': 'remove members',
  'role-assign': 'give the role',
  'group-record': 'record the members',
  'group-delete': 'delete the user group',
  'group-unlink': 'unlink the user group',
  'group-fail': 'provision the user group',
};

const GROUP_COUNTS = [
  ['created', 'created'], ['linked', 'adopted'], ['updated', 'updated'], ['deleted', 'deleted'], ['unlinked', 'unlinked'],
  ['membersAdded', 'members added'], ['membersRemoved', 'members removed'], ['staged', 'held back'], ['failed', 'failed'],
] as const;

function groupCountsSentence(counts: Record<string, unknown>): string {
  return GROUP_COUNTS.map(([key, words]) => `${count(counts[key])} ${words}`).join(', ');
}

/** User groups (GROUP_PROVISIONING=assigned): the linked groups, the last cycle's failures and warnings, held deletions. */
function groupsSection(value: unknown, clock: Clock): string {
  if (value === null || typeof value !== 'object') return '';
  const g = value as Record<string, unknown>;
  const list = arr(g.list).map(obj);
  const failures = arr(g.failures).map(obj);
  const warnings = arr(g.warnings).filter((w): w is string => typeof w === 'string');
  const held = g.heldDeletions && typeof g.heldDeletions === 'object' ? (g.heldDeletions as Record<string, unknown>) : null;
  const rows = list.map((l) => `<tr><th scope="row">${text(l.name) || '—'}</th><td><code>${text(l.teamViewerGroupId) || 'being created'}</code></td><td>${text(l.origin)}</td><td>${text(l.role) || '—'}</td><td class="num">${count(l.members)}</td></tr>`);
  const linked = numberOr(g.linked, list.length) as number;
  return `<section id="groups" aria-labelledby="groups-h"><h2 id="groups-h">User groups (${count(g.linked)})</h2>
<p class="muted">Entra groups assigned to the TeamViewer application, as TeamViewer user groups${str(g.prefix) ? ` named ${text(JSON.stringify(g.prefix))} + the Entra name` : ''}. Created: tvsync made it and deletes it when the Entra group goes. Adopted: it existed, so tvsync only takes its own members out then.</p>
${held ? `<p><strong>${count(held.count)}</strong> user group(s) going are held back with the deactivations: ${arr(held.sample).map(obj).map((h) => `<span class="upn">${text(h.name)}</span>`).join(', ')}.</p>` : ''}
${failures.length ? `<ul class="failures">${failures.map((f) => `<li class="failure"><p class="upn">${text(f.name) || 'every user group'}</p><p class="what">Could not ${GROUP_ACTION_WORDS[str(f.action) ?? ''] ? escapeHtml(GROUP_ACTION_WORDS[str(f.action) ?? '']!) : `do “${text(f.action)}”`}${str(f.at) ? ` <span class="muted">· ${clock.time(str(f.at) as string)}</span>` : ''}</p>${FAILURE_WORDS[str(f.code) ?? ''] ? `<p class="plain">${escapeHtml(FAILURE_WORDS[str(f.code) ?? '']!)}</p>` : ''}<p class="message">${text(f.message)}</p><p class="muted small"><span class="code">${text(f.code)}</span></p></li>`).join('\n')}</ul>` : ''}
${warnings.length ? `<ul class="warnings">${warnings.map((w) => `<li>${text(w)}</li>`).join('')}</ul>` : ''}
${rows.length ? `<div class="scroll" tabindex="0" role="region" aria-label="User groups table"><table>
<thead><tr><th scope="col">Name in TeamViewer</th><th scope="col">User group</th><th scope="col">Origin</th><th scope="col">Role</th><th scope="col" class="num">Members</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table></div>${linked > list.length ? `<p class="muted">and ${count(linked - list.length)} more.</p>` : ''}` : '<p>No user group is linked yet.</p>'}
</section>`;
}

function countsSentence(counts: Record<string, unknown>): string {
  // drift is a share of the changes, not a kind of its own: said after them, and only when there was some.
  const parts = TABLE_COUNTS.filter((k) => k !== 'drift').map((k) => `${count(counts[k])} ${k}`);
  const drift = numberOr(counts.drift, 0) ?? 0;
  return `${parts.join(', ')}${counts.unchanged !== undefined ? `, ${count(counts.unchanged)} unchanged` : ''}${drift > 0 ? `; ${count(drift)} of the changes put back hand edits in TeamViewer` : ''}`;
}

function duration(value: unknown): string {
  const s = numberOr(value, null);
  if (s === null || s < 0) return '—';
  if (s < 60) return `${Math.round(s * 10) / 10} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Times shown in UTC (the server cannot know the reader's zone, and UTC is what logs use). */
class Clock {
  constructor(private readonly nowMs: number) {}

  time(iso: string): string {
    const ms = Date.parse(iso);
    if (!Number.isFinite(ms)) return text(iso);
    return `<time datetime="${new Date(ms).toISOString()}">${this.plain(iso)}</time>`;
  }

  /** Escaped text, for places that take no markup (SVG titles). */
  plain(iso: string): string {
    const ms = Date.parse(iso);
    if (!Number.isFinite(ms)) return text(iso);
    const t = new Date(ms).toISOString();
    return `${t.slice(0, 10)} ${t.slice(11, 19)} UTC`;
  }

  relative(iso: string): string {
    const ms = Date.parse(iso);
    if (!Number.isFinite(ms) || !Number.isFinite(this.nowMs)) return '—';
    const diff = ms - this.nowMs;
    const abs = Math.abs(diff) / 1000;
    const span = abs < 60 ? `${Math.round(abs)} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : abs < 172_800 ? `${Math.round(abs / 360) / 10} h` : `${Math.round(abs / 86_400)} days`;
    if (abs < 1) return 'now';
    return diff < 0 ? `${span} ago` : `in ${span}`;
  }
}

/** A document string as safe HTML text. Non-strings (numbers, booleans) are shown as text too. */
function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return '';
  return escapeHtml(redactText(plainTextSafe(String(value))));
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function obj(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function numberOr<T extends number | null>(value: unknown, fallback: T): number | T {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function count(value: unknown): string {
  const n = numberOr(value, null);
  return n === null ? '—' : escapeHtml(String(n));
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const CSS = `
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#f6f7f9;overflow-wrap:anywhere}
main{max-width:1080px;margin:0 auto;padding:12px}
h1{font-size:1.25rem;margin:0}
h2{font-size:1.05rem;margin:0 0 .5rem}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px;margin:0 0 12px}
.top{display:flex;flex-wrap:wrap;gap:4px 12px;align-items:baseline;margin:0 0 12px}
.top p{margin:0}
.muted{color:#5c6370}
.small{font-size:.8rem}
p{margin:.25rem 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.banner{border:0;padding:14px 16px}
.banner .state{font-size:1.5rem;font-weight:700;margin:0}
.banner .words{font-weight:600}
.banner .reason{margin-top:.4rem}
.progress{height:18px;background:#e3e7ec;border-radius:9px;overflow:hidden;margin:.5rem 0}
.progress .fill{height:100%;background:#1a5fb4}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}
.facts dt{color:#5c6370}
.facts dd{margin:0;min-width:0}
.badge{display:inline-block;white-space:nowrap;padding:0 8px;border-radius:10px;background:#e3e7ec;font-size:.85rem;font-weight:600}
.badge-ok{background:#d7f0dc;color:#14532d}
.badge-warn{background:#fde9b8;color:#5c3d00}
.badge-bad{background:#f9d6d3;color:#7a1610}
.badge-info{background:#d6e4f7;color:#0f3a73}
.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.8rem;background:#eef0f3;padding:0 4px;border-radius:4px}
.failures{list-style:none;margin:0;padding:0}
.failure{border-top:1px solid #e3e7ec;padding:8px 0}
.failure:first-child{border-top:0;padding-top:0}
.failure .upn{font-weight:700}
.failure .plain{font-weight:600}
.failure .message{color:#333}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{text-align:left;padding:4px 5px;border-bottom:1px solid #e3e7ec;vertical-align:top;white-space:nowrap;overflow-wrap:normal}
th{font-weight:600}
tbody th{font-weight:400}
.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:0}
svg{display:block;width:100%;max-width:560px;height:auto}
.narrow-only{display:none}
@media (max-width:600px){.narrow-only{display:block}main{padding:8px}section{padding:10px}}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;list-style:none;margin:.5rem 0 0;padding:0;font-size:.85rem}
.tag{display:inline-block;padding:0 6px;border-radius:4px;background:#e3e7ec;font-size:.75rem;font-weight:600}
.warnings{margin:.25rem 0;padding-left:1.2rem;color:#5c3d00}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
details{margin-top:.4rem;font-size:.85rem}
`;
