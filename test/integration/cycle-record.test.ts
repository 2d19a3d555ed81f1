/**
 * The record each finished cycle leaves for Azure Monitor (shared/cycle-record.ts), as the
 * Functions host receives it from the sync timer and as any other caller of the cycle runner
 * gets it: one information line per real cycle, parseable the way the alert rule's KQL parses it,
 * never silenced by LOG_LEVEL, with no personal data.
 */
import { InvocationContext, type LogLevel } from '@azure/functions';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { CYCLE_RECORD_PREFIX } from '../../shared/cycle-record';
import { syncTimer } from '../../shared/handlers/sync';
import { memoryLogger } from '../../shared/log';
import { emptyGroupCounts } from '../../shared/domain/model';
import { resetRuntime } from '../../shared/runtime';
import { inProcess } from '../support/in-process';
import { expectedInScope, sampleTenant } from '../support/tenant';

const harness = inProcess();
const timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };

/** What the host receives from one invocation: level and text of every line. */
function invocation() {
  const lines: Array<{ level: LogLevel; text: string }> = [];
  const context = new InvocationContext({ functionName: 'sync', logHandler: (level, ...args) => lines.push({ level, text: args.map(String).join(' ') }) });
  return { context, lines, records: () => lines.filter((l) => l.text.startsWith(CYCLE_RECORD_PREFIX)) };
}

/** The KQL of infra/app/alerts.bicep: parse_json(substring(message, strlen("tvsync.cycle "))). */
const parse = (message: string) => JSON.parse(message.slice(CYCLE_RECORD_PREFIX.length)) as Record<string, any>;

beforeEach(() => resetRuntime());
afterAll(() => resetRuntime());

describe('the cycle record', () => {
  it('When the timer runs a cycle, then the host gets exactly one information record of it, even with LOG_LEVEL=error, and none for a beat with no cycle', async () => {
    const w = await harness.world({ tenant: sampleTenant({ users: 20, groups: 2 }) });
    process.env = { ...harness.savedEnv, ...w.env, LOG_LEVEL: 'error' };
    const first = invocation();
    await syncTimer(timer, first.context);
    expect(first.records()).toHaveLength(1);
    const [line] = first.records();
    expect(line!.level).toBe('information');
    const record = parse(line!.text);
    expect(record).toEqual({
      cycleId: expect.stringMatching(/^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{4}$/),
      kind: 'initial',
      trigger: 'timer',
      result: 'succeeded',
      counts: { created: expectedInScope(w.tenant).size, updated: 0, disabled: 0, enabled: 0, linked: 0, unchanged: 0, skipped: expect.any(Number), failed: 0, staged: 0, drift: 0, groups: emptyGroupCounts() },
      imported: expect.any(Number),
      durationMs: expect.any(Number),
      errorCode: null,
    });
    expect(record.durationMs).toBeGreaterThan(0);
    // LOG_LEVEL=error silences the rest of the information lines, not the record.
    expect(first.lines.filter((l) => l.level === 'information' && !l.text.startsWith(CYCLE_RECORD_PREFIX))).toEqual([]);
    // No personal data: no user principal name, display name or object id of a user.
    for (const user of w.tenant.users) {
      expect(line!.text).not.toContain(user.userPrincipalName);
      expect(line!.text).not.toContain(user.id);
    }

    const quiet = invocation();
    await syncTimer(timer, quiet.context);
    expect(quiet.records()).toEqual([]);
  });

  it('When the CLI runs a cycle, then the same record comes out with its trigger; a dry run leaves none', async () => {
    const w = await harness.world({ tenant: sampleTenant({ users: 10, groups: 1 }) });
    const logger = memoryLogger();
    const app = await createApp(loadSettings({ env: { ...harness.savedEnv, ...w.env }, localSettingsDir: null }), { logger });
    await app.runCycle({ trigger: 'cli', dryRun: true });
    expect(logger.lines.filter((l) => l.message.startsWith(CYCLE_RECORD_PREFIX))).toEqual([]);
    const report = await app.runCycle({ trigger: 'cli' });
    const records = logger.lines.filter((l) => l.message.startsWith(CYCLE_RECORD_PREFIX));
    expect(records).toHaveLength(1);
    expect(records[0]!.level).toBe('info');
    expect(parse(records[0]!.message)).toMatchObject({ cycleId: report.cycleId, trigger: 'cli', result: 'succeeded', kind: 'initial' });
  });

  it('When a cycle fails, then its record says failed with the error code, and the timer invocation fails too', async () => {
    const w = await harness.world({ tenant: sampleTenant({ users: 10, groups: 1 }) });
    process.env = { ...harness.savedEnv, ...w.env, TEAMVIEWER_API_TOKEN: 'revoked-token-0000' };
    const run = invocation();
    await expect(syncTimer(timer, run.context)).rejects.toThrow(/TEAMVIEWER_UNAUTHORIZED/);
    expect(run.records()).toHaveLength(1);
    expect(parse(run.records()[0]!.text)).toMatchObject({ result: 'failed', errorCode: 'TEAMVIEWER_UNAUTHORIZED', trigger: 'timer' });
  });
});
