/**
 * WebSocket close codes the gateway uses, grouped by what a client should do next.
 * Close reasons are short (under 123 bytes) and never carry internals.
 */
export const CloseCode = {
  /** Normal closure, asked for by either side. Do not reconnect unless you want to. */
  NORMAL: 1000,
  /** The server is shutting down or draining: reconnect (to any node) and resume. */
  GOING_AWAY: 1001,
  /** A frame broke the protocol in a way that cannot be answered with an error frame. Do not retry unchanged. */
  POLICY_VIOLATION: 1008,
  /** A frame was larger than `limits.max_frame_bytes` in the welcome frame. Do not retry unchanged. */
  MESSAGE_TOO_BIG: 1009,
  /** Unexpected server failure: reconnect with backoff. */
  INTERNAL_ERROR: 1011,
  /** The connection's credentials expired (a client token): get fresh ones, then reconnect and resume. */
  TOKEN_EXPIRED: 4001,
  /** The credentials are no longer accepted (key revoked): do not reconnect with them. */
  UNAUTHORIZED: 4003,
  /** More frames per second than `limits.max_frames_per_second`: back off, then reconnect and resume. */
  TOO_MANY_FRAMES: 4008,
  /** The client read too slowly and its send buffer filled: reconnect and resume (nothing is lost). */
  SLOW_CONSUMER: 4009,
  /** The server lost events it could not refill: reconnect and resume from your last seq. */
  RESUME: 4010,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * reconnect: at once (with a little jitter) and resume; backoff: reconnect after an increasing
 * delay; refresh: get new credentials first; give_up: do not reconnect.
 */
export type CloseAction = 'reconnect' | 'backoff' | 'refresh' | 'give_up';

/** What a client should do after each close code. */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case CloseCode.GOING_AWAY:
    case CloseCode.SLOW_CONSUMER:
    case CloseCode.RESUME:
      return 'reconnect';
    case 1006: // abnormal closure: the network dropped
    case CloseCode.INTERNAL_ERROR:
    case CloseCode.TOO_MANY_FRAMES:
      return 'backoff';
    case CloseCode.TOKEN_EXPIRED:
      return 'refresh';
    case CloseCode.NORMAL:
    case CloseCode.POLICY_VIOLATION:
    case CloseCode.MESSAGE_TOO_BIG:
    case CloseCode.UNAUTHORIZED:
      return 'give_up';
    default:
      return 'backoff';
  }
}

/**
 * Why the gateway closes a socket, whatever its protocol. Every socket transport closes through
 * the connection policy with one of these; the code a client sees is its protocol's word for it.
 */
export type CloseReason =
  | 'normal'
  | 'going_away'
  | 'policy_violation'
  | 'frame_too_big'
  | 'internal_error'
  | 'credentials_expired'
  | 'credentials_revoked'
  | 'too_many_frames'
  | 'slow_consumer'
  | 'resume';

/** The socket protocols the gateway speaks: its own at /v1/ws and graphql-ws at /graphql. */
export type SocketProtocol = 'stategate' | 'graphql-ws';

/** `/v1/ws` (stategate.v1): our own codes. */
const STATEGATE_CLOSE: Record<CloseReason, number> = {
  normal: CloseCode.NORMAL,
  going_away: CloseCode.GOING_AWAY,
  policy_violation: CloseCode.POLICY_VIOLATION,
  frame_too_big: CloseCode.MESSAGE_TOO_BIG,
  internal_error: CloseCode.INTERNAL_ERROR,
  credentials_expired: CloseCode.TOKEN_EXPIRED,
  credentials_revoked: CloseCode.UNAUTHORIZED,
  too_many_frames: CloseCode.TOO_MANY_FRAMES,
  slow_consumer: CloseCode.SLOW_CONSUMER,
  resume: CloseCode.RESUME,
};

/**
 * graphql-ws (`graphql-transport-ws`): the protocol's own codes where it defines one, chosen for
 * what its client does with them. Its client gives up on 4400, 4401, 4406, 4409, 4429, 4500 and
 * on 1002-1011 but 1005/1006; it retries everything else (4403 included, calling a function
 * `connectionParams` again: that is how a client renews an expired token).
 */
const GRAPHQL_WS_CLOSE: Record<CloseReason, number> = {
  normal: 1000,
  going_away: 1001,
  policy_violation: 1008,
  frame_too_big: 1009,
  internal_error: 4500,
  // Retried: a client whose connectionParams is a function fetches a fresh token.
  credentials_expired: 4403,
  // Given up: the key will not come back.
  credentials_revoked: 4401,
  // Given up (graphql-ws has no "back off" code): a client that floods is a bug to fix.
  too_many_frames: 4429,
  // Ours, retried by the client: resubscribe with `since` and `epoch` from the last event.
  slow_consumer: CloseCode.SLOW_CONSUMER,
  resume: CloseCode.RESUME,
};

export const CLOSE_CODES: Record<SocketProtocol, Record<CloseReason, number>> = {
  stategate: STATEGATE_CLOSE,
  'graphql-ws': GRAPHQL_WS_CLOSE,
};

/** The close code a client of `protocol` understands for `reason`. */
export function closeCodeFor(protocol: SocketProtocol, reason: CloseReason): number {
  return CLOSE_CODES[protocol][reason];
}
