/**
 * Directory text is hostile on its way to the operator's terminal: display names, user principal
 * names and the enterprise application's name here carry escape sequences (clear screen, an OSC 8
 * hyperlink, a window title), BEL, C1 controls, bidi overrides and a newline that tries to forge a
 * line of output. Every command that prints them, through the real bin, prints none of that raw;
 * --json keeps the values exact (JSON.parse gives them back) with the dangerous characters escaped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedInScope, sampleTenant } from '../support/tenant';
import { runCli, startWorld, type CliRun, type World } from '../support/world';

// TeamViewer takes names of at most 50 characters: this one is 49.
const HOSTILE_NAME = 'E\u001b]8;;https://evil.example\u0007clk\u001b]8;;\u0007\u202eoe\n  FAILED\u009b';
const HOSTILE_UPN = 'mallory\u202e\u2066@contoso.example\u001b[31m';
const HOSTILE_APP = 'TeamViewer\u001b[2J\u001b]0;pwned\u0007\u202e\u0085\u200f\u061c';

/** Anything a terminal acts on, apart from the line ends of our own lines. */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

let world: World;
let env: Record<string, string>;

function expectSafe(run: CliRun, what: string): void {
  // CSV ends its own lines with CRLF (RFC 4180); any other CR would be a value's.
  const text = (run.stdout + run.stderr).replace(/\r\n/g, '\n');
  expect(text.match(UNSAFE)?.[0], `${what} printed a control character`).toBeUndefined();
  expect(text, what).not.toContain('evil.example');
  expect(text.split('\n').some((line) => line.startsWith('  FAILED')), `${what} let a value forge a line`).toBe(false);
}

beforeAll(async () => {
  const tenant = sampleTenant({ users: 14, groups: 2 });
  const inScope = tenant.users.filter((u) => expectedInScope(tenant).has(u.id));
  inScope[0]!.displayName = HOSTILE_NAME;
  inScope[1]!.userPrincipalName = HOSTILE_UPN;
  tenant.servicePrincipals[0]!.displayName = HOSTILE_APP;
  world = await startWorld({ tenant });
  // One deactivation per cycle at most: unassigning the hostile users later holds them back.
  env = { ...world.env, DEACTIVATION_THRESHOLD: '1' };
});
afterAll(async () => {
  await world?.close();
});

describe('tvsync output with hostile directory values', () => {
  it('When sync, status and logs print them, then no escape sequence, control or bidi character reaches the terminal, and no line is forged', async () => {
    const sync = await runCli(['sync'], env);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toContain('clk'); // the text is shown, its sequences are not
    expect(sync.stdout).toContain('\\u202eoe');
    expectSafe(sync, 'tvsync sync');
    expectSafe(await runCli(['status'], env), 'tvsync status');
    for (const format of ['table', 'csv']) {
      const logs = await runCli(['logs', '--format', format], env);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toContain(format === 'csv' ? 'clk' : 'mallory\\u202e\\u2066@contoso.example');
      expectSafe(logs, `tvsync logs --format ${format}`);
    }
  });

  it('When --json prints them, then JSON.parse gives the exact values back and the raw text is still safe', async () => {
    const logs = await runCli(['logs', '--format', 'json'], env);
    expect(logs.stdout).not.toMatch(/[\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u);
    const records = JSON.parse(logs.stdout) as Array<{ userPrincipalName: string; modifiedProperties: Array<{ name: string; new: unknown }> }>;
    expect(records.some((r) => r.modifiedProperties.some((p) => p.name === 'displayName' && p.new === HOSTILE_NAME))).toBe(true);
    expect(records.some((r) => r.userPrincipalName === HOSTILE_UPN)).toBe(true);
    const status = await runCli(['status', '--json'], env);
    expect(JSON.parse(status.stdout).health).toBe('healthy');
  });

  it('When test-connection names the enterprise application and provision explains a user, then their output is safe too', async () => {
    const check = await runCli(['test-connection'], env);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('TeamViewer\\u202e\\u0085');
    expectSafe(check, 'tvsync test-connection');
    const checkJson = await runCli(['test-connection', '--json'], env);
    expect((JSON.parse(checkJson.stdout) as { checks: Array<{ detail: string }> }).checks.some((c) => c.detail.includes(HOSTILE_APP))).toBe(true);
    const provision = await runCli(['provision', HOSTILE_UPN, '--dry-run'], env);
    expect(provision.stdout).toMatch(/matching\s+ok/);
    expectSafe(provision, 'tvsync provision');
  });

  it('When deactivations of hostile users are held back and released, then sync and allow-deactivations list them safely', async () => {
    const hostile = world.tenant.users.filter((u) => u.displayName === HOSTILE_NAME || u.userPrincipalName === HOSTILE_UPN).map((u) => u.id);
    world.tenant.assignments = world.tenant.assignments.filter((a) => !hostile.includes(a.principalId));
    for (const group of world.tenant.groups) group.members = group.members.filter((m) => !hostile.includes(m));
    const held = await runCli(['sync'], env);
    expect(held.stdout).toMatch(/held back by the accidental-deletion guard/);
    expectSafe(held, 'tvsync sync (held back)');
    const allow = await runCli(['allow-deactivations'], env);
    expect(allow.code, allow.stderr).toBe(0);
    expect(allow.stdout).toContain('mallory\\u202e\\u2066@contoso.example');
    expectSafe(allow, 'tvsync allow-deactivations');
  });
});
