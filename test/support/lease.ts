/**
 * Stands for the minute after a process died holding the run lease: a lease is never taken over
 * before it expires (shared/sync/lease.ts), so a test that kills a process moves the expiry of the
 * lease it left into the past instead of waiting LEASE_TTL_MS.
 */
import { StateStore } from '../../shared/state/store';
import { LEASE_KEY, type LeaseRecord } from '../../shared/sync/lease';

/** Returns the lease that was left (null when there was none). */
export async function expireLease(env: Record<string, string>): Promise<LeaseRecord | null> {
  const store = await StateStore.open({ kind: 'connectionString', connectionString: env.AzureWebJobsStorage! }, { tablePrefix: env.STATE_TABLE_PREFIX });
  const row = await store.getMeta<LeaseRecord>(LEASE_KEY);
  if (!row) return null;
  await store.putMeta<LeaseRecord>(LEASE_KEY, { ...row.value, expiresAt: new Date(Date.now() - 1_000).toISOString() }, row.etag);
  return row.value;
}
