/**
 * Hostile text on its way to a terminal (shared/text-safety.ts) and into email plain text
 * (shared/notify/escape.ts): what each kind of control does, and that none survives.
 */
import { describe, expect, it } from 'vitest';
import { plainTextSafe } from '../../shared/notify/escape';
import { renderNotification, type Notification } from '../../shared/notify/templates';
import { forTerminal, terminalJson, terminalSafe } from '../../shared/text-safety';

const BIDI = ['\u200e', '\u200f', '\u061c', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'];

describe('terminalSafe', () => {
  it.each<[string, string, string]>([
    ['clear screen (CSI)', 'a\u001b[2Jb', 'ab'],
    ['colour with parameters (CSI)', '\u001b[1;31mred\u001b[0m', 'red'],
    ['a hyperlink that hides its target (OSC 8, BEL)', '\u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007', 'click'],
    ['a hyperlink ended by ST', '\u001b]8;;https://evil.example\u001b\\click\u001b]8;;\u001b\\', 'click'],
    ['the window title (OSC 0)', '\u001b]0;pwned\u0007name', 'name'],
    ['an unterminated OSC swallows the rest', 'name\u001b]0;pwned', 'name'],
    ['a device control string (DCS)', 'x\u001bPq#0;2;0;0;0\u001b\\y', 'xy'],
    ['terminal reset (ESC c)', 'x\u001bcy', 'xy'],
    ['charset switch (ESC ( 0)', 'x\u001b(0y', 'xy'],
    ['C1 CSI (U+009B)', 'x\u009b2Jy', 'xy'],
    ['C1 OSC (U+009D) up to C1 ST', 'x\u009d0;t\u009cy', 'xy'],
    ['a bell', 'x\u0007y', 'x\\u0007y'],
    ['a newline that would forge a line', 'ann\n  FAILED bob', 'ann\\u000a  FAILED bob'],
    ['a carriage return that would overwrite the line', 'ok\rFAILED', 'ok\\u000dFAILED'],
    ['a tab', 'a\tb', 'a\\u0009b'],
    ['DEL and NEL', 'a\u007fb\u0085c', 'a\\u007fb\\u0085c'],
    ['a line separator', 'a\u2028b', 'a\\u2028b'],
    ['right-to-left override', 'user\u202egnp.exe', 'user\\u202egnp.exe'],
    ['plain text, accents and CJK', 'Zoë 山田 <b>', 'Zoë 山田 <b>'],
  ])('%s', (_what, input, expected) => {
    expect(terminalSafe(input)).toBe(expected);
  });

  it('When any bidi control is in a value, then it is shown as an escape, never passed on', () => {
    for (const ch of BIDI) expect(terminalSafe(`a${ch}b`)).toBe(`a\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}b`);
  });

  it('When a whole document is made safe, then every string in it is, and numbers, booleans and null are kept', () => {
    const doc = { name: 'x\u001b[2J', count: 3, ok: true, none: null, list: [{ upn: 'a\u202e' }] };
    expect(forTerminal(doc)).toEqual({ name: 'x', count: 3, ok: true, none: null, list: [{ upn: 'a\\u202e' }] });
    expect(doc.name).toBe('x\u001b[2J');
  });

  it('When JSON is written for a terminal, then it parses back to the same value and holds no raw control', () => {
    const value = { name: `a\u001b]8;;x\u0007\u009b\u202e\u2028${BIDI.join('')}` };
    const text = terminalJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u);
  });

  it('When a value is long and full of escape starts, then it is handled in linear time', () => {
    const value = '\u001b]'.repeat(50_000) + '\u0007x' + '\u001b['.repeat(50_000);
    const started = performance.now();
    expect(terminalSafe(value)).toBe('x');
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('email plain text', () => {
  it('When a value carries bidi marks, embeddings, overrides or isolates, then plainTextSafe drops every one', () => {
    expect(plainTextSafe(`ann${BIDI.join('')}@contoso.example`)).toBe('ann@contoso.example');
  });

  it('When a held-back user\'s name carries bidi controls, then neither the plain text nor the HTML of the email holds them', () => {
    const sample = [{ userPrincipalName: `admin${BIDI.join('')}@contoso.example`, reason: 'unassigned\u200f' }];
    const email = renderNotification({ kind: 'deactivations-staged', at: '2026-11-28T21:00:00Z', count: 1, threshold: '15%', sample } as Notification);
    for (const text of [email.plainText, email.html, email.subject]) {
      expect(text).not.toMatch(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u);
    }
    expect(email.plainText).toContain('admin@contoso.example');
  });
});
