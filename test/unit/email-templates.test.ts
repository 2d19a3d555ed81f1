import { describe, expect, it } from 'vitest';
import { renderNotification, safeStatusUrl, type Notification } from '../../shared/notify/templates';
import { escapeHtml, headerSafe, plainTextSafe } from '../../shared/notify/escape';
import { registerSecret } from '../../shared/log';

const AT = '2025-03-10T12:00:00.000Z';
const STATUS = 'https://tvsync-contoso.azurewebsites.net/api/status';
const SCRIPT = '<script>alert(1)</script>';
const IMG = '"><img src=x onerror=alert(1)>';

const cases: Array<{ name: string; n: Notification; subject: string[]; body: string[] }> = [
  {
    name: 'quarantine entered for a revoked token',
    n: { kind: 'quarantine-entered', at: AT, reason: 'Unauthorized', detail: 'TeamViewer answered 401 Unauthorized', since: AT, nextAttemptAt: '2025-03-10T18:00:00.000Z' },
    subject: ['Quarantined', 'Unauthorized'],
    body: ['Unauthorized', 'TeamViewer API token', 'TeamViewer answered 401 Unauthorized', '2025-03-10 12:00 UTC', '2025-03-10 18:00 UTC (in 6 h)', 'tvsync restart'],
  },
  {
    name: 'quarantine entered for too many deactivations',
    n: { kind: 'quarantine-entered', at: AT, reason: 'TooManyDeactivations', since: AT, nextAttemptAt: '2025-03-11T00:00:00.000Z' },
    subject: ['Quarantined', 'TooManyDeactivations'],
    body: ['DEACTIVATION_THRESHOLD', 'tvsync allow-deactivations', '(in 12 h)'],
  },
  {
    name: 'quarantine entered on the failure rate, after 28 days of it',
    n: { kind: 'quarantine-entered', at: AT, reason: 'FailureRate', since: '2025-02-10T12:00:00.000Z', nextAttemptAt: null },
    subject: ['Quarantined', 'FailureRate'],
    body: ['failure thresholds', '2025-02-10 12:00 UTC', 'stopped retrying', '28 days', 'tvsync restart'],
  },
  {
    name: 'quarantine reason changed',
    n: { kind: 'quarantine-reason-changed', at: AT, previousReason: 'FailureRate', reason: 'Unauthorized', since: '2025-03-09T12:00:00.000Z', nextAttemptAt: '2025-03-11T12:00:00.000Z' },
    subject: ['Unauthorized', 'FailureRate'],
    body: ['Previous reason', 'FailureRate', 'Unauthorized', '2025-03-09 12:00 UTC', '(in 1 day)'],
  },
  {
    name: 'deactivations staged over the threshold',
    n: {
      kind: 'deactivations-staged', at: AT, count: 612, threshold: 500,
      sample: [{ userPrincipalName: 'adele@contoso.test', displayName: 'Adele Vance', reason: 'unassigned' }, { userPrincipalName: 'alex@contoso.test', reason: 'disabled in Entra' }],
    },
    subject: ['612 deactivations held back', 'threshold 500'],
    body: ['612', 'DEACTIVATION_THRESHOLD (500)', 'adele@contoso.test (Adele Vance): unassigned', 'alex@contoso.test: disabled in Entra', 'first 2 of 612', '610 more', 'tvsync allow-deactivations'],
  },
  {
    name: 'deactivations staged after a suspicious Graph read',
    n: { kind: 'deactivations-staged', at: AT, count: 1, threshold: '15%', cause: 'suspicious-drop', sample: [{ userPrincipalName: 'megan@contoso.test', reason: 'missing from Graph' }] },
    subject: ['1 deactivation held back', 'threshold 15%'],
    body: ['far fewer users', 'all of 1', 'megan@contoso.test: missing from Graph', 'tvsync allow-deactivations'],
  },
  {
    name: 'deactivations newly held by the cycle that applied an allowance',
    n: {
      kind: 'deactivations-staged', at: AT, count: 40, threshold: 500, cause: 'suspicious-drop', detail: 'Entra ID returned no users in scope, where the last good read had 40',
      allowed: { count: 60, applied: 60, by: 'alice (tvsync CLI)', grantedAt: '2025-03-10T11:30:00.000Z' }, sample: [{ userPrincipalName: 'megan@contoso.test', reason: 'no longer assigned' }],
    },
    subject: ['40 deactivations held back'],
    body: ['Details: Entra ID returned no users in scope, where the last good read had 40.', 'They are newly held', 'the 60 deactivations alice (tvsync CLI) allowed on 2025-03-10 11:30 UTC, of which 60 were applied', 'Newly held', 'Allowed before and applied', '60 of 60'],
  },
  {
    name: 'user groups going held back with deactivations',
    n: {
      kind: 'deactivations-staged', at: AT, count: 3, threshold: 2, groups: 2,
      sample: [{ userPrincipalName: 'Entra - Helpdesk', reason: 'user group deleted (tvsync created it): no longer assigned', group: true }, { userPrincipalName: 'Entra - Field', reason: 'user group emptied', group: true }, { userPrincipalName: 'alex@contoso.test', reason: 'unassigned' }],
    },
    subject: ['3 deactivations held back'],
    body: ['deactivate 1 TeamViewer user and delete or unlink 2 TeamViewer user groups', 'no user group has been deleted or emptied', 'Of them user groups', 'User group Entra - Helpdesk: user group deleted (tvsync created it): no longer assigned', 'alex@contoso.test: unassigned', 'User groups and users who would be deleted, unlinked or deactivated (all of 3)'],
  },
  {
    name: 'no successful cycle for a while',
    n: { kind: 'no-successful-cycle', at: AT, lastSuccessAt: '2025-03-10T08:40:00.000Z', since: '2025-03-10T08:40:00.000Z', missedCycles: 5, lastError: { code: 'GRAPH_UNAVAILABLE', message: 'Graph answered 503 five times' } },
    subject: ['No successful cycle for 3 h 20 min'],
    body: ['3 h 20 min', '5 intervals', '2025-03-10 08:40 UTC', 'GRAPH_UNAVAILABLE', 'Graph answered 503 five times'],
  },
  {
    name: 'no cycle ever succeeded',
    n: { kind: 'no-successful-cycle', at: AT, lastSuccessAt: null, since: '2025-03-10T10:00:00.000Z', lastError: null },
    subject: ['No cycle has succeeded yet', '2 h'],
    body: ['no cycle has succeeded yet', 'never', '2025-03-10 10:00 UTC'],
  },
  {
    name: 'recovered from a quarantine',
    n: { kind: 'recovered', at: AT, ended: 'quarantine', reason: 'Unauthorized', since: '2025-03-08T12:00:00.000Z' },
    subject: ['Recovered', 'quarantine', 'Unauthorized'],
    body: ['The quarantine is over', '2 days', '2025-03-08 12:00 UTC', '2025-03-10 12:00 UTC', 'No action is needed'],
  },
  {
    name: 'recovered from an outage',
    n: { kind: 'recovered', at: AT, ended: 'outage', since: '2025-03-10T11:15:00.000Z' },
    subject: ['Recovered', 'cycles succeed again'],
    body: ['Cycles succeed again', '45 min', '2025-03-10 11:15 UTC'],
  },
];

