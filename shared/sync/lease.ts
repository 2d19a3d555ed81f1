/**
 * The run lease: one cycle at a time across the timer, the CLI and the operator endpoints, on
 * any number of hosts, using one row in the Meta table and ETag-conditional writes.
 *
 * Invariants:
 * - Only a writer holding the row's current ETag can renew or release it; every take-over is a
 *   conditional write, so two processes can never both believe they hold the lease.
 * - The lease is short (LEASE_TTL_MS) and renewed while work goes on; a lease left by a process
 *   that died expires and is taken over within about a minute — at once when the dead holder
 *   was a process on this same host (its pid no longer exists).
 * - A holder that fails to renew (someone took over, or storage is unreachable past the expiry)
 *   must stop writing: `signal` is aborted and the cycle stops before its next TeamViewer write.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from '../log';

export const LEASE_KEY = 'lease';
export const LEASE_TTL_MS = 60_000;
export const LEASE_RENEW_MS = 20_000;

export interface LeaseRecord {
  holder: string;
  purpose: string;
  acquiredAt: string;
  expiresAt: string;
}

/** What the lease needs from state (StateStore implements it). */
export interface LeaseState {
  getMeta<T>(key: string): Promise<{ value: T; etag: string } | null>;
  putMeta<T>(key: string, value: T, etag?: string | null): Promise<string>;
  deleteMeta(key: string, etag?: string): Promise<void>;
}

export class LeaseHeldError extends Error {
  readonly code = 'CYCLE_ALREADY_RUNNING';
  constructor(readonly lease: LeaseRecord) {
    super(`another cycle is running (${lease.purpose}, held by ${lease.holder} since ${lease.acquiredAt}, lease valid until ${lease.expiresAt})`);
    this.name = 'LeaseHeldError';
  }
}

const isConflict = (err: unknown) => (err as { code?: string }).code === 'STATE_CONFLICT';

export interface HeldLease {
  record: LeaseRecord;
  /** Aborted when the lease is lost: stop writing. */
  signal: AbortSignal;
  release(): Promise<void>;
}

export interface AcquireOptions {
  purpose: string;
  logger: Logger;
  now?: () => Date;
  ttlMs?: number;
  renewMs?: number;
}

/** Takes the lease or throws LeaseHeldError; a held lease renews itself until released. */
export async function acquireLease(state: LeaseState, options: AcquireOptions): Promise<HeldLease> {
  const now = options.now ?? (() => new Date());
  const ttl = options.ttlMs ?? LEASE_TTL_MS;
  const holder = `${os.hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  const fresh = (): LeaseRecord => ({ holder, purpose: options.purpose, acquiredAt: now().toISOString(), expiresAt: new Date(now().getTime() + ttl).toISOString() });

  const current = await state.getMeta<LeaseRecord>(LEASE_KEY);
  let record = fresh();
  let etag: string;
  try {
    if (!current) {
      etag = await state.putMeta(LEASE_KEY, record, null);
    } else if (Date.parse(current.value.expiresAt) <= now().getTime()) {
      options.logger.warn(`taking over an expired lease left by ${current.value.holder} (${current.value.purpose}, expired ${current.value.expiresAt})`);
      etag = await state.putMeta(LEASE_KEY, record, current.etag);
    } else if (holderIsDeadHere(current.value.holder)) {
      options.logger.warn(`taking over the lease of ${current.value.holder} (${current.value.purpose}): that process no longer runs on this host`);
      etag = await state.putMeta(LEASE_KEY, record, current.etag);
    } else {
      throw new LeaseHeldError(current.value);
    }
  } catch (err) {
    if (!isConflict(err)) throw err;
    const winner = await state.getMeta<LeaseRecord>(LEASE_KEY);
    throw new LeaseHeldError(winner?.value ?? { holder: 'another process', purpose: 'a cycle', acquiredAt: now().toISOString(), expiresAt: now().toISOString() });
  }

  const controller = new AbortController();
  let released = false;
  let renewing: Promise<void> = Promise.resolve();
  const renew = async () => {
    if (released || controller.signal.aborted) return;
    const next = { ...record, expiresAt: new Date(now().getTime() + ttl).toISOString() };
    try {
      etag = await state.putMeta(LEASE_KEY, next, etag);
      record = next;
    } catch (err) {
      if (isConflict(err)) {
        controller.abort(Object.assign(new Error('the run lease was taken over by another process; this cycle stopped writing'), { code: 'LEASE_LOST' }));
        options.logger.error('lost the run lease: stopping before the next write');
      } else if (Date.parse(record.expiresAt) <= now().getTime()) {
        controller.abort(Object.assign(new Error(`could not renew the run lease before it expired: ${(err as Error).message}`), { code: 'LEASE_LOST' }));
        options.logger.error('could not renew the run lease before it expired: stopping before the next write');
      } else {
        options.logger.warn(`could not renew the run lease; will retry: ${(err as Error).message}`);
      }
    }
  };
  const timer = setInterval(() => {
    renewing = renewing.then(renew);
  }, options.renewMs ?? LEASE_RENEW_MS);
  timer.unref();

  return {
    get record() {
      return record;
    },
    signal: controller.signal,
    async release() {
      clearInterval(timer);
      await renewing;
      if (released) return;
      released = true;
      if (controller.signal.aborted) return;
      await state.deleteMeta(LEASE_KEY, etag).catch((err) => {
        if (!isConflict(err)) options.logger.warn(`could not release the run lease (it expires by itself): ${(err as Error).message}`);
      });
    },
  };
}

/** The lease as it stands, when one is live (for status and for a CLI waiting its turn). */
export async function liveLease(state: LeaseState, now: Date = new Date()): Promise<LeaseRecord | null> {
  const current = await state.getMeta<LeaseRecord>(LEASE_KEY);
  return current && Date.parse(current.value.expiresAt) > now.getTime() ? current.value : null;
}

/** True when `holder` names a process on this host that is no longer running (it crashed). */
function holderIsDeadHere(holder: string): boolean {
  const [host, pidText] = holder.split('/');
  const pid = Number(pidText);
  if (host !== os.hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
