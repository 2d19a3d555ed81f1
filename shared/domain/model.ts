/**
 * The domain's nouns, shared by the adapters (Entra, TeamViewer, state) and the pure core (sync/).
 * Words follow Entra's provisioning docs and the status page: an AssignedUser is read from
 * Entra, a TeamViewerUser lives in TeamViewer, a Link ties the two together in our state, and a
 * cycle's ActionReports say what became of each planned change.
 *
 * This module imports nothing: the adapters and state depend on it, never on sync/.
 */

/** A user as read from Microsoft Graph, with the attributes the mappings need. */
export interface EntraUser {
  id: string;
  userPrincipalName: string;
  displayName: string | null;
  givenName: string | null;
  surname: string | null;
  mail: string | null;
  accountEnabled: boolean;
}

/** How a user came to be in scope: a direct assignment and/or membership of assigned groups. */
export interface AssignedUser extends EntraUser {
  /** True when the user is assigned to the app directly. */
  direct: boolean;
  /** Object ids of the assigned groups through which the user is in scope. */
  viaGroups: string[];
  /** App role ids of every assignment that brings the user in (direct or through a group). */
  appRoleIds: string[];
  /** App role values (e.g. "User") of those assignments, for SingleAppRoleAssignment. */
  appRoleValues?: string[];
  /** Extra Graph properties the mappings and scoping filters name, by canonical attribute name. */
  attributes?: Record<string, unknown>;
}

/** A user as TeamViewer returns it over SCIM (normalised: one email, name parts split out). */
export interface TeamViewerUser {
  id: string;
  userName: string;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  email: string | null;
  active: boolean;
}

/** Attributes we can send on create. Create-only ones are never returned by TeamViewer. */
export interface TeamViewerUserDraft {
  userName: string;
  displayName?: string;
  givenName?: string;
  familyName?: string;
  email?: string;
  active: boolean;
  preferredLanguage?: string;
  ssoCustomerId?: string;
}

/** Attributes TeamViewer lets a PATCH replace. */
export interface TeamViewerPatch {
  userName?: string;
  displayName?: string;
  givenName?: string;
  familyName?: string;
  email?: string;
  active?: boolean;
}

/** The tie between one Entra user and one TeamViewer user, kept in Table Storage. */
export interface Link {
  entraId: string;
  /** Null only while a create is in flight (intent written before the call). */
  teamViewerId: string | null;
  /** The userName last written to (or matched in) TeamViewer. */
  userName: string;
  /** UPN as last read from Entra (for operators: logs, status). */
  userPrincipalName: string;
  /** Values we last wrote to TeamViewer, by SCIM attribute name (userName, displayName, active, ...). */
  written: Record<string, string | boolean | null>;
  active: boolean;
  createdAt: string;
  updatedAt: string;
  /** Set when a create was started but its result not yet recorded. */
  pending?: 'create';
  /**
   * Set by `restart --full`: the next cycle that reads this user matches them again by userName and
   * rewrites the link. The link is kept until then, so a user who is no longer read is still deactivated.
   */
  rematch?: true;
}

/**
 * What the drift check needs of a link, read without the rest of the row: who, which TeamViewer
 * user, and what tvsync last wrote there.
 */
export type LinkDigest = Pick<Link, 'entraId' | 'teamViewerId' | 'written' | 'pending' | 'rematch'>;

/** One attribute a change writes: what TeamViewer held, what it gets. */
export interface AttributeChange {
  attribute: string;
  old: string | boolean | null;
  new: string | boolean | null;
}

/** What the planner can decide for a user (shared/sync/planner.ts builds them). */
export type ActionKind = 'create' | 'link' | 'update' | 'enable' | 'disable' | 'unlink' | 'skip' | 'fail';

/** What became of a planned change: done, failed, left alone, needing attention, only planned (dry run), held by the guard. */
export type ActionStatus = 'success' | 'failure' | 'skipped' | 'warning' | 'planned' | 'staged';

/** What became of one planned user change in a cycle: the cycle's report, the provisioning log record's source. */
export interface ActionReport {
  kind: ActionKind;
  status: ActionStatus;
  entraId: string;
  userPrincipalName: string;
  teamViewerId: string | null;
  changes: AttributeChange[];
  reason?: string;
  error?: { code: string; message: string };
  /** The action puts back a change made in TeamViewer by hand (the reason says which). */
  drift?: true;
}

export type CycleKind = 'initial' | 'incremental';
export type CycleResult = 'running' | 'succeeded' | 'partial' | 'failed';

export interface CycleCounts {
  created: number;
  updated: number;
  disabled: number;
  enabled: number;
  linked: number;
  unchanged: number;
  skipped: number;
  failed: number;
  /** Deactivations held back by the accidental-deletion guard. */
  staged: number;
  /**
   * Of the changes above, how many put back something changed in TeamViewer by hand (a leaver
   * re-enabled, a display name edited): a subset, not a separate kind of change.
   */
  drift: number;
  /** TeamViewer user groups (GROUP_PROVISIONING=assigned); all 0 otherwise. */
  groups: GroupCounts;
}

