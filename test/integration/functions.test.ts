/**
 * The Functions entry points, called as the host would call them (@azure/functions runs in test
 * mode here: registrations are skipped, handlers are plain exports), against Azurite and the
 * emulators. Settings reach the app only through process.env, as in Azure.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { statusHandler } from '../../shared/handlers/status';
import { syncTimer } from '../../shared/handlers/sync';
import { resetRuntime } from '../../shared/runtime';
import { expectedInScope, sampleTenant } from '../support/tenant';
import { startWorld, type World } from '../support/world';

let world: World;
const saved = { ...process.env };

beforeAll(async () => {
  world = await startWorld({ tenant: sampleTenant({ users: 40, groups: 2 }) });
});
afterAll(async () => {
  process.env = saved;
  await world?.close();
});
beforeEach(() => {
  process.env = { ...saved, ...world.env };
  resetRuntime();
});

const timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
const statusRequest = () => new HttpRequest({ url: 'http://localhost:7071/api/status', method: 'GET' });

describe('Functions handlers', () => {
  it('When the first beat fires, then a cycle runs; a beat right after does nothing; status shows it healthy', async () => {
    const context = new InvocationContext({ functionName: 'sync' });
    await syncTimer(timer, context);
    expect(world.teamViewer.users().filter((u) => u.createdBy === 'scim')).toHaveLength(expectedInScope(world.tenant).size);

    world.teamViewer.resetRequests();
    await syncTimer(timer, new InvocationContext({ functionName: 'sync' }));
    expect(world.teamViewer.requests).toHaveLength(0);

    const response = await statusHandler(statusRequest(), new InvocationContext({ functionName: 'status' }));
    expect(response.status).toBe(200);
    const doc = response.jsonBody as Record<string, any>;
    expect(doc.health).toBe('healthy');
    expect(doc.lastCycle).toMatchObject({ kind: 'initial', result: 'succeeded', trigger: 'timer', counts: { created: expectedInScope(world.tenant).size, failed: 0 } });
    expect(doc.currentCycle).toBeNull();
    expect(Date.parse(doc.nextRunAt) - Date.parse(doc.lastCycle.startedAt)).toBe(40 * 60_000);
    expect(doc.quarantine).toBeNull();
    expect(doc.recentFailures).toEqual([]);
    expect(JSON.stringify(doc)).not.toContain(world.teamViewer.token);
  });

  it('When settings are wrong, then status answers 503 naming every bad setting and the timer fails loudly', async () => {
    process.env = { ...saved, ...world.env, ENTRA_SERVICE_PRINCIPAL_ID: 'x', SYNC_INTERVAL_MINUTES: '0' };
    const response = await statusHandler(statusRequest(), new InvocationContext({ functionName: 'status' }));
    expect(response.status).toBe(503);
    const body = response.jsonBody as { health: string; error: { code: string; message: string } };
    expect(body.health).toBe('disabled');
    expect(body.error.code).toBe('SETTINGS_INVALID');
    expect(body.error.message).toContain('ENTRA_SERVICE_PRINCIPAL_ID');
    expect(body.error.message).toContain('SYNC_INTERVAL_MINUTES');
    await expect(syncTimer(timer, new InvocationContext({ functionName: 'sync' }))).rejects.toThrow(/ENTRA_SERVICE_PRINCIPAL_ID/);
  });
});
