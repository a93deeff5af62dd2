import type { ErrorCode } from '../../protocol/errors.js';

/** Codes the SDK itself raises when no answer from the gateway explains the failure. */
export type ClientErrorCode =
  /** The request never got an answer: DNS, refused connection, reset, CORS. */
  | 'CONNECTION_ERROR'
  /** No answer within `timeout`. */
  | 'TIMEOUT'
  /** The caller's `signal` aborted the request. */
  | 'ABORTED'
  /** An answer that is not the gateway's envelope (a proxy's HTML page, say). */
  | 'INVALID_RESPONSE'
  /** Realtime: the offline send queue is full (`maxQueue`); the call was not accepted. */
  | 'QUEUE_FULL'
  /** Realtime: the connection closed before the answer and the call was not safe to resend. */
  | 'CONNECTION_CLOSED'
  /** Realtime: the client gave up reconnecting (a policy close, refused credentials). */
  | 'CONNECTION_FAILED';

export type StateSetErrorCode = ErrorCode | ClientErrorCode;

export interface StateSetErrorInit {
  code: StateSetErrorCode;
  message: string;
  /** The StateBase name of the code (`agent_not_found`); the client codes use their own in lower case. */
  type?: string;
  param?: string;
  details?: Record<string, unknown>;
  status?: number;
  requestId?: string;
  retryAfter?: number;
  cause?: unknown;
}

/**
 * Every failure of an SDK call. `code` is the StateSet code (`RESOURCE_NOT_FOUND`) or one of the
 * client codes; `type` is the StateBase name (`agent_not_found`), so either vocabulary can be
 * matched. `retryAfter` is in seconds, as the gateway sends it.
 */
export class StateSetError extends Error {
  readonly code: StateSetErrorCode;
  readonly type: string;
  readonly param: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** HTTP status; undefined when there was no answer. */
  readonly status: number | undefined;
  readonly requestId: string | undefined;
  /** Seconds the gateway asked to wait before retrying (429, 503). */
  readonly retryAfter: number | undefined;

  constructor(init: StateSetErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'StateSetError';
    this.code = init.code;
    this.type = init.type ?? init.code.toLowerCase();
    this.param = init.param;
    this.details = init.details;
    this.status = init.status;
    this.requestId = init.requestId;
    this.retryAfter = init.retryAfter;
  }

  /** The StateSet document's spelling: `error.retry_after`. */
  get retry_after(): number | undefined {
    return this.retryAfter;
  }

  /** A failure the SDK retries: no answer, a time-out, 408, 425, 429 or 5xx. */
  get retryable(): boolean {
    if (this.code === 'CONNECTION_ERROR' || this.code === 'TIMEOUT') return true;
    return this.status !== undefined && isRetryableStatus(this.status);
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