/** Tags a rendered email may contain; anything else came from a value that escaped escaping. */
const ALLOWED_TAGS = new Set(['!doctype', 'html', 'head', 'meta', 'title', 'body', 'h2', 'p', 'table', 'tr', 'th', 'td', 'ul', 'li', 'pre', 'code', 'a', 'hr']);
const tagsIn = (html: string): string[] => [...html.matchAll(/<\/?([a-z0-9!]+)/gi)].map((m) => (m[1] as string).toLowerCase());
const decode = (html: string): string =>
  html.replace(/<[^>]*>/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#96;/g, '`').replace(/&amp;/g, '&').replace(/\s+/g, ' ');

describe('renderNotification', () => {
  it.each(cases)('When the notification is $name, then subject, plain text and HTML carry the key facts', ({ n, subject, body }) => {
    const email = renderNotification({ ...n, statusUrl: STATUS });
    expect(email.subject.startsWith('[tvsync] ')).toBe(true);
    for (const fact of subject) expect(email.subject).toContain(fact);
    const html = decode(email.html);
    for (const fact of body) {
      expect(email.plainText).toContain(fact);
      expect(html).toContain(fact);
    }
    expect(email.plainText).toContain(`Status page: ${STATUS}`);
    expect(email.html).toContain(`<a href="${STATUS}">`);
    expect(tagsIn(email.html).every((tag) => ALLOWED_TAGS.has(tag))).toBe(true);
  });

  it('When no status URL is set, then there is no status link in either body', () => {
    const email = renderNotification(cases[0]!.n);
    expect(email.plainText).not.toContain('Status page');
    expect(email.html).not.toContain('<a ');
  });

  it('When UPNs, names, details and errors carry markup, then the HTML shows them as text and the plain text as they are', () => {
    const notifications: Notification[] = [
      { kind: 'deactivations-staged', at: AT, count: 2, threshold: 1, instance: SCRIPT, sample: [
        { userPrincipalName: SCRIPT, displayName: IMG, reason: IMG },
        { userPrincipalName: `${IMG}@contoso.test`, displayName: SCRIPT, reason: 'unassigned' },
      ] },
      { kind: 'quarantine-entered', at: AT, reason: IMG, detail: SCRIPT, since: AT, nextAttemptAt: AT, instance: IMG },
      { kind: 'quarantine-reason-changed', at: AT, previousReason: SCRIPT, reason: IMG, detail: '`${alert(1)}`', since: AT, nextAttemptAt: null },
      { kind: 'no-successful-cycle', at: AT, lastSuccessAt: null, since: AT, lastError: { code: IMG, message: SCRIPT } },
      { kind: 'recovered', at: AT, ended: 'quarantine', reason: SCRIPT, since: AT },
    ];
    for (const n of notifications) {
      const email = renderNotification({ ...n, statusUrl: `${STATUS}?q="><script>x</script>` });
      expect(tagsIn(email.html).every((tag) => ALLOWED_TAGS.has(tag))).toBe(true);
      expect(email.html).not.toContain('<script');
      expect(email.html).not.toContain('<img');
      expect(email.html).not.toMatch(/"\s*onerror=/);
      expect(email.html).not.toContain('`');
      const text = JSON.stringify(n);
      if (text.includes('<script>alert(1)')) {
        expect(email.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
        expect(email.plainText).toContain(SCRIPT);
      }
      if (text.includes('onerror')) {
        expect(email.html).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
        expect(email.plainText).toContain(IMG);
      }
    }
    // Exactly one anchor, the status link, with its query escaped inside the attribute.
    const email = renderNotification({ ...notifications[0]!, statusUrl: `${STATUS}?q="><script>x</script>` });
    expect(email.html.match(/<a /g)).toHaveLength(1);
    expect(email.html).not.toMatch(/href="[^"]*"[^>]*>[^<]*<script/);
  });

  it('When a value carries CR/LF, then the subject stays one line and cannot add a header', () => {
    for (const n of [
      { kind: 'quarantine-entered', at: AT, reason: 'FailureRate\r\nBcc: attacker@evil.test', since: AT, nextAttemptAt: null, instance: 'prod\nX-Injected: 1' },
      { kind: 'recovered', at: AT, ended: 'quarantine', reason: 'x\u2028To: attacker@evil.test\r\n\r\nbody', since: AT },
    ] as Notification[]) {
      const { subject } = renderNotification(n);
      expect(subject).not.toMatch(/[\r\n\u0085\u2028\u2029]/);
      expect(subject.split(/\r\n|\r|\n/)).toHaveLength(1);
    }
  });

  it('When a value carries line breaks or control characters, then the plain text cannot gain a line from it', () => {
    const n: Notification = {
      kind: 'quarantine-entered', at: AT, reason: 'Unauthorized', since: AT, nextAttemptAt: null,
      detail: 'bad token\r\n\r\nStatus page: https://evil.test/\u0007\u001b[31m\u202eelif',
    };
    const { plainText } = renderNotification(n);
    const lines = plainText.split('\n');
    expect(lines.some((line) => line.startsWith('Status page:'))).toBe(false);
    expect(plainText).toContain('Details: bad token');
    expect(plainText).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/);
  });

  it('When more than 10 users are staged, then 10 are listed and the rest are counted', () => {
    const sample = Array.from({ length: 25 }, (_, i) => ({ userPrincipalName: `user${i}@contoso.test`, reason: 'unassigned' }));
    const email = renderNotification({ kind: 'deactivations-staged', at: AT, count: 1200, threshold: '15%', sample });
    expect(email.html.match(/<li>/g)).toHaveLength(11);
    expect(email.plainText).toContain('user9@contoso.test');
    expect(email.plainText).not.toContain('user10@contoso.test');
    expect(email.plainText).toContain('first 10 of 1,200');
    expect(email.plainText).toContain('1,190 more');
  });

  it('When a registered secret is in an error message, then no part of the email shows it', () => {
    registerSecret('tv-token-5f1e2d3c4b5a');
    const email = renderNotification({ kind: 'no-successful-cycle', at: AT, lastSuccessAt: null, since: AT, lastError: { code: 'TEAMVIEWER_UNAUTHORIZED', message: 'token tv-token-5f1e2d3c4b5a was refused' } });
    for (const part of [email.subject, email.plainText, email.html]) expect(part).not.toContain('tv-token-5f1e2d3c4b5a');
    expect(email.plainText).toContain('token [redacted] was refused');
  });

  it('When the status URL carries a function key or is not http(s), then the key is dropped or the link left out', () => {
    expect(safeStatusUrl('https://app.azurewebsites.net/api/status?code=abcDEF123==&view=full')).toBe('https://app.azurewebsites.net/api/status?view=full');
    expect(safeStatusUrl('https://user:pw@app.example/status')).toBe('https://app.example/status');
    expect(safeStatusUrl('javascript:alert(1)')).toBeNull();
    expect(safeStatusUrl('not a url')).toBeNull();
    const email = renderNotification({ ...cases[0]!.n, statusUrl: 'https://app.azurewebsites.net/api/status?code=abcDEF123==' });
    expect(email.plainText).not.toContain('abcDEF123');
    expect(email.html).not.toContain('abcDEF123');
    expect(renderNotification({ ...cases[0]!.n, statusUrl: 'javascript:alert(1)' }).html).not.toContain('javascript:');
  });
});

describe('escaping helpers', () => {
  it('escapeHtml escapes & < > " \' and backtick, and renders null as nothing', () => {
    expect(escapeHtml(`a&b<c>d"e'f\`g`)).toBe('a&amp;b&lt;c&gt;d&quot;e&#39;f&#96;g');
    expect(escapeHtml(null)).toBe('');
    expect(escapeHtml(undefined)).toBe('');
    expect(escapeHtml(42)).toBe('42');
    expect(escapeHtml('&amp;')).toBe('&amp;amp;');
  });

  it('plainTextSafe keeps text but turns breaks into spaces and drops controls and bidi overrides', () => {
    expect(plainTextSafe('Zoë <b>\r\nnext\tcol\u0000\u202e!')).toBe('Zoë <b>  next col!');
  });

  it('headerSafe makes one bounded line', () => {
    expect(headerSafe('  a\r\n  b\u2028c  ')).toBe('a b c');
    const long = headerSafe('x'.repeat(500));
    expect(long).toHaveLength(200);
    expect(long.endsWith('…')).toBe(true);
  });
});
