import { describe, expect, it } from 'vitest';
import { registerSecret } from '../../shared/log';
import { escapeHtml } from '../../shared/notify/escape';
import type { StatusDocument } from '../../shared/status';
import { renderStatusPage } from '../../shared/status-page';

const NOW = '2026-03-10T12:00:00.000Z';
const counts = (over: Partial<Record<string, number>> = {}) => ({ created: 0, updated: 0, disabled: 0, enabled: 0, linked: 0, unchanged: 0, skipped: 0, staged: 0, failed: 0, drift: 0, ...over });

function cycle(over: Record<string, unknown> = {}) {
  return {
    id: '20260310T110000.000Z-aaaa',
    kind: 'incremental',
    trigger: 'timer',
    startedAt: '2026-03-10T11:00:00.000Z',
    finishedAt: '2026-03-10T11:02:05.000Z',
    durationSeconds: 125,
    result: 'succeeded',
    imported: 40,
    counts: counts({ created: 3, updated: 2 }),
    error: null,
    ...over,
  };
}

function doc(over: Record<string, unknown> = {}): StatusDocument {
  return {
    health: 'healthy',
    healthReason: 'the last cycle (20260310T110000.000Z-aaaa) succeeded',
    generatedAt: NOW,
    lastCycle: cycle(),
    currentCycle: null,
    nextRunAt: '2026-03-10T12:20:00.000Z',
    intervalMinutes: 40,
    quarantine: null,
    stagedDeactivations: null,
    recentFailures: [],
    recentCycles: [cycle()],
    ...over,
  } as unknown as StatusDocument;
}

