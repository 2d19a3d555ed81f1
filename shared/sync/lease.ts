/**
 * The run lease: one cycle at a time across the timer, the CLI and the operator endpoints, on
 * any number of hosts, using one row in the Meta table and ETag-conditional writes.
 *
 * Invariants:
 * - Only a writer holding the row's current ETag can renew or release it; every take-over is a
 *   conditional write, so two processes can never both believe they hold the lease.
 * - A holder is named by a random instance id made once per process, plus a counter per lease.
 *   Hostname and pid are recorded for people only: containers share hostnames, and a pid is
 *   reused in another container or after a restart, so neither says whether a holder lives.
 * - A lease held elsewhere is never taken over before it expires (LEASE_TTL_MS after its last
 *   renewal): a holder that died frees it within a minute, a live one keeps renewing it. The one
 *   exception is provably dead: a lease this very process took and has since let go of (its
 *   release failed), recognised by this process's instance id.
 * - A holder that fails to renew (someone took over, or storage is unreachable past the expiry)
 *   must stop writing: `signal` is aborted and the cycle stops before its next TeamViewer write.
 */
import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from '../log';

/** This process, for as long as it runs: never reused, never derived from the host. */
const INSTANCE_ID = randomBytes(8).toString('hex');
let leasesTaken = 0;
/** Holder names of the leases this process holds now. */
const holding = new Set<string>();

export const LEASE_KEY = 'lease';
export const LEASE_TTL_MS = 60_000;
export const LEASE_RENEW_MS = 20_000;

export interface LeaseRecord {
  /** `<instance id>.<n>`: the process (random, per process) and which of its leases. */
  holder: string;
  /** For people only: where the holder said it runs (never used to decide anything). */
  host?: string;
  pid?: number;
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
    super(`another cycle is running (${lease.purpose}, held by ${describeHolder(lease)} since ${lease.acquiredAt}, lease valid until ${lease.expiresAt}; if that process is gone, the lease is free then)`);
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
  const holder = `${INSTANCE_ID}.${++leasesTaken}`;
  const fresh = (): LeaseRecord => ({ holder, host: os.hostname(), pid: process.pid, purpose: options.purpose, acquiredAt: now().toISOString(), expiresAt: new Date(now().getTime() + ttl).toISOString() });

  const current = await state.getMeta<LeaseRecord>(LEASE_KEY);
  let record = fresh();
  let etag: string;
  try {
    if (!current) {
      etag = await state.putMeta(LEASE_KEY, record, null);
    } else if (Date.parse(current.value.expiresAt) <= now().getTime()) {
      options.logger.warn(`taking over an expired lease left by ${current.value.holder} (${current.value.purpose}, expired ${current.value.expiresAt})`);
      etag = await state.putMeta(LEASE_KEY, record, current.etag);
    } else if (leftByThisProcess(current.value.holder)) {
      options.logger.warn(`taking over a lease this process took and let go of (${current.value.purpose}): its release had failed`);
      etag = await state.putMeta(LEASE_KEY, record, current.etag);
    } else {
      throw new LeaseHeldError(current.value);
    }
  } catch (err) {
    if (!isConflict(err)) throw err;
    const winner = await state.getMeta<LeaseRecord>(LEASE_KEY);
    throw new LeaseHeldError(winner?.value ?? { holder: 'another process', purpose: 'a cycle', acquiredAt: now().toISOString(), expiresAt: now().toISOString() });
  }

  holding.add(holder);
  const controller = new AbortController();
  // Every write of the cycle listens to the lease (one listener per request in flight): not a leak.
  setMaxListeners(0, controller.signal);
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
      holding.delete(holder);
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

/** True when `holder` is a lease this process took and no longer holds (a release that failed). */
function leftByThisProcess(holder: string): boolean {
  return holder.startsWith(`${INSTANCE_ID}.`) && !holding.has(holder);
}

function describeHolder(lease: LeaseRecord): string {
  return lease.host ? `${lease.host}/${lease.pid ?? '?'} (instance ${lease.holder})` : lease.holder;
}
