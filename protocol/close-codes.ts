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
