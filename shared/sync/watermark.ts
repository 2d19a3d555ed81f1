/**
 * The incremental-cycle watermark: where Graph's delta queries resume, and what the assignment
 * set looked like, so an incremental cycle can tell in a handful of requests whether anything in
 * Entra changed since the last good cycle.
 *
 * Invariants:
 * - Delta rounds are started (or resumed) BEFORE the full read they accompany, so a change that
 *   lands during a cycle is reported again by the next one, never lost between the two.
 * - A cycle skips the full read only when the last cycle succeeded outright, the watermark was
 *   made under the same configuration, no deactivation is staged or allowed, nested groups are not
 *   expanded (group delta only sees direct members), the last full read is less than
 *   FULL_READ_EVERY_MS old, and every delta (users, group members, assignment fingerprint) is
 *   empty. Anything else is a full read: a delta is used to decide *whether* to read, never as a
 *   replacement for reading, so a wrong delta can cost requests but never a user.
 */
export const WATERMARK_KEY = 'watermark';

/** A full read happens at least this often, which also puts back changes made by hand in TeamViewer. */
export const FULL_READ_EVERY_MS = 24 * 60 * 60_000;

export interface Watermark {
  configHash: string;
  usersDeltaLink: string;
  /** Opaque group-members watermark for exactly `groupIds` (the reader's format). */
  groupsDeltaLink: string;
  groupIds: string[];
  /** Fingerprint of every app role assignment (Graph has no delta query for them). */
  assignments: string;
  lastFullReadAt: string;
}

export function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