/** The visible words of a page, roughly as a reader sees them (tags dropped, entities decoded). */
function visibleText(html: string): string {
  return html
    .replace(/<style>[\s\S]*?<\/style>/g, '')
    .replace(/<title>[\s\S]*?<\/title>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#96;/g, '`')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

const failure = (over: Record<string, unknown> = {}) => ({
  entraId: '11111111-2222-3333-4444-555555555555',
  userPrincipalName: 'adele@contoso.test',
  action: 'create',
  code: 'TEAMVIEWER_CONFLICT',
  message: 'TeamViewer answered 409: a user with userName adele@contoso.test exists',
  at: '2026-03-10T11:01:00.000Z',
  ...over,
});

const groupsDoc = (over: Record<string, unknown> = {}) => ({
  prefix: 'Entra - ',
  linked: 2,
  list: [
    { entraGroupId: 'g1', name: 'Entra - Field engineers', teamViewerGroupId: '10000002', origin: 'adopted', role: null, members: 12 },
    { entraGroupId: 'g2', name: 'Entra - Helpdesk', teamViewerGroupId: '10000001', origin: 'created', role: 'Support agent', members: 40 },
  ],
  lastCycle: { created: 1, linked: 1, updated: 0, deleted: 0, unlinked: 0, membersAdded: 52, membersRemoved: 0, staged: 0, failed: 0 },
  failures: [],
  warnings: [],
  heldDeletions: null,
  ...over,
});

describe('status page: health banner', () => {
  const states = [
    { health: 'healthy', label: 'Healthy', words: 'Provisioning is working.' },
    { health: 'degraded', label: 'Degraded', words: 'something failed' },
    { health: 'quarantined', label: 'Quarantined', words: 'Provisioning is paused' },
    { health: 'disabled', label: 'Disabled', words: 'Provisioning is off' },
    { health: 'never-run', label: 'Never run', words: 'No provisioning cycle has finished yet.' },
  ];
  for (const s of states) {
    it(`When health is ${s.health}, then the banner says "${s.label}", why, and is coloured for that state`, () => {
      const html = renderStatusPage(doc({ health: s.health, healthReason: `reason for ${s.health}` }));
      const banner = /<section id="health" class="banner banner-([a-z-]+)"[^>]*>([\s\S]*?)<\/section>/.exec(html);
      expect(banner?.[1]).toBe(s.health);
      expect(visibleText(banner![2]!)).toContain(s.label);
      expect(visibleText(banner![2]!)).toContain(s.words);
      expect(visibleText(banner![2]!)).toContain(`Why: reason for ${s.health}`);
      expect(html).toMatch(new RegExp(`\\.banner-${s.health}\\{background:#[0-9a-f]{6};color:#[0-9a-f]{6}\\}`));
      expect(html).toContain(`<title>${s.label} · tvsync status</title>`);
    });
  }

  it('When the five states render, then each has its own banner colour', () => {
    const colours = states.map((s) => {
      const html = renderStatusPage(doc({ health: s.health }));
      return new RegExp(`\\.banner-${s.health}\\{background:(#[0-9a-f]{6})`).exec(html)?.[1];
    });
    expect(new Set(colours).size).toBe(5);
  });

  it('When health is a value this page does not know, then the banner says Unknown instead of failing', () => {
    const html = renderStatusPage(doc({ health: 'on-fire' }));
    expect(html).toContain('class="banner banner-unknown"');
    expect(visibleText(html)).toContain('Unknown');
  });
});

describe('status page: running and next cycle', () => {
  it('When a cycle runs, then its id, kind, start and done/total show with a bar filled to done/total', () => {
    const html = renderStatusPage(
      doc({ currentCycle: { id: '20260310T115800.000Z-bbbb', kind: 'initial', startedAt: '2026-03-10T11:58:00.000Z', done: 3, total: 8, heartbeatAt: '2026-03-10T11:59:50.000Z' }, nextRunAt: null }),
    );
    const text = visibleText(html);
    expect(text).toContain('Running now');
    expect(text).toContain('Cycle 20260310T115800.000Z-bbbb (initial) started 2026-03-10 11:58:00 UTC (2 min ago)');
    expect(text).toContain('3 of 8 changes done (37.5%)');
    expect(text).toContain('last progress 10 s ago');
    expect(html).toContain('<div class="fill" style="width:37.5%"></div>');
    expect(html).toContain('aria-valuenow="3"');
    expect(html).toContain('aria-valuemax="8"');
  });

  it('When a running cycle has planned nothing yet, then the bar is empty (no NaN, no overflow)', () => {
    const zero = renderStatusPage(doc({ currentCycle: { id: 'c', kind: 'initial', startedAt: NOW, done: 0, total: 0, heartbeatAt: null } }));
    expect(zero).toContain('style="width:0%"');
    expect(zero).not.toContain('NaN');
    const over = renderStatusPage(doc({ currentCycle: { id: 'c', kind: 'initial', startedAt: NOW, done: 9, total: 8, heartbeatAt: null } }));
    expect(over).toContain('style="width:100%"');
  });

  it('When no cycle runs, then the next run shows as a time and how far away it is', () => {
    const text = visibleText(renderStatusPage(doc()));
    expect(text).toContain('No cycle is running. Next run: 2026-03-10 12:20:00 UTC (in 20 min) · cycles run every 40 min.');
  });

  it('When "now" is given, then relative times are measured to it rather than to generatedAt', () => {
    const text = visibleText(renderStatusPage(doc(), { now: new Date('2026-03-10T12:10:00.000Z') }));
    expect(text).toContain('(in 10 min)');
  });
});

describe('status page: last cycle, recent cycles, chart', () => {
  it('When a cycle finished, then its kind, trigger, times, duration, result and counts show', () => {
    const html = renderStatusPage(doc());
    const last = visibleText(/<section id="last"[\s\S]*?<\/section>/.exec(html)![0]);
    expect(last).toContain('Result succeeded');
    expect(last).toContain('Kind incremental (started by timer)');
    expect(last).toContain('Started 2026-03-10 11:00:00 UTC (1 h ago)');
    expect(last).toContain('Finished 2026-03-10 11:02:05 UTC');
    expect(last).toContain('Duration 2 min 5 s');
    expect(last).toContain('Users read 40');
    expect(last).toContain('3 created, 2 updated, 0 disabled, 0 enabled, 0 linked, 0 skipped, 0 staged, 0 failed, 0 unchanged');
  });

  it('When the last cycle failed, then its error code and message show', () => {
    const html = renderStatusPage(doc({ health: 'degraded', lastCycle: cycle({ result: 'failed', error: { code: 'TEAMVIEWER_UNAUTHORIZED', message: 'TeamViewer answered 401: token revoked' } }) }));
    const last = visibleText(/<section id="last"[\s\S]*?<\/section>/.exec(html)![0]);
    expect(last).toContain('Result failed');
    expect(last).toContain('Error TeamViewer answered 401: token revoked TEAMVIEWER_UNAUTHORIZED');
  });

  it('When there are recent cycles, then the table has a row each with its counts, newest first', () => {
    const cycles = [
      cycle({ id: 'c3', startedAt: '2026-03-10T11:00:00.000Z', result: 'partial', counts: counts({ updated: 4, failed: 2 }) }),
      cycle({ id: 'c2', startedAt: '2026-03-10T10:20:00.000Z', counts: counts({ disabled: 1, enabled: 5, staged: 3, drift: 1 }) }),
      // c1 comes from before counts had `staged` and `drift`: those cells show "—", not a made-up 0.
      cycle({ id: 'c1', startedAt: '2026-03-10T09:40:00.000Z', kind: 'initial', durationSeconds: 0.2, counts: { ...counts({ created: 40, linked: 2 }), staged: undefined, drift: undefined } }),
    ];
    const html = renderStatusPage(doc({ recentCycles: cycles }));
    const rows = [...html.matchAll(/<tr><th scope="row">([\s\S]*?)<\/tr>/g)].map((m) => visibleText(m[1]!).trim());
    expect(rows).toEqual([
      '2026-03-10 11:00:00 UTC incremental c3 partial 2 min 5 s 0 4 0 0 0 0 0 2 0',
      '2026-03-10 10:20:00 UTC incremental c2 succeeded 2 min 5 s 0 0 1 5 0 0 3 0 1',
      '2026-03-10 09:40:00 UTC initial c1 succeeded 0.2 s 40 0 0 0 2 0 — 0 —',
    ]);
  });

  it('When there are recent cycles, then the chart has one bar per cycle, oldest first, sized by its changes, with a text alternative', () => {
    const cycles = [
      cycle({ id: 'c2', startedAt: '2026-03-10T11:00:00.000Z', counts: counts({ updated: 5, failed: 5 }) }),
      cycle({ id: 'c1', startedAt: '2026-03-10T10:20:00.000Z', counts: counts({ created: 20 }) }),
    ];
    const html = renderStatusPage(doc({ recentCycles: cycles }));
    const chart = /<svg[\s\S]*?<\/svg>/.exec(html)![0];
    expect(chart).toContain('role="img"');
    const bars = [...chart.matchAll(/<g class="bar"><title>([^<]*)<\/title>([\s\S]*?)<\/g>/g)];
    expect(bars.map((b) => b[1])).toEqual([
      '2026-03-10 10:20:00 UTC: 20 created, 0 updated, 0 disabled, 0 enabled, 0 failed',
      '2026-03-10 11:00:00 UTC: 0 created, 5 updated, 0 disabled, 0 enabled, 5 failed',
    ]);
    const heights = bars.map((b) => [...b[2]!.matchAll(/height="([\d.]+)"/g)].reduce((sum, m) => sum + Number(m[1]), 0));
    expect(heights[0]).toBeCloseTo(heights[1]! * 2, 0);
    expect(html).toContain('<desc id="chart-desc">2026-03-10 10:20:00 UTC: 20 created');
    expect(visibleText(/<details>[\s\S]*?<\/details>/.exec(html)![0])).toContain('2026-03-10 11:00:00 UTC: 0 created, 5 updated, 0 disabled, 0 enabled, 5 failed');
  });
});

describe('status page: failures', () => {
  it('When users failed, then each shows with its UPN, what could not be done, the reason in words and the message', () => {
    const html = renderStatusPage(
      doc({
        health: 'degraded',
        recentFailures: [
          failure(),
          failure({ userPrincipalName: 'alex@contoso.test', action: 'fail', code: 'AMBIGUOUS_MATCH', message: 'two TeamViewer users match alex@contoso.test' }),
          failure({ userPrincipalName: 'bob@contoso.test', action: 'update', code: 'SOMETHING_NEW', message: 'a reason this page has no words for' }),
        ],
      }),
    );
    const items = [...html.matchAll(/<li class="failure">([\s\S]*?)<\/li>/g)].map((m) => visibleText(m[1]!).trim());
    expect(items).toHaveLength(3);
    expect(items[0]).toContain('adele@contoso.test Could not create this user · 2026-03-10 11:01:00 UTC');
    expect(items[0]).toContain('TeamViewer already has a user with this login.');
    expect(items[0]).toContain('TeamViewer answered 409: a user with userName adele@contoso.test exists TEAMVIEWER_CONFLICT');
    expect(items[1]).toContain('alex@contoso.test Could not provision this user');
    expect(items[1]).toContain('More than one TeamViewer user could be this person, so none was changed.');
    expect(items[2]).toContain('bob@contoso.test Could not update this user');
    expect(items[2]).toContain('a reason this page has no words for SOMETHING_NEW');
    expect(visibleText(html)).toContain('Failed users (3, last cycle)');
  });

  it('When no user failed, then the page says so', () => {
    expect(visibleText(renderStatusPage(doc()))).toContain('No user failed in the last cycle.');
  });

  it('When a registered secret found its way into a message, then the page shows it masked', () => {
    const secret = 'tv-secret-token-0123456789abcdef';
    registerSecret(secret);
    const html = renderStatusPage(doc({ recentFailures: [failure({ message: `request with ${secret} failed` })] }));
    expect(html).not.toContain(secret);
    expect(visibleText(html)).toContain('request with [redacted] failed');
  });
});

describe('status page: escaping', () => {
  const hostile = (tag: string) => `<script>alert("${tag}")</script>"'\`><img src=x onerror=alert(1)>`;
  const fields: Array<{ field: string; over: (h: string) => Record<string, unknown> }> = [
    { field: 'healthReason', over: (h) => ({ healthReason: h }) },
    { field: 'failure UPN', over: (h) => ({ recentFailures: [failure({ userPrincipalName: h })] }) },
    { field: 'failure message', over: (h) => ({ recentFailures: [failure({ message: h })] }) },
    { field: 'failure code', over: (h) => ({ recentFailures: [failure({ code: h })] }) },
    { field: 'failure action', over: (h) => ({ recentFailures: [failure({ action: h })] }) },
    { field: 'failure entraId', over: (h) => ({ recentFailures: [failure({ entraId: h })] }) },
    { field: 'failure time', over: (h) => ({ recentFailures: [failure({ at: h })] }) },
    { field: 'last cycle id', over: (h) => ({ lastCycle: cycle({ id: h }) }) },
    { field: 'last cycle kind', over: (h) => ({ lastCycle: cycle({ kind: h }) }) },
    { field: 'last cycle trigger', over: (h) => ({ lastCycle: cycle({ trigger: h }) }) },
    { field: 'last cycle result', over: (h) => ({ lastCycle: cycle({ result: h }) }) },
    { field: 'last cycle error message', over: (h) => ({ lastCycle: cycle({ result: 'failed', error: { code: 'X', message: h } }) }) },
    { field: 'last cycle error code', over: (h) => ({ lastCycle: cycle({ result: 'failed', error: { code: h, message: 'x' } }) }) },
    { field: 'last cycle start', over: (h) => ({ lastCycle: cycle({ startedAt: h }) }) },
    { field: 'recent cycle id', over: (h) => ({ recentCycles: [cycle({ id: h, startedAt: 'not a date' })] }) },
    { field: 'recent cycle kind', over: (h) => ({ recentCycles: [cycle({ kind: h })] }) },
    { field: 'running cycle id', over: (h) => ({ currentCycle: { id: h, kind: h, startedAt: h, done: 1, total: 2, heartbeatAt: h } }) },
    { field: 'next run', over: (h) => ({ nextRunAt: h }) },
    { field: 'generatedAt', over: (h) => ({ generatedAt: h }) },
    { field: 'quarantine', over: (h) => ({ quarantine: { reason: h, since: h, message: h, howToRelease: h } }) },
    { field: 'staged deactivations', over: (h) => ({ stagedDeactivations: { reason: h, message: h, count: 1, limit: 0, since: h, cycleId: h, allowed: false, sample: [{ entraId: h, userPrincipalName: h, teamViewerId: h, reason: h }] } }) },
    { field: 're-enabled leaver', over: (h) => ({ reenabledLeavers: [{ entraId: h, userPrincipalName: h, teamViewerId: h, foundAt: h, cycleId: h, outcome: h }] }) },
    { field: 'user group name, id, origin and role', over: (h) => ({ groups: groupsDoc({ prefix: h, list: [{ entraGroupId: h, name: h, teamViewerGroupId: h, origin: h, role: h, members: 3 }] }) }) },
    { field: 'user group failure', over: (h) => ({ groups: groupsDoc({ failures: [{ entraGroupId: h, name: h, action: h, code: h, message: h, at: h }] }) }) },
    { field: 'user group warning', over: (h) => ({ groups: groupsDoc({ warnings: [h] }) }) },
    { field: 'user group held back', over: (h) => ({ groups: groupsDoc({ heldDeletions: { count: 1, sample: [{ entraId: h, name: h, teamViewerId: h, reason: h }] } }) }) },
    { field: 'allowance', over: (h) => ({ stagedDeactivations: { reason: 'SuspiciousRead', message: 'm', count: 1, newlyHeld: 1, limit: 0, since: '2026-03-10T11:00:00.000Z', cycleId: 'c', allowed: true, sample: [] }, allowance: { by: h, grantedAt: h, count: 1, pending: true, applied: null, cycleId: null, appliedAt: null } }) },
  ];
  for (const { field, over } of fields) {
    it(`When the ${field} is hostile markup, then it shows as text and opens no tag or attribute`, () => {
      const value = hostile(field);
      const html = renderStatusPage(doc(over(value)));
      expect(html).not.toContain('<script');
      expect(html).not.toContain('<img');
      expect(html).toContain(escapeHtml(value));
      expect(visibleText(html)).toContain(value);
    });
  }

  it('When every user-data field is hostile at once, then the page has only our own tags and attributes', () => {
    const h = `<svg onload=alert(1)>" onmouseover="alert(1)' style='x'<a href="https://evil.example/">x</a>`;
    const hostileCycle = cycle({ id: h, kind: h, trigger: h, result: h, startedAt: h, finishedAt: h, error: { code: h, message: h } });
    const html = renderStatusPage(
      doc({
        health: 'degraded',
        healthReason: h,
        generatedAt: h,
        lastCycle: hostileCycle,
        recentCycles: [hostileCycle, cycle({ id: h })],
        currentCycle: { id: h, kind: h, startedAt: h, done: 1, total: 2, heartbeatAt: h },
        nextRunAt: h,
        recentFailures: [failure({ userPrincipalName: h, message: h, code: h, action: h, entraId: h, at: h })],
        quarantine: { reason: h, since: h, message: h, howToRelease: h },
        stagedDeactivations: { reason: h, message: h, count: 1, limit: 0, since: h, cycleId: h, allowed: false, sample: [{ entraId: h, userPrincipalName: h, teamViewerId: h, reason: h }] },
      }),
      { refreshSeconds: 30 },
    );
    expect(html.split(escapeHtml(h)).length - 1).toBeGreaterThanOrEqual(25);
    const tags = new Set([...html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => m[1]!.toLowerCase()));
    const allowedTags = ['html', 'head', 'meta', 'link', 'title', 'style', 'body', 'main', 'header', 'h1', 'h2', 'p', 'section', 'strong', 'span', 'code', 'div', 'dl', 'dt', 'dd', 'ul', 'ol', 'li', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'br', 'time', 'svg', 'desc', 'line', 'text', 'g', 'rect', 'figure', 'figcaption', 'details', 'summary'];
    expect([...tags].filter((t) => !allowedTags.includes(t))).toEqual([]);
    const attributes = new Set([...html.matchAll(/<[a-zA-Z][^>]*>/g)].flatMap((m) => [...m[0].matchAll(/\s([a-zA-Z:-]+)=/g)].map((a) => a[1]!.toLowerCase())));
    expect([...attributes].filter((a) => a.startsWith('on') || a === 'href' || a === 'src')).toEqual(['href']);
    expect([...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual(['data:,']);
    // Every attribute value is one we wrote: quoted, and free of the hostile text.
    expect(html).not.toMatch(/=\s*'/);
    expect(html).not.toContain('" onmouseover="');
  });

  it('When a value carries bidi overrides or control characters, then they are dropped so the text reads as it is', () => {
    const html = renderStatusPage(doc({ recentFailures: [failure({ userPrincipalName: 'evil\u202Egpj.exe@contoso.test\u0007' })] }));
    expect(html).toContain('evilgpj.exe@contoso.test');
    expect(html).not.toMatch(/[\u202E\u0007]/);
  });
});

describe('status page: self-contained, tolerant', () => {
  const busy = () =>
    doc({
      health: 'degraded',
      currentCycle: { id: 'c9', kind: 'incremental', startedAt: NOW, done: 1, total: 2, heartbeatAt: NOW },
      recentFailures: [failure()],
      recentCycles: [cycle(), cycle({ id: 'c0' })],
    });

  it('When rendered, then the page references nothing outside itself: no script, no URL, no external style or image', () => {
    const html = renderStatusPage(busy(), { refreshSeconds: 10 });
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\ssrc=/i);
    expect(html).not.toMatch(/url\(|@import/i);
    expect(html).not.toMatch(/<link(?![^>]*href="data:)/i);
    expect(html).toMatch(/^<!DOCTYPE html>\n<html lang="en">/);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
  });

  it('When refreshSeconds is given, then the page reloads itself that often; without it, it does not', () => {
    expect(renderStatusPage(busy(), { refreshSeconds: 15 })).toContain('<meta http-equiv="refresh" content="15">');
    expect(renderStatusPage(busy())).not.toContain('http-equiv="refresh"');
    expect(renderStatusPage(busy(), { refreshSeconds: 0 })).not.toContain('http-equiv="refresh"');
    expect(renderStatusPage(busy(), { refreshSeconds: Number.NaN })).not.toContain('http-equiv="refresh"');
  });

  it('When nothing has run yet (an empty document), then the page says so in every section', () => {
    const html = renderStatusPage(
      doc({ health: 'never-run', healthReason: 'no cycle has run yet', lastCycle: null, currentCycle: null, nextRunAt: NOW, recentFailures: [], recentCycles: [] }),
    );
    const text = visibleText(html);
    expect(text).toContain('Never run');
    expect(text).toContain('Why: no cycle has run yet');
    expect(text).toContain('No cycle is running. Next run: 2026-03-10 12:00:00 UTC (now)');
    expect(text).toContain('No cycle has finished yet.');
    expect(text).toContain('No user failed in the last cycle.');
    expect(text).toContain('No cycles yet.');
    expect(html).not.toContain('<svg');
  });

  it('When the document has fields this page does not know, then they are ignored', () => {
    const html = renderStatusPage(doc({ escrowed: [{ userPrincipalName: 'x@y' }], statistics: { total: 1 } }));
    expect(visibleText(html)).toContain('Healthy');
    expect(html).not.toContain('x@y');
  });

  it('When the document has only health and a reason (the 503 answer), then only the banner shows: no claims about cycles', () => {
    const html = renderStatusPage({ health: 'disabled', healthReason: 'settings invalid: TEAMVIEWER_API_TOKEN is missing' });
    const text = visibleText(html);
    expect(text).toContain('Disabled');
    expect(text).toContain('TEAMVIEWER_API_TOKEN is missing');
    expect(text).not.toContain('No cycle');
    expect(text).toContain('time unknown');
  });

  it('When fields have the wrong shape, then they show as "—" and the page still renders', () => {
    const html = renderStatusPage(
      doc({
        lastCycle: { id: 5, counts: 'lots', durationSeconds: 'long', imported: Number.NaN },
        currentCycle: { done: '3', total: null },
        recentFailures: 'none',
        recentCycles: [null, 7, { counts: null }],
        quarantine: 'yes',
      }),
    );
    expect(html).toContain('Users read</dt><dd>—');
    expect(html).toContain('Duration</dt><dd>—');
    expect(html).not.toContain('NaN');
    expect(html).not.toContain('undefined');
    expect(html).not.toContain('[object Object]');
  });

  it('When quarantined with deactivations held back, then why, since when, how to release and the users held show', () => {
    const html = renderStatusPage(
      doc({
        health: 'quarantined',
        quarantine: { reason: 'TooManyDeactivations', since: '2026-03-10T11:00:00.000Z', message: '612 deactivations exceed DEACTIVATION_THRESHOLD', howToRelease: 'run "tvsync allow-deactivations"' },
        stagedDeactivations: {
          reason: 'TooManyDeactivations', message: '612 deactivations exceed DEACTIVATION_THRESHOLD', count: 612, limit: 500, since: '2026-03-10T11:00:00.000Z', cycleId: 'c1', allowed: false,
          sample: [{ entraId: 'e1', userPrincipalName: 'adele@contoso.test', teamViewerId: 'u1', reason: 'unassigned' }],
        },
      }),
    );
    const text = visibleText(html);
    expect(text).toContain('Quarantine 612 deactivations exceed DEACTIVATION_THRESHOLD TooManyDeactivations since 2026-03-10 11:00:00 UTC (1 h ago)');
    expect(text).toContain('To release: run "tvsync allow-deactivations"');
    expect(text).toContain('612 deactivation(s) held back (limit 500)');
    expect(text).toContain('adele@contoso.test — unassigned');
    expect(text).toContain('and 611 more.');
  });
});

describe('re-enabled leavers on the page', () => {
  it('When a leaver was found re-enabled by hand, then the page names them, the TeamViewer user, when and what became of it', () => {
    const html = renderStatusPage(doc({ reenabledLeavers: [{ entraId: 'e5', userPrincipalName: 'person.5@contoso.example', teamViewerId: 'u17', foundAt: '2026-03-10T11:00:00.000Z', cycleId: 'c9', outcome: 'deactivated again' }] }));
    const section = visibleText(/<section id="reenabled"[\s\S]*?<\/section>/.exec(html)![0]);
    expect(section).toContain('Re-enabled by hand in TeamViewer (1)');
    expect(section).toMatch(/person\.5@contoso\.example — TeamViewer user u17\s*, found 2026-03-10 11:00:00 UTC \(1 h ago\)\s*: deactivated again/);
  });

  it('When none was found, or the document predates the field, then there is no such section', () => {
    expect(renderStatusPage(doc({ reenabledLeavers: [] }))).not.toContain('id="reenabled"');
    expect(renderStatusPage(doc())).not.toContain('id="reenabled"');
  });

  it('When the last cycle put back hand edits, then its changes say how many', () => {
    const html = renderStatusPage(doc({ lastCycle: cycle({ counts: counts({ disabled: 1, updated: 1, drift: 2 }) }) }));
    expect(visibleText(/<section id="last"[\s\S]*?<\/section>/.exec(html)![0])).toContain('0 failed, 0 unchanged; 2 of the changes put back hand edits in TeamViewer');
  });
});

describe('escrowed users on the page', () => {
  it('lists them with the failure and the next attempt, escaped', async () => {
    const { renderStatusPage } = await import('../../shared/status-page');
    const html = renderStatusPage({
      health: 'degraded',
      healthReason: 'x',
      escrows: { count: 1, users: [{ entraId: 'e1', userPrincipalName: '<script>alert(1)</script>', action: 'create', code: 'TEAMVIEWER_CONFLICT', message: 'taken <b>', attempts: 2, firstFailedAt: '2026-11-28T10:00:00Z', lastFailedAt: '2026-11-28T11:00:00Z', nextAttemptAt: '2026-11-28T13:00:00Z' }] },
    });
    expect(html).toContain('Retried users (1)');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('failed 2 time(s)');
    expect(html).toContain('TEAMVIEWER_CONFLICT');
  });
});

describe('status page: held-back deactivations after an allowance', () => {
  it('When a cycle applied an allowance and held others, then the page says how many were allowed and applied, and how many are newly held', () => {
    const text = visibleText(renderStatusPage(doc({
      health: 'quarantined',
      stagedDeactivations: { reason: 'SuspiciousRead', message: 'Entra ID returned no users in scope', count: 40, newlyHeld: 40, limit: 500, since: '2026-03-10T11:40:00.000Z', cycleId: 'c2', allowed: false, sample: [] },
      allowance: { by: 'alice', grantedAt: '2026-03-10T11:30:00.000Z', count: 60, pending: false, applied: 60, cycleId: 'c2', appliedAt: '2026-03-10T11:40:00.000Z' },
    })));
    expect(text.replace(/\s+(?=[,.:])/g, '')).toContain('40 deactivation(s) held back (limit 500) since 2026-03-10 11:40:00 UTC, 40 of them newly held by the last cycle.');
    expect(text.replace(/\s+(?=[,.:])/g, '')).toContain('60 deactivation(s) allowed by alice at 2026-03-10 11:30:00 UTC: 60 applied by cycle c2. Those held now were not part of it.');
  });

  it('When the last allowance is older than the batch held now, then the page does not tie them together', () => {
    const text = visibleText(renderStatusPage(doc({
      stagedDeactivations: { reason: 'TooManyDeactivations', message: 'm', count: 3, newlyHeld: 3, limit: 2, since: '2026-03-10T11:40:00.000Z', cycleId: 'c9', allowed: false, sample: [] },
      allowance: { by: 'alice', grantedAt: '2026-03-01T11:30:00.000Z', count: 60, pending: false, applied: 60, cycleId: 'c2', appliedAt: '2026-03-01T11:40:00.000Z' },
    })));
    expect(text).not.toContain('allowed by alice');
  });
});

describe('status page: user groups', () => {
  it('When groups are linked, then the page lists each with its TeamViewer group, origin, role and members, and the last cycle counts them', () => {
    const html = renderStatusPage(doc({ groups: groupsDoc(), lastCycle: cycle({ counts: { ...counts(), groups: groupsDoc().lastCycle } }) }));
    const section = /<section id="groups"[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
    const text = visibleText(section);
    expect(text).toContain('User groups (2)');
    expect(text).toMatch(/Entra - Helpdesk 10000001 created Support agent 40/);
    expect(text).toMatch(/Entra - Field engineers 10000002 adopted — 12/);
    expect(text).toContain('named "Entra - " + the Entra name');
    expect(visibleText(html)).toMatch(/User groups 1 created, 1 adopted, 0 updated, 0 deleted, 0 unlinked, 52 members added, 0 members removed, 0 held back, 0 failed/);
  });

  it('When a missing right failed the groups, a setting warns and groups are held back, then each shows in words', () => {
    const html = renderStatusPage(doc({
      groups: groupsDoc({
        failures: [{ entraGroupId: '', name: '', action: 'group-read', code: 'TEAMVIEWER_GROUPS_FORBIDDEN', message: 'TeamViewer refused to list the user groups (403 insufficient_license)', at: NOW }],
        warnings: ['GROUP_ROLES entry 1: the TeamViewer company has no role named "Wizard"'],
        heldDeletions: { count: 2, sample: [{ entraId: 'g3', name: 'Entra - Ops', teamViewerId: '10000003', reason: 'user group deleted' }] },
      }),
      stagedDeactivations: { reason: 'TooManyDeactivations', message: 'm', count: 2, groups: 2, limit: 1, since: NOW, cycleId: 'c', allowed: false, newlyHeld: 2, sample: [{ entraId: 'g3', userPrincipalName: 'Entra - Ops', teamViewerId: '10000003', reason: 'user group deleted', kind: 'group' }] },
    }));
    const text = visibleText(html);
    expect(text).toContain('every user group Could not read the user groups');
    expect(text).toContain('the script token needs "User groups: create, delete, edit, read", and the company a Tensor licence');
    expect(text).toContain('GROUP_ROLES entry 1: the TeamViewer company has no role named "Wizard"');
    expect(text).toContain('2 user group(s) going are held back with the deactivations: Entra - Ops');
    expect(text).toContain('Deactivations and user groups going held back');
    expect(text).toContain('user group Entra - Ops — user group deleted');
  });

  it('When group provisioning is off (groups null) or the document predates it, then there is no user groups section', () => {
    expect(renderStatusPage(doc({ groups: null }))).not.toContain('id="groups"');
    expect(renderStatusPage(doc())).not.toContain('id="groups"');
  });
});
