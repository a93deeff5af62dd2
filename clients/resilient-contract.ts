import type { SocketOptions } from './client.js';
import type { EventFrame, SubscribeResult } from '../protocol/frames.js';

/**
 * What an application sees of the resilient client (`resilient-client.ts`): its connection
 * states, the handlers a topic takes, the options of the client and of a call, and the errors it
 * raises itself.
 */

/** What a UI shows: `failed` is final (a policy close, or credentials that keep failing). */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'failed';

export interface StateDetail {
  /** The close code that ended the last connection (`disconnected`, `failed`). */
  code?: number;
  reason?: string;
  /** 1 for the first try after a loss, growing with each failed attempt (`connecting`). */
  attempt?: number;
}

export type StateListener = (state: ConnectionState, detail?: StateDetail) => void;

/** After a resubscription on a new connection: where the topic stands. */
export interface ResubscribedInfo {
  /** False: history could not be replayed; refetch the resource over REST. */
  recovered: boolean;
  seq: number;
  epoch: string;
  /** Events replayed after the result (recovered only). */
  replayed?: number;
  /** Replies being streamed on the topic right now, with their text so far. */
  streams?: SubscribeResult['streams'];
}

export interface TopicHandlers {
  onEvent(event: EventFrame): void;
  /**
   * History could not be replayed (the server said `recovered: false` on a resume, or a live
   * event carried a new epoch): refetch the resource over REST; events continue from `result.seq`.
   */
  onReset?(result: { seq: number; epoch: string }, cause: 'resume' | 'epoch'): void;
  /** After every resubscription on a new connection (not the first subscription). */
  onResubscribed?(info: ResubscribedInfo): void;
  /** The topic could not be resubscribed (say, it was deleted meanwhile): it is no longer followed. */
  onError?(error: Error): void;
}

/** Codes of the errors the client raises itself (the gateway's come as ApiError). */
export type RealtimeErrorCode =
  /** The offline queue is full: the call was not accepted. */
  | 'QUEUE_FULL'
  /** The connection closed (or was closed) before the call could be answered, and it is not safe to resend. */
  | 'CONNECTION_CLOSED'
  /** The client gave up reconnecting (a policy close, credentials that keep failing). */
  | 'CONNECTION_FAILED'
  /** No answer within `callTimeoutMs`. */
  | 'TIMEOUT';

export class RealtimeError extends Error {
  constructor(
    readonly code: RealtimeErrorCode,
    message: string,
    readonly closeCode?: number,
  ) {
    super(message);
    this.name = 'RealtimeError';
  }
}

export interface CallOptions {
  /** Sent as the call frame's `idempotency_key`: a repeat is answered, not run again. */
  idempotencyKey?: string;
  /**
   * Resend after a reconnect when the connection was lost before the answer came. Default: only
   * with an idempotency key (a resent write without one could be applied twice).
   */
  resendOnReconnect?: boolean;
  /** Only on this connection (`connectionId`): a call bound to connection state, as a stream's. */
  connectionId?: string;
  /** Never queued: rejected with CONNECTION_CLOSED while offline (typing signals, say). */
  noQueue?: boolean;
}

export interface ResilientOptions extends SocketOptions {
  /** Asked before every connection attempt: e.g. mint a fresh client token after 4001. */
  credentials?: () => Promise<Partial<Pick<SocketOptions, 'apiKey' | 'url'>>>;
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Consecutive attempts whose credentials could not be had (the function threw) or were refused
   * (HTTP 401 at the upgrade) before the state becomes `failed`; default 3. Without a
   * `credentials` function a refused credential fails at once: it cannot get better.
   */
  maxCredentialFailures?: number;
  /** Calls waiting while offline, at most; one more is rejected with QUEUE_FULL. Default 100. */
  maxQueue?: number;
  /**
   * When a connection attempt failed without saying why (browsers hide the upgrade's status):
   * true if the credentials are refused (then it counts as a refusal).
   */
  credentialsRefused?: (apiKey: string | undefined) => Promise<boolean>;
  onStateChange?: StateListener;
  /**
   * Milliseconds between `ping` frames that prove the connection alive; one unanswered within
   * `callTimeoutMs` drops it (a network gone silent closes nothing by itself). Default the
   * server's `heartbeat_ms`; false: none.
   */
  heartbeatMs?: number | false;
}
