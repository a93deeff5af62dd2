import { closeCodeFor, type CloseReason, type SocketProtocol } from '../../../protocol/index.js';
import type { Principal } from '../../auth/keys.js';
import { ApiFailure } from '../../kernel/errors.js';
import { uWS, type WebSocket } from '../uws.js';

/**
 * One connection policy for every socket transport (/v1/ws, graphql-ws, and whatever comes next):
 * credential lifetime (the notice before expiry, the close at expiry, revocation), inbound frame
 * size and rate, backpressure and the slow-consumer close, keep-alive, and close codes from one
 * table (`closeCodeFor`). A transport keeps its own frames and hands the policy its sockets; it
 * never picks a close code itself. See docs/connection-policy.md.
 */
export interface SocketLimits {
  /** Largest inbound frame; larger ones close the socket (frame_too_big). */
  maxFrameBytes: number;
  /** Inbound frames per second, bursts of twice that; past it: too_many_frames. */
  maxFramesPerSecond: number;
  /** uWS pings this often; a peer silent for about twice as long is dropped. */
  heartbeatMs: number;
  /** Bytes buffered for a socket before it is closed as a slow consumer (at half of it, with a close frame). */
  maxBackpressureBytes: number;
  /** How long before its credentials expire a client is told, so that it can refresh in place. */
  expiryNoticeMs: number;
}

/** What the policy keeps of each socket: every transport's connection state extends it. */
export interface PolicedConnection {
  id: string;
  /** Null until the protocol has authenticated (graphql-ws: at `connection_init`). */
  principal: Principal | null;
  closed: boolean;
  /** Inbound frame budget (token bucket). */
  budget: { tokens: number; refilledAt: number };
  /** The credentials' lifetime: the notice, then the close. */
  lifetime: { notice: NodeJS.Timeout | null; expiry: NodeJS.Timeout | null };
}

export interface PolicyHooks<C extends PolicedConnection> {
  /** Tells the client its credentials expire at `expiresAt` (each protocol has its own way). */
  expiring(ws: WebSocket<C>, expiresAt: number): void;
}

/** How often buffers are checked for the sockets fed by uWS's native publish (no send to check). */
const SLOW_CONSUMER_SWEEP_MS = 250;
/** setTimeout's largest delay; longer lifetimes are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Frames between the limit and this ceiling are closed with a close frame; past it uWS drops the TCP connection. */
export function hardFrameCeiling(maxFrameBytes: number): number {
  return Math.max(4 * maxFrameBytes, 1024 * 1024);
}

/** The fields of PolicedConnection for a new socket, to spread into a transport's state. */
export function policedState(id: string, principal: Principal | null, limits: SocketLimits): PolicedConnection {
  return {
    id,
    principal,
    closed: false,
    budget: { tokens: limits.maxFramesPerSecond * 2, refilledAt: performance.now() },
    lifetime: { notice: null, expiry: null },
  };
}

