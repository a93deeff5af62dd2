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
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export type CloseAction = 'reconnect' | 'backoff' | 'give_up';

/** What a client should do after each close code. */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case CloseCode.GOING_AWAY:
    case 1006: // abnormal closure: the network dropped
      return 'reconnect';
    case CloseCode.INTERNAL_ERROR:
      return 'backoff';
    case CloseCode.NORMAL:
    case CloseCode.POLICY_VIOLATION:
    case CloseCode.MESSAGE_TOO_BIG:
      return 'give_up';
    default:
      return code >= 4000 && code < 4100 ? 'give_up' : 'backoff';
  }
}
