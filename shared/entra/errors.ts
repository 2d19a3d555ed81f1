/**
 * Why a read from Microsoft Graph failed, as a value the caller can act on.
 *
 * Invariant: an EntraReadError's message never holds a token or another secret: every message
 * goes through `redactText`, and the credential's reason is redacted before it gets here.
 */
import { redactText } from '../log';

export type EntraReadErrorCode =
  /** Graph refused the token (401): wrong tenant, wrong audience, expired or revoked. */
  | 'GRAPH_UNAUTHORIZED'
  /** Graph refused the call (403): an application permission is missing; see `permission`. */
  | 'GRAPH_FORBIDDEN'
  /** The service principal does not exist: the configured object id is wrong. */
  | 'GRAPH_NOT_FOUND'
  /** Still throttled (429) after the retries; see `retryAfter`. */
  | 'GRAPH_THROTTLED'
  /** 5xx or a network failure after the retries. */
  | 'GRAPH_UNAVAILABLE'
  /**
   * No answer within GRAPH_TIMEOUT_SECONDS, attempt after attempt (a request, or the managed
   * identity's token request): transient, like GRAPH_UNAVAILABLE; see `call` and `timeoutMs`.
   */
  | 'GRAPH_TIMEOUT'
  /** The credential could not get a token (managed identity endpoint, federation, ...). */
  | 'GRAPH_AUTH_FAILED'
  /** Part of the answer was missing or unusable (a page or batch item, a nextLink, a malformed body). */
  | 'GRAPH_INCOMPLETE'
  /**
   * Graph no longer accepts a delta watermark (410 Gone, syncStateNotFound, resyncRequired, a
   * token it cannot read, or a deltaLink for another Graph): start a new initial round.
   */
  | 'GRAPH_DELTA_EXPIRED';

/** The Graph application permissions the reader needs, named in GRAPH_FORBIDDEN errors. */
export type GraphPermission = 'Application.Read.All' | 'GroupMember.Read.All' | 'User.Read.All';

export interface EntraReadErrorDetails {
  /** HTTP status, when Graph answered. */
  status?: number;
  /** Seconds Graph asked us to wait (429/503), when it said. */
  retryAfter?: number;
  /** What was being read, e.g. "members of group 1f…", "appRoleAssignedTo page 3". */
  concerns?: string;
  /** The permission most likely missing (GRAPH_FORBIDDEN). */
  permission?: GraphPermission;
  /** Graph's own error code, e.g. Authorization_RequestDenied. */
  graphCode?: string;
  /** Graph's request-id, for a support ticket. */
  requestId?: string;
  /** GRAPH_TIMEOUT: the per-attempt timeout that ran out. */
  timeoutMs?: number;
  /** GRAPH_TIMEOUT: what got no answer, e.g. "GET /v1.0/users/delta" or "token request" (no query, no ids). */
  call?: string;
}

export class EntraReadError extends Error {
  readonly code: EntraReadErrorCode;
  readonly status?: number;
  readonly retryAfter?: number;
  readonly concerns?: string;
  readonly permission?: GraphPermission;
  readonly graphCode?: string;
  readonly requestId?: string;
  readonly timeoutMs?: number;
  readonly call?: string;

  constructor(code: EntraReadErrorCode, message: string, details: EntraReadErrorDetails = {}) {
    // No `cause`: the underlying SDK errors can carry request details we do not want to log.
    super(redactText(message));
    this.name = 'EntraReadError';
    this.code = code;
    this.status = details.status;
    this.retryAfter = details.retryAfter;
    this.concerns = details.concerns;
    this.permission = details.permission;
    this.graphCode = details.graphCode;
    this.requestId = details.requestId;
    this.timeoutMs = details.timeoutMs;
    this.call = details.call;
  }

  /** A plain object for logs and status documents (no stack). */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      status: this.status,
      retryAfter: this.retryAfter,
      concerns: this.concerns,
      permission: this.permission,
      graphCode: this.graphCode,
      requestId: this.requestId,
      timeoutMs: this.timeoutMs,
      call: this.call,
    };
  }
}

export function isEntraReadError(error: unknown): error is EntraReadError {
  return error instanceof EntraReadError;
}