export class ConnectionPolicy<C extends PolicedConnection> {
  readonly sockets = new Set<WebSocket<C>>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    readonly protocol: SocketProtocol,
    readonly limits: SocketLimits,
    private readonly hooks: PolicyHooks<C>,
  ) {
    this.sweep = setInterval(() => this.closeSlowConsumers(), SLOW_CONSUMER_SWEEP_MS);
    this.sweep.unref();
  }

  /** The uWS options every socket route shares. */
  behavior() {
    const { limits } = this;
    return {
      compression: uWS.DISABLED,
      // uWS drops an oversized frame's connection without a close frame. Letting it accept up to a
      // hard ceiling and checking the limit ourselves gives clients a real close code.
      maxPayloadLength: hardFrameCeiling(limits.maxFrameBytes),
      maxBackpressure: limits.maxBackpressureBytes,
      // Past the limit uWS would skip frames silently; closing lets the client resume instead.
      closeOnBackpressureLimit: 1,
      // uWS pings on our behalf and closes a peer that stays silent.
      idleTimeout: Math.max(8, Math.round((limits.heartbeatMs * 2) / 1000)),
      sendPingsAutomatically: true,
    };
  }

  /** A socket opened: it is policed from now on (and its credentials' lifetime runs, if known). */
  opened(ws: WebSocket<C>): void {
    this.sockets.add(ws);
    const connection = ws.getUserData();
    if (connection.principal) this.armLifetime(ws, connection.principal);
  }

  /** The protocol authenticated the socket after it opened (graphql-ws `connection_init`). */
  authenticated(ws: WebSocket<C>, principal: Principal): void {
    const connection = ws.getUserData();
    connection.principal = principal;
    this.armLifetime(ws, principal);
  }

  /**
   * Replaces the socket's credentials in place. The new ones must act for the same account and
   * subject; otherwise ApiFailure, and the old ones stay.
   */
  renew(ws: WebSocket<C>, next: Principal): void {
    const connection = ws.getUserData();
    const current = connection.principal;
    if (!current || current.accountId !== next.accountId || current.subject !== next.subject) {
      throw new ApiFailure('INSUFFICIENT_PERMISSIONS', 'The new credentials must be for the same account and subject as the connection', {
        subject: current?.subject ?? null,
      });
    }
    connection.principal = next;
    this.armLifetime(ws, next);
  }

  /** The socket closed (uWS's close handler): nothing more is sent to it, its timers stop. */
  closed(ws: WebSocket<C>): void {
    this.sockets.delete(ws);
    const connection = ws.getUserData();
    connection.closed = true;
    clearLifetime(connection);
  }

  /**
   * Checks one inbound frame against the size and rate limits; false (and the socket closing)
   * when it breaks one.
   */
  admit(ws: WebSocket<C>, byteLength: number): boolean {
    const connection = ws.getUserData();
    if (connection.closed) return false;
    if (byteLength > this.limits.maxFrameBytes) {
      this.close(ws, 'frame_too_big', `frame over ${this.limits.maxFrameBytes} bytes`);
      return false;
    }
    if (!takeFrameBudget(connection, this.limits.maxFramesPerSecond)) {
      this.close(ws, 'too_many_frames', `over ${this.limits.maxFramesPerSecond} frames per second`);
      return false;
    }
    return true;
  }

  /**
   * After a send the transport made itself: a socket whose buffer passed half the limit is closed
   * at once as a slow consumer (the close frame follows what is buffered), never left to lose frames.
   */
  sent(ws: WebSocket<C>): void {
    if (!ws.getUserData().closed && ws.getBufferedAmount() > this.limits.maxBackpressureBytes / 2) {
      this.close(ws, 'slow_consumer', 'too slow: resume from your last seq');
    }
  }

  /** Closes with the code the socket's protocol has for `reason`. */
  close(ws: WebSocket<C>, reason: CloseReason, message: string = reason.replace(/_/g, ' ')): void {
    const connection = ws.getUserData();
    if (connection.closed) return;
    // Nothing more goes out, whatever uWS still holds: the socket counts as closed from here.
    connection.closed = true;
    clearLifetime(connection);
    ws.end(closeCodeFor(this.protocol, reason), message);
  }

  /** Closes every socket whose credentials match (a revoked key): on this node, at once. */
  revoke(match: (principal: Principal) => boolean): void {
    for (const ws of [...this.sockets]) {
      const { principal, closed } = ws.getUserData();
      if (!closed && principal && match(principal)) this.close(ws, 'credentials_revoked', 'credentials revoked');
    }
  }

  /**
   * Closes every socket as going away, in batches spread over time so that clients do not all
   * come back at the same instant.
   */
  async closeAll(drain: { batchSize: number; intervalMs: number } = { batchSize: Infinity, intervalMs: 0 }): Promise<void> {
    const sockets = [...this.sockets];
    const size = Math.max(1, drain.batchSize);
    for (let start = 0; start < sockets.length; start += size) {
      if (start > 0 && drain.intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, drain.intervalMs));
      for (const ws of sockets.slice(start, start + size)) this.close(ws, 'going_away', 'server draining: reconnect and resume');
    }
  }

  stop(): void {
    clearInterval(this.sweep);
  }

  /**
   * uWS itself drops a socket whose buffer passes maxBackpressure, without a close frame (1006).
   * Closing it ourselves at half that tells the client it was too slow and should resume.
   */
  private closeSlowConsumers(): void {
    for (const ws of this.sockets) this.sent(ws);
  }

  private armLifetime(ws: WebSocket<C>, principal: Principal): void {
    const connection = ws.getUserData();
    clearLifetime(connection);
    const expiresAt = principal.expiresAt;
    if (expiresAt === undefined || connection.closed) return;
    armAt(connection, 'notice', expiresAt - this.limits.expiryNoticeMs, () => this.hooks.expiring(ws, expiresAt));
    armAt(connection, 'expiry', expiresAt, () => this.close(ws, 'credentials_expired', 'credentials expired'));
  }
}

/** Takes one inbound frame from the connection's budget; false when it is spent. */
export function takeFrameBudget(connection: PolicedConnection, perSecond: number): boolean {
  const now = performance.now();
  const budget = connection.budget;
  budget.tokens = Math.min(perSecond * 2, budget.tokens + ((now - budget.refilledAt) / 1000) * perSecond);
  budget.refilledAt = now;
  if (budget.tokens < 1) return false;
  budget.tokens -= 1;
  return true;
}

function clearLifetime(connection: PolicedConnection): void {
  if (connection.lifetime.notice) clearTimeout(connection.lifetime.notice);
  if (connection.lifetime.expiry) clearTimeout(connection.lifetime.expiry);
  connection.lifetime.notice = null;
  connection.lifetime.expiry = null;
}

/** Runs `fire` at a wall-clock time (at once when it has passed), unless the socket closed first. */
function armAt(connection: PolicedConnection, slot: 'notice' | 'expiry', at: number, fire: () => void): void {
  // setTimeout fires at once past its range: wait in steps, re-arming until the time has come.
  const timer = setTimeout(
    () => {
      connection.lifetime[slot] = null;
      if (connection.closed) return;
      if (Date.now() < at) armAt(connection, slot, at, fire);
      else fire();
    },
    Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())),
  );
  timer.unref();
  connection.lifetime[slot] = timer;
}
