/**
 * What a cycle needs from the world (ports: Entra, TeamViewer, state, logs) and what it gives
 * back (the report). The adapters implement these (EntraReader, TeamViewerClient, StateStore,
 * ProvisioningLogStore); tests and the CLI see only these shapes.
 */
import type { Logger } from '../../log';
import type { AssignedGroup, GroupLink, GroupReport, GroupSettings, TeamViewerGroup, TeamViewerRole } from '../../domain/group-model';
import type { AssignedUser, CycleCounts, CycleKind, CycleRecord, ActionReport, Escrow, Link, LinkDigest, TeamViewerPatch, TeamViewerUser, TeamViewerUserDraft } from '../../domain/model';
import type { ProvisioningLogRecord } from '../../state/logs';
import type { DriftCheck } from '../drift';
import type { GuardSettings } from '../guard';
import type { GuardStore } from '../guard-state';
import type { SyncConfig } from '../mapping';
import type { QuarantineSettings } from '../quarantine';

/** Every read and call the cycle makes can be stopped: by the cycle's deadline. */
export interface Stoppable {
  signal?: AbortSignal;
}

/** What the cycle needs from Entra (EntraReader implements it). */
export interface EntraSource {
  /** With `groupNames`, also the assigned groups with their names now (`assignedGroups`). */
  readAssignedUsers(options: { scope: SyncConfig['scope']; expandNestedGroups: boolean; attributes: string[]; groupNames?: boolean } & Stoppable): Promise<{ users: AssignedUser[]; assignedGroups?: AssignedGroup[] }>;
  /** Which of these object ids are soft-deleted (in the directory's deleted items). */
  readDeletedUserIds(ids: string[], options?: Stoppable): Promise<Set<string>>;
  readAssignmentFingerprint(options?: Stoppable): Promise<{ fingerprint: string; groupIds: string[]; requests: number }>;
  readUserChanges(deltaLink: string | null, attributes?: readonly string[], options?: Stoppable): Promise<{ changed: unknown[]; removed: unknown[]; deltaLink: string; requests: number }>;
  readGroupMemberChanges(groupIds: readonly string[], deltaLink: string | null, options?: Stoppable): Promise<{ added: unknown[]; removed: unknown[]; removedGroups: string[]; groupsWithNestedChanges: string[]; displayNames?: AssignedGroup[]; deltaLink: string; requests: number }>;
}

/** What the cycle needs from TeamViewer (TeamViewerClient implements it). */
export interface TeamViewerTarget {
  listUsers(options?: Stoppable): Promise<TeamViewerUser[]>;
  findByUserName(userName: string, options?: Stoppable): Promise<TeamViewerUser[]>;
  createUser(draft: TeamViewerUserDraft, options?: Stoppable): Promise<TeamViewerUser>;
  patchUser(id: string, patch: TeamViewerPatch, options?: Stoppable): Promise<TeamViewerUser>;
  getUser(id: string, options?: Stoppable): Promise<TeamViewerUser | null>;
  getTokenOwner(options?: Stoppable): Promise<{ id: string; userName: string } | null>;
  testConnection(options?: Stoppable): Promise<void>;
}

/** What the cycle needs from state (StateStore implements it). */
export interface CycleState extends GuardStore {
  listLinks(): Promise<Link[]>;
  /** Every link with only what the drift check compares (a quiet cycle reads these). */
  listLinkDigests(): Promise<LinkDigest[]>;
  putLink(link: Link): Promise<void>;
  deleteLink(entraId: string): Promise<void>;
  /** The link that holds this TeamViewer user, or null (a point lookup once the index is complete). */
  findLinkByTeamViewerId(teamViewerId: string): Promise<Link | null>;
  /** Gives links from before the TeamViewer-id index their index rows, once; returns how many were written. */
  completeLinkIndex(links: readonly Link[]): Promise<number>;
  createCycle(c: CycleRecord): Promise<void>;
  updateCycle(c: CycleRecord): Promise<void>;
  listCycles(limit?: number): Promise<CycleRecord[]>;
  newCycleId(startedAt: Date): string;
  getMeta<T>(key: string): Promise<{ value: T; etag: string } | null>;
  putMeta<T>(key: string, value: T, etag?: string | null): Promise<string>;
  deleteMeta(key: string, etag?: string): Promise<void>;
  listEscrows(): Promise<Escrow[]>;
  putEscrow(escrow: Escrow): Promise<void>;
  deleteEscrow(entraId: string): Promise<void>;
}

