/**
 * The accidental-deletion guard's state in storage: one meta row (GUARD_KEY) and the id sets it
 * names (the held users, the allowed users), which may hold many thousands of Entra object ids.
 *
 * Invariants:
 * - The meta row is the commit point. A set is written whole before the row that names it is saved
 *   (ETag-conditional), so whoever finds a set named finds all of it; a set named but unreadable is
 *   STATE_CORRUPT, never "fewer users".
 * - A set is deleted only by the writer whose saved row stopped naming it. A set nobody names (its
 *   writer crashed or lost the race for the row) is swept once it is an hour old, long after any
 *   writer could still be about to name it.
 * - allow-deactivations allows the staged set the row names at that moment, plus whatever an
 *   earlier allowance released that no cycle has applied yet: nothing that was not staged.
 */
import type { Logger } from '../log';
import { EMPTY_GUARD_STATE, GUARD_KEY, referencedSets, stagedAllowed, type GuardState, type StagedDeactivations } from './guard';

/** What the guard needs from state (StateStore implements it). */
export interface GuardStore {
  getMeta<T>(key: string): Promise<{ value: T; etag: string } | null>;
  putMeta<T>(key: string, value: T, etag?: string | null): Promise<string>;
  newIdSetId(at?: Date): string;
  putIdSet(setId: string, ids: readonly string[]): Promise<void>;
  getIdSet(setId: string): Promise<string[]>;
  listIdSets(): Promise<string[]>;
  idSetCreatedAt(setId: string): Date;
  deleteIdSet(setId: string): Promise<void>;
}

/** An unnamed set younger than this may still be about to be named by its writer. */
const ABANDONED_AFTER_MS = 60 * 60_000;

export async function readGuard(state: GuardStore): Promise<{ value: GuardState; etag: string | null }> {
  const row = await state.getMeta<GuardState>(GUARD_KEY);
  return { value: { ...EMPTY_GUARD_STATE, ...row?.value }, etag: row?.etag ?? null };
}

/** The lower-case object ids of a set, checked against the count the row recorded. */
export async function readIds(state: GuardStore, setId: string, count?: number): Promise<Set<string>> {
  const ids = new Set((await state.getIdSet(setId)).map((id) => id.toLowerCase()));
  if (count !== undefined && ids.size !== count) {
    throw Object.assign(new Error(`the guard's id set ${setId} holds ${ids.size} users where ${count} were recorded`), { code: 'STATE_CORRUPT' });
  }
  return ids;
}

/**
 * Saves `next` over the row read with `etag`, after writing `newSet`; then deletes the sets only
 * `previous` named. A lost condition throws STATE_CONFLICT (the new set is dropped again).
 */
export async function commitGuard(
  state: GuardStore,
  change: { previous: GuardState; next: GuardState; etag: string | null; newSet?: { setId: string; ids: string[] } | null },
  logger: Logger,
): Promise<string> {
  if (change.newSet) await state.putIdSet(change.newSet.setId, change.newSet.ids);
  let etag: string;
  try {
    etag = await state.putMeta(GUARD_KEY, change.next, change.etag);
  } catch (err) {
    if (change.newSet) await state.deleteIdSet(change.newSet.setId).catch(() => undefined);
    throw err;
  }
  const keep = referencedSets(change.next);
  for (const setId of referencedSets(change.previous)) {
    if (!keep.has(setId)) await state.deleteIdSet(setId).catch((err) => logger.warn(`could not delete the guard's old id set ${setId} (swept later): ${(err as Error).message}`));
  }
  await sweepAbandonedSets(state, keep, logger);
  return etag;
}

async function sweepAbandonedSets(state: GuardStore, keep: ReadonlySet<string>, logger: Logger): Promise<void> {
  try {
    const now = Date.now();
    for (const setId of await state.listIdSets()) {
      if (!keep.has(setId) && now - state.idSetCreatedAt(setId).getTime() > ABANDONED_AFTER_MS) await state.deleteIdSet(setId);
    }
  } catch (err) {
    logger.warn(`could not sweep the guard's abandoned id sets (tried again later): ${(err as Error).message}`);
  }
}

export class GuardError extends Error {
  constructor(readonly code: 'GUARD_SET_NOT_RECORDED' | 'STATE_CONFLICT', message: string) {
    super(message);
    this.name = 'GuardError';
  }
}

/**
 * allow-deactivations: releases the staged set as the row names it now, for the next cycle.
 * Null when nothing is staged.
 */
export async function allowStaged(state: GuardStore, by: string, logger: Logger, now: () => Date = () => new Date()): Promise<StagedDeactivations | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const { value, etag } = await readGuard(state);
    const staged = value.staged;
    if (!staged) return null;
    if (!staged.setId) {
      throw new GuardError('GUARD_SET_NOT_RECORDED', 'these deactivations were held back by an older version of tvsync, which did not record every user held; the next cycle records them again (run "tvsync sync"), then allow them');
    }
    // An earlier allowance whose deactivations a cycle has not all applied stays allowed too.
    const earlier = value.allowance?.setId && !stagedAllowed(value) ? value.allowance : null;
    let newSet: { setId: string; ids: string[] } | null = null;
    let setId = staged.setId;
    let count = staged.count;
    if (earlier?.setId && earlier.setId !== staged.setId) {
      const ids = new Set([...(await readIds(state, earlier.setId, earlier.count)), ...(await readIds(state, staged.setId, staged.count))]);
      setId = state.newIdSetId(now());
      count = ids.size;
      newSet = { setId, ids: [...ids].sort() };
    } else if (value.allowance?.setId && stagedAllowed(value)) {
      // Allowed again: the same users, a fresh grant (the next heartbeat runs a cycle for it).
      setId = value.allowance.setId;
      count = value.allowance.count ?? staged.count;
    }
    const next: GuardState = {
      ...value,
      allowance: { grantedAt: now().toISOString(), by, setId, count, stagedSetId: staged.setId, ...(staged.inScope !== undefined ? { reviewedInScope: staged.inScope } : {}) },
    };
    try {
      await commitGuard(state, { previous: value, next, etag, newSet }, logger);
      logger.warn(`deactivations allowed by ${by}: ${staged.count} held back since ${staged.since}${count > staged.count ? ` (and ${count - staged.count} allowed earlier, not yet applied)` : ''} will be applied by the next cycle`);
      return staged;
    } catch (err) {
      if ((err as { code?: string }).code !== 'STATE_CONFLICT') throw err;
    }
  }
  throw new GuardError('STATE_CONFLICT', 'the deactivation guard kept changing while it was being updated; try again');
}