/** What a cycle did to TeamViewer user groups. */
export interface GroupCounts {
  /** Groups tvsync created. */
  created: number;
  /** Groups that existed in TeamViewer and were adopted (linked by name). */
  linked: number;
  /** Groups renamed or given their role (a group counts once however much changed). */
  updated: number;
  /** Groups tvsync created and deleted because their Entra group went. */
  deleted: number;
  /** Groups no longer tvsync's: adopted ones emptied of its members, or ones gone from TeamViewer. */
  unlinked: number;
  /** Memberships added and removed (accounts, not calls). */
  membersAdded: number;
  membersRemoved: number;
  /** Group deletions held back by the accidental-deletion guard. */
  staged: number;
  /** Groups whose change failed (at most one for a missing right or licence, however many groups wait). */
  failed: number;
}

export function emptyGroupCounts(): GroupCounts {
  return { created: 0, linked: 0, updated: 0, deleted: 0, unlinked: 0, membersAdded: 0, membersRemoved: 0, staged: 0, failed: 0 };
}

export function emptyCounts(): CycleCounts {
  return { created: 0, updated: 0, disabled: 0, enabled: 0, linked: 0, unchanged: 0, skipped: 0, failed: 0, staged: 0, drift: 0, groups: emptyGroupCounts() };
}

/** One row per cycle in state. */
export interface CycleRecord {
  id: string;
  kind: CycleKind;
  dryRun: boolean;
  trigger: 'timer' | 'cli' | 'http' | 'demo';
  startedAt: string;
  finishedAt: string | null;
  result: CycleResult;
  counts: CycleCounts;
  /** Number of users read from Entra (in scope or not) and of planned actions. */
  imported: number;
  planned: number;
  /** Why the cycle failed, when it did (an error code and a sentence, never a secret). */
  error?: { code: string; message: string };
  /** Last time the running cycle wrote progress; a running cycle whose heartbeat is old was interrupted. */
  heartbeatAt?: string;
  /** Actions done so far (for the progress bar) out of `planned`. */
  done?: number;
  /** What the running cycle is doing: reading Entra ID, reading TeamViewer, planning, applying. */
  phase?: string;
  /**
   * The cycle stopped at CYCLE_TIME_BUDGET_SECONDS with work left; the next heartbeat continues
   * it (a new cycle row whose `continues` names this one).
   */
  budgetReached?: boolean;
  /** This cycle continues the work of that one (which reached its time budget). */
  continues?: string;
  /** Hash of scope, scoping filters and mappings: a change starts a new initial cycle. */
  configHash?: string;
  /** Per-user failures of this cycle (at most 50 kept), for status. */
  failures?: UserFailure[];
  /** Changes made in TeamViewer by hand that this cycle found and put back, or tried to (at most 20 kept), for status. */
  driftRepairs?: DriftRepair[];
  /** User groups whose change failed in this cycle (at most 50 kept), for status. */
  groupFailures?: GroupFailure[];
  /**
   * What the group settings ask for and cannot be done (an unknown role in GROUP_ROLES, a group
   * it names that is not assigned), found at the start of the cycle; never a failure of users.
   */
  groupWarnings?: string[];
}

/** A user group whose change failed in a cycle (or all of them, when TeamViewer refused user groups). */
export interface GroupFailure {
  /** The Entra group's object id; empty when the failure concerns every group (a missing right). */
  entraGroupId: string;
  /** The TeamViewer group name the change was about. */
  name: string;
  /** The step that failed: group-create, member-add, …, or group-read. */
  action: string;
  code: string;
  message: string;
  at: string;
}

/** A change made in TeamViewer by hand that a cycle found, and what became of its repair. */
export interface DriftRepair {
  entraId: string;
  userPrincipalName: string;
  teamViewerId: string | null;
  /** The action that puts it back (disable, enable, update, link, create). */
  action: string;
  /** success: put back; staged: held by the accidental-deletion guard; failure; skipped (e.g. the time budget). */
  status: string;
  /** True when the repair deactivates the user: someone who should not have access had it again. */
  deactivates: boolean;
  reason: string;
  /** When the cycle found it (its start). */
  foundAt: string;
}

export interface UserFailure {
  entraId: string;
  userPrincipalName: string;
  action: string;
  code: string;
  message: string;
  at: string;
}

/**
 * A user whose change keeps failing (Entra's "escrow"): retried in later cycles with a growing
 * back-off, never blocking the others; what failed and when it is tried next are kept and shown.
 */
export interface Escrow {
  entraId: string;
  userPrincipalName: string;
  action: string;
  code: string;
  message: string;
  attempts: number;
  firstFailedAt: string;
  lastFailedAt: string;
  nextAttemptAt: string;
}
