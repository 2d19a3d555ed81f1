/**
 * How many requests the TeamViewer client keeps in flight, against the emulator: it comes down
 * when TeamViewer rate-limits the token (and every call still succeeds), and it rises to
 * TEAMVIEWER_CONCURRENCY when TeamViewer does not. Calls are started the way the cycle's Applier
 * starts them: twice the maximum at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mapWithConcurrency } from '../../shared/http/pool';
import { memoryLogger } from '../../shared/log';
import { TeamViewerClient } from '../../shared/teamviewer/client';
import { startTeamViewerEmulator, type TeamViewerEmulator } from '../emulators/teamviewer';

const TOKEN = 'tv-script-token-2718281828';

describe('TeamViewer client concurrency', () => {
  const emulators: TeamViewerEmulator[] = [];
  afterEach(async () => {
    await Promise.all(emulators.splice(0).map((e) => e.close()));
  });

  async function createAll(client: TeamViewerClient, count: number, max: number): Promise<{ created: number; failed: unknown[] }> {
    const failed: unknown[] = [];
    let created = 0;
    await mapWithConcurrency(Array.from({ length: count }, (_, i) => i), max * 2, async (i) => {
      try {
        await client.createUser({ userName: `pace.${i}@contoso.com`, displayName: `Pace ${i}`, active: true });
        created++;
      } catch (error) {
        failed.push(error);
      }
    });
    return { created, failed };
  }

  it('When TeamViewer rate-limits the token, then the client halves what it has in flight, says so at info, and every create succeeds', async () => {
    const em = await startTeamViewerEmulator({ token: TOKEN, latencyMs: 20, rateLimitPerSecond: 40 });
    emulators.push(em);
    const logger = memoryLogger();
    // The production retry timing (1 s backoff base): the throttled calls must still all succeed.
    const client = new TeamViewerClient({ baseUrl: em.url, token: TOKEN, concurrency: 16, logger });

    const { created, failed } = await createAll(client, 100, 16);

    expect(failed).toEqual([]);
    expect(created).toBe(100);
    expect(em.users().filter((u) => u.userName.startsWith('pace.'))).toHaveLength(100);
    const stats = client.stats;
    expect(stats.throttled).toBeGreaterThan(0);
    expect(stats.concurrencyLowered).toBeGreaterThan(0);
    expect(em.peakInFlight()).toBeLessThanOrEqual(16);

    const lowered = logger.lines.filter((l) => l.level === 'info' && /TeamViewer is throttling this API token/.test(l.message));
    // One line per halving, and one when the pacer learned (or lowered) the rate TeamViewer accepts.
    expect(lowered.length).toBeGreaterThanOrEqual(stats.concurrencyLowered);
    expect(lowered.some((l) => typeof l.fields?.requestsPerSecond === 'number' && Number(l.fields.requestsPerSecond) <= 40)).toBe(true);
    // At 20 ms a request, 40 a second is about 1 in flight: every halving went below the start (4).
    for (const line of lowered) expect(line.fields).toMatchObject({ concurrency: expect.any(Number), maxConcurrency: 16 });
    expect(Math.max(...lowered.map((l) => Number(l.fields!.concurrency)))).toBeLessThan(stats.peakConcurrency);
    // No user name and no token in those lines (they go to Application Insights).
    expect(JSON.stringify(lowered)).not.toMatch(/pace\.|contoso/);
    expect(JSON.stringify(lowered)).not.toContain(TOKEN);
  }, 30_000);

  it('When TeamViewer does not throttle, then the client rises to TEAMVIEWER_CONCURRENCY and never above it', async () => {
    const em = await startTeamViewerEmulator({ token: TOKEN, latencyMs: 20 });
    emulators.push(em);
    const client = new TeamViewerClient({ baseUrl: em.url, token: TOKEN, concurrency: 8 });

    const { created, failed } = await createAll(client, 150, 8);

    expect(failed).toEqual([]);
    expect(created).toBe(150);
    expect(client.stats).toMatchObject({ throttled: 0, concurrency: 8, peakConcurrency: 8, concurrencyLowered: 0 });
    expect(em.peakInFlight()).toBe(8);
  }, 30_000);
});
