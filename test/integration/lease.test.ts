/**
 * The run lease against a real Azurite: one holder at a time, take-over of an expired lease only
 * (never of a live holder elsewhere, whatever its host and pid), and a holder that loses its lease
 * stops.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../shared/log';
import { StateStore } from '../../shared/state/store';
import { acquireLease, LEASE_KEY, LeaseHeldError, liveLease, type LeaseRecord } from '../../shared/sync/lease';
import { startAzurite } from '../support/azurite';

let azurite: Awaited<ReturnType<typeof startAzurite>>;
let n = 0;
const store = () => StateStore.open({ kind: 'connectionString', connectionString: azurite.connectionString }, { tablePrefix: `lease${++n}` });

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

describe('run lease', () => {
  it('When one holder has the lease, then a second is refused with who holds it, and gets it after release', async () => {
    const s = await store();
    const first = await acquireLease(s, { purpose: 'timer cycle', logger: memoryLogger() });
    const error = await acquireLease(s, { purpose: 'cli cycle', logger: memoryLogger() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseHeldError);
    expect((error as LeaseHeldError).message).toMatch(/timer cycle/);
    expect(await liveLease(s)).toMatchObject({ purpose: 'timer cycle' });
    await first.release();
    expect(await liveLease(s)).toBeNull();
    const second = await acquireLease(s, { purpose: 'cli cycle', logger: memoryLogger() });
    await second.release();
  });

  it('When ten processes race for a free lease, then exactly one wins', async () => {
    const s = await store();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => acquireLease(s, { purpose: 'race', logger: memoryLogger() })));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof LeaseHeldError)).toBe(true);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLease>>>).value.release();
  });

  it('When a lease has expired, then it is taken over, and the old holder cannot release the new one', async () => {
    const s = await store();
    let clock = Date.parse('2026-11-28T12:00:00Z');
    const now = () => new Date(clock);
    const logger = memoryLogger();
    // The old holder stops renewing (its host froze) while time passes.
    const stale = await acquireLease(s, { purpose: 'old', logger, now, ttlMs: 60_000, renewMs: 3_600_000 });
    clock += 61_000;
    const taker = await acquireLease(s, { purpose: 'new', logger, now });
    expect((await liveLease(s, now()))?.purpose).toBe('new');
    expect(logger.lines.some((l) => /taking over an expired lease/.test(l.message))).toBe(true);
    await stale.release();
    expect((await liveLease(s, now()))?.purpose).toBe('new');
    await taker.release();
  });

  it('When the holder named this host and a pid that no longer runs, then its lease is still not taken over before it expires', async () => {
    const s = await store();
    const child = spawn(process.execPath, ['-e', 'setTimeout(()=>{}, 10)']);
    const deadPid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    // Another container with the same hostname, or this host before a pid was reused: no proof of death.
    for (const holder of [`${os.hostname()}/${deadPid}/dead01`, 'fedcba9876543210.3']) {
      await s.putMeta<LeaseRecord>(LEASE_KEY, { holder, host: os.hostname(), pid: deadPid, purpose: 'cli cycle', acquiredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString() });
      const error = await acquireLease(s, { purpose: 'resume', logger: memoryLogger() }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseHeldError);
      await s.deleteMeta(LEASE_KEY);
    }
  });

  it('When a lease is taken, then its holder is a random instance id, with host and pid recorded for people only', async () => {
    const s = await store();
    const first = await acquireLease(s, { purpose: 'one', logger: memoryLogger() });
    await first.release();
    const second = await acquireLease(s, { purpose: 'two', logger: memoryLogger() });
    await second.release();
    expect(first.record).toMatchObject({ host: os.hostname(), pid: process.pid, holder: expect.stringMatching(/^[0-9a-f]{16}\.\d+$/) });
    expect(first.record.holder.split('.')[0]).toBe(second.record.holder.split('.')[0]);
    expect(first.record.holder).not.toBe(second.record.holder);
    expect(first.record.holder).not.toContain(os.hostname());
  });

  it('When this very process let go of a lease whose release failed, then it takes it over at once', async () => {
    const s = await store();
    const lease = await acquireLease(s, { purpose: 'cli cycle', logger: memoryLogger() });
    // The release's conditional delete misses (the row's ETag changed): the row stays behind.
    const row = await s.getMeta<LeaseRecord>(LEASE_KEY);
    await s.putMeta<LeaseRecord>(LEASE_KEY, row!.value, row!.etag);
    await lease.release();
    expect((await liveLease(s))?.holder).toBe(lease.record.holder);
    const logger = memoryLogger();
    const next = await acquireLease(s, { purpose: 'next cycle', logger });
    expect(logger.lines.some((l) => /this process took and let go of/.test(l.message))).toBe(true);
    await next.release();
    expect(await liveLease(s)).toBeNull();
  });

  it('When someone else takes the lease over, then the holder aborts at its next renewal', async () => {
    const s = await store();
    const lease = await acquireLease(s, { purpose: 'slow', logger: memoryLogger(), renewMs: 50 });
    const current = await s.getMeta<LeaseRecord>(LEASE_KEY);
    await s.putMeta<LeaseRecord>(LEASE_KEY, { ...current!.value, holder: 'other/1/x' }, current!.etag);
    await new Promise((r) => setTimeout(r, 300));
    expect(lease.signal.aborted).toBe(true);
    expect((lease.signal.reason as { code: string }).code).toBe('LEASE_LOST');
    await lease.release();
    expect((await liveLease(s))?.holder).toBe('other/1/x'); // release never deletes someone else's lease
  });
});
