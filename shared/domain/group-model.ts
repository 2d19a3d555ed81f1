/**
 * The domain's nouns for groups, shared by the adapters (Entra, TeamViewer Web API, state) and the
 * pure group planner. An AssignedGroup is read from Entra, a TeamViewerGroup lives in TeamViewer,
 * a GroupLink ties the two together in our state.
 *
 * Identifiers: Entra group object ids are compared lower-case (Graph treats them so). TeamViewer
 * user group ids are decimal strings (the Web API sends int64 numbers; a string keeps every digit).
 * Members are named by TeamViewer user id (`u1234567`), as user links name them; only the Web API
 * adapter turns them into the account ids (`1234567`) TeamViewer's member calls take.
 */
import type { ActionStatus, AttributeChange } from './model';

/** A group assigned to the TeamViewer enterprise application, as Graph names it now. */
export interface AssignedGroup {
  /** Object id, lower-case. */
  id: string;
  displayName: string;
}

/** A TeamViewer user group (Web API /usergroups). */
export interface TeamViewerGroup {
  /** Decimal digits. */
  id: string;
  name: string;
}

/** A TeamViewer role (Web API /userroles): what a user group grants its members. */
export interface TeamViewerRole {
  /** A GUID. */
  id: string;
  name: string;
}

/** One entry of GROUP_ROLES: an Entra group (object id or exact display name) and a TeamViewer role (name or id). */
export interface GroupRoleSetting {
  group: string;
  role: string;
}

/** Group settings: GROUP_PROVISIONING, GROUP_NAME_PREFIX, GROUP_ROLES. */
export interface GroupSettings {
  /** `off`: users only; `assigned`: every group assigned to the app becomes a TeamViewer user group. */
  provisioning: 'off' | 'assigned';
  /** Put before the Entra display name to make the TeamViewer group name. */
  prefix: string;
  roles: GroupRoleSetting[];
}

/**
 * The tie between one Entra group and one TeamViewer user group, kept in Table Storage.
 * `origin` decides what happens when the Entra group goes: a group tvsync created is deleted; an
 * adopted one is only emptied of the members tvsync manages and unlinked.
 */
export interface GroupLink {
  /** Entra group object id, lower-case. */
  entraGroupId: string;
  /** Null only while a create is in flight (intent written before the call). */
  teamViewerGroupId: string | null;
  /** The name last written to TeamViewer (or, for a pending create, the name the create sends). */
  name: string;
  /** `created`: tvsync's POST made it; `adopted`: it existed (or may have) and tvsync took it over. */
  origin: 'created' | 'adopted';
  /** The role tvsync last assigned to the group; null when it never assigned one. */
  role: TeamViewerRole | null;
  createdAt: string;
  updatedAt: string;
  /** Set when a create was started but its result not yet recorded. */
  pending?: 'create';
  /** How many members tvsync manages in the group (its member rows), as of the last cycle that changed them. */
  members?: number;
}

/**
 * One step of a group's change in a cycle: what the cycle's report, the dry run and the
 * provisioning logs show (one log record per step that touches TeamViewer or the link).
 */
export type GroupStepKind =
  | 'group-create'
  | 'group-link'
  | 'group-rename'
  | 'member-add'
  | 'member-remove'
  | 'role-assign'
  | 'group-record'
  | 'group-delete'
  | 'group-unlink'
  | 'group-fail'
  /** Reading TeamViewer's user groups failed: nothing was planned for groups this cycle. */
  | 'group-read';

export interface GroupStepReport {
  kind: GroupStepKind;
  status: ActionStatus;
  /** The TeamViewer user group (null before a create answered). */
  teamViewerGroupId: string | null;
  /** Name and role changes: `name: old → new`, `role: old → new`. */
  changes: AttributeChange[];
  /** For member steps: how many accounts, and who (user principal names, the first few). */
  members?: { count: number; sample: string[] };
  reason?: string;
  error?: { code: string; message: string };
}

/** What became of one Entra group's changes in a cycle (its steps run in order, stopping at a failure). */
export interface GroupReport {
  /** The step that decides the outcome: the one that failed, else the first. */
  kind: GroupStepKind;
  status: ActionStatus;
  /** The Entra group's object id (lower-case); escrows are kept by it. Empty for `group-read`. */
  entraId: string;
  /** The TeamViewer group name. */
  name: string;
  teamViewerGroupId: string | null;
  steps: GroupStepReport[];
  reason?: string;
  error?: { code: string; message: string };
}
