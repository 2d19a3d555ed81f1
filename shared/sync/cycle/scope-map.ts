/**
 * Scope and map: who is entitled to a TeamViewer account and what it should hold (scoping filters
 * and attribute mappings, shared/sync/mapping.ts), and why linked users Entra no longer returned
 * are gone.
 *
 * Invariants:
 * - Mapping one user never throws: a user whose mapping fails carries the error and fails alone.
 * - A linked user Entra no longer returned is soft-deleted only when the directory's deleted items
 *   say so (then deactivated even with SKIP_OUT_OF_SCOPE_DELETIONS); otherwise unassigned.
 */
import type { DesiredUser } from '../mapping';
import { mapUser } from '../mapping';
import type { Snapshot } from './read';
import type { CycleRun } from './run';

export interface Scoped {
  /** Every user read, scoped and mapped. */
  desired: DesiredUser[];
  /** Why linked users that were not read are gone, by Entra object id (absent: unassigned). */
  goneReasons: Map<string, string>;
}

export async function scopeAndMap(run: CycleRun, snapshot: Snapshot): Promise<Scoped> {
  run.progress('planning');
  const desired = snapshot.users.map((u) => mapUser(u, run.config));
  const read = new Set(snapshot.users.map((u) => u.id.toLowerCase()));
  const unseen = snapshot.links.filter((l) => !read.has(l.entraId.toLowerCase())).map((l) => l.entraId);
  const deleted = unseen.length > 0 ? await run.deps.entra.readDeletedUserIds(unseen, { signal: run.deadline.reading }) : new Set<string>();
  const goneReasons = new Map([...deleted].map((id) => [id, 'deleted in Entra ID (soft-deleted: restorable for 30 days)']));
  return { desired, goneReasons };
}