/** What the cycle needs of TeamViewer's user groups and roles (TeamViewerUserGroups implements it). */
export interface UserGroupsTarget {
  listGroups(options?: Stoppable): Promise<TeamViewerGroup[]>;
  createGroup(name: string, options?: Stoppable): Promise<TeamViewerGroup>;
  renameGroup(id: string, name: string, options?: Stoppable): Promise<void>;
  deleteGroup(id: string, options?: Stoppable): Promise<boolean>;
  listMembers(groupId: string, options?: Stoppable): Promise<string[]>;
  addMembers(groupId: string, members: readonly string[], onBatch?: (added: string[]) => Promise<void> | void, options?: Stoppable): Promise<number>;
  removeMembers(groupId: string, members: readonly string[], onBatch?: (removed: string[]) => Promise<void> | void, options?: Stoppable): Promise<number>;
  listRoles(options?: Stoppable): Promise<TeamViewerRole[]>;
  getGroupRole(groupId: string, options?: Stoppable): Promise<string | null>;
  assignRole(groupId: string, roleId: string, options?: Stoppable): Promise<void>;
}

/** What the cycle needs of the group state (GroupStateStore implements it). */
export interface GroupState {
  listGroupLinks(): Promise<GroupLink[]>;
  putGroupLink(link: GroupLink): Promise<void>;
  deleteGroupLink(entraGroupId: string): Promise<void>;
  listAllMembers(): Promise<Map<string, string[]>>;
  listMembers(entraGroupId: string): Promise<string[]>;
  addMembers(entraGroupId: string, teamViewerIds: readonly string[], writtenAt?: Date): Promise<void>;
  removeMembers(entraGroupId: string, teamViewerIds: readonly string[]): Promise<void>;
  clearMembers(entraGroupId: string): Promise<number>;
}

/** Group provisioning: its settings, TeamViewer's user groups and the group state. */
export interface GroupDeps {
  settings: GroupSettings;
  teamViewer: UserGroupsTarget;
  state: GroupState;
}

export interface CycleDeps {
  entra: EntraSource;
  teamViewer: TeamViewerTarget;
  state: CycleState;
  logger: Logger;
  /** Most actions applied at once (the TeamViewer client bounds its own requests too). */
  concurrency: number;
  /** Scope, scoping filters and mappings (defaults: Entra's gallery app for TeamViewer). */
  config?: SyncConfig;
  /** Aborted when the run lease is lost: no further TeamViewer write is started. */
  signal?: AbortSignal;
  /** DEACTIVATION_THRESHOLD and SUSPICIOUS_DROP_PERCENT. */
  guard?: GuardSettings;
  /** SYNC_INTERVAL_MINUTES: the unit of an escrow's back-off. */
  intervalMinutes?: number;
  /**
   * CYCLE_TIME_BUDGET_SECONDS, from the cycle's start: reads must end by then (else the cycle
   * fails), no work starts after it (the next heartbeat continues), and calls still in flight are
   * cut off `callTimeoutSeconds` later.
   */
  timeBudgetSeconds?: number;
  /** TEAMVIEWER_TIMEOUT_SECONDS: how long a call in flight may outlive the time budget (default 30). */
  callTimeoutSeconds?: number;
  /** DRIFT_CHECK (default every-cycle): when hand edits in TeamViewer are looked for and put back. */
  driftCheck?: DriftCheck;
  /** QUARANTINE_FAILURE_PERCENT and QUARANTINE_MIN_FAILURES. */
  quarantine?: QuarantineSettings;
  /** GROUP_PROVISIONING=assigned: user groups after users. Absent (or provisioning off): users only, at no cost. */
  groups?: GroupDeps;
  /** Where each user change is logged (Entra's provisioning logs). */
  logs?: { append(records: ProvisioningLogRecord[]): Promise<void>; enforceRetention(now?: Date): Promise<unknown> };
  now?: () => Date;
}

export interface CycleOptions {
  dryRun?: boolean;
  trigger: CycleRecord['trigger'];
  onProgress?: (progress: { phase: CyclePhase; done: number; total: number }) => void;
}

export type CyclePhase = 'reading Entra ID' | 'reading TeamViewer' | 'planning' | 'applying' | 'finished';

export interface CycleReport {
  cycleId: string;
  kind: CycleKind;
  dryRun: boolean;
  result: CycleRecord['result'];
  startedAt: string;
  finishedAt: string;
  imported: number;
  counts: CycleCounts;
  actions: ActionReport[];
  /** With GROUP_PROVISIONING=assigned: what became of each user group's changes (failures included). */
  groupActions?: GroupReport[];
  /** With GROUP_PROVISIONING=assigned: what the group settings ask for and cannot be done (never a failure). */
  groupWarnings?: string[];
  error?: { code: string; message: string };
}
