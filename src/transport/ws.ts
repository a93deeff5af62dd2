import {
  CLIENT_FRAME_TYPES,
  ClientFrame,
  CloseCode,
  codecs,
  inputProblem,
  inputProblemError,
  MAX_INPUT_DEPTH,
  negotiateEncoding,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  textProblem,
  TOKEN_SUBPROTOCOL_PREFIX,
  type FrameId,
} from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import { ApiFailure, toFailure, validationFailure } from '../kernel/errors.js';
import type { Logger } from '../logger.js';
import type { GatewayCore } from './core.js';
import type { CallOrigin, Outcome, Subscriber } from './core.js';
import { credentialsOf, type HttpTracker } from './http.js';
import { sendFailure } from './respond.js';
import { uWS, type TemplatedApp } from './uws.js';
import { send, sendError, sendResult, takeFrameBudget, type Connection, type GatewayWebSocket } from './ws-connection.js';
import { plainlyValidFrame } from './ws-frames.js';
import { socketSubscriber, uwsBroadcast } from './ws-delivery.js';

/**
 * The WebSocket adapter at /v1/ws: authenticates the upgrade, then maps frames onto operations
 * (`call` onto any, `subscribe`/`unsubscribe` onto topics.subscribe/unsubscribe) and the events
 * the realtime layer delivers onto event frames.
 */
export interface WsOptions {
  maxFrameBytes: number;
  maxSubscriptions: number;
  maxFramesPerSecond: number;
  heartbeatMs: number;
  maxBackpressureBytes: number;
  log: Logger;
}

export class WsAdapter {
  readonly sockets = new Set<GatewayWebSocket>();

  constructor(
    private readonly app: TemplatedApp,
    private readonly core: GatewayCore,
    private readonly options: WsOptions,
    /** Calls in flight, so that a drain answers them before closing their sockets. */
    private readonly tracker: HttpTracker,
  ) {
    core.useBroadcast(uwsBroadcast(app));
    this.slowConsumerSweep = setInterval(() => this.closeSlowConsumers(), SLOW_CONSUMER_SWEEP_MS);
    this.slowConsumerSweep.unref();
  }

  private readonly slowConsumerSweep: NodeJS.Timeout;

  /**
   * uWS itself drops a socket whose buffer passes maxBackpressure, without a close frame (1006).
   * Closing it ourselves at half that tells the client, with 4009, that it was too slow and
   * should resume: the close frame follows what is already buffered.
   */
  private closeSlowConsumers(): void {
    const softLimit = this.options.maxBackpressureBytes / 2;
    for (const ws of this.sockets) {
      if (ws.getBufferedAmount() > softLimit && !ws.getUserData().closed) ws.end(CloseCode.SLOW_CONSUMER, 'too slow: resume from your last seq');
    }
  }

  stop(): void {
    clearInterval(this.slowConsumerSweep);
  }

  mount(path = '/v1/ws'): void {
    const { options } = this;
    this.app.ws<Connection>(path, {
      compression: uWS.DISABLED,
      // uWS drops an oversized frame's connection without a close frame. Letting it accept up to a
      // hard ceiling and checking the documented limit ourselves gives clients a real 1009.
      maxPayloadLength: hardFrameCeiling(options.maxFrameBytes),
      maxBackpressure: options.maxBackpressureBytes,
      // Past the limit uWS would skip frames silently; closing lets the client resume instead.
      closeOnBackpressureLimit: 1,
      // uWS pings on our behalf and closes a peer that stays silent.
      idleTimeout: Math.max(8, Math.round((options.heartbeatMs * 2) / 1000)),
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const key = req.getHeader('sec-websocket-key');
        const offered = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        const protocols = offered ? offered.split(',').map((name) => name.trim()) : [];
        const query = new URLSearchParams(req.getQuery() ?? '');
        // Browsers cannot set headers: a client token may come as a subprotocol or in the query.
        const tokenProtocol = protocols.find((name) => name.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
        const credential =
          credentialsOf(req) ??
          (tokenProtocol ? tokenProtocol.slice(TOKEN_SUBPROTOCOL_PREFIX.length) : undefined) ??
          (query.get('token') || query.get('api_key') || undefined);
        const encodingProtocols = protocols.filter((name) => name !== tokenProtocol);
        const requestId = this.core.newRequestId();
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        const encoding = negotiateEncoding(encodingProtocols);
        const refuse = (failure: ApiFailure) => {
          if (!aborted) sendFailure(res, failure, requestId);
        };
        try {
          this.core.resolveApiVersion(req.getHeader('x-api-version') || undefined);
        } catch (error) {
          refuse(toFailure(error));
          return;
        }
        if (!encoding) {
          refuse(
            new ApiFailure('VALIDATION_ERROR', 'No supported WebSocket subprotocol offered', {
              offered: encodingProtocols,
              supported: Object.values(SUBPROTOCOL),
            }),
          );
          return;
        }
        this.core.authenticate(credential).then(
          (principal) => {
            if (aborted) return;
            const connection: Connection = {
              id: this.core.newConnectionId(),
              principal,
              encoding,
              codec: codecs[encoding],
              subscriber: null,
              budget: { tokens: options.maxFramesPerSecond * 2, refilledAt: performance.now() },
              expiry: null,
              closed: false,
            };
            // A browser that offered a token protocol must see an encoding protocol chosen.
            res.cork(() => res.upgrade(connection, key, protocols.length > 0 ? SUBPROTOCOL[encoding] : '', extensions, context));
          },
          (error) => refuse(toFailure(error)),
        );
      },
      open: (ws) => {
        this.sockets.add(ws);
        const connection = ws.getUserData();
        connection.subscriber = socketSubscriber(ws);
        const expiresAt = connection.principal.expiresAt;
        if (expiresAt !== undefined) {
          connection.expiry = setTimeout(
            () => {
              if (!connection.closed) ws.end(CloseCode.TOKEN_EXPIRED, 'client token expired');
            },
            Math.max(0, expiresAt - Date.now()),
          );
          connection.expiry.unref();
        }
        send(ws, connection, {
          type: 'welcome',
          connection_id: connection.id,
          protocol: PROTOCOL_VERSION,
          encoding: connection.encoding,
          heartbeat_ms: options.heartbeatMs,
          limits: {
            max_frame_bytes: options.maxFrameBytes,
            max_subscriptions: options.maxSubscriptions,
            max_frames_per_second: options.maxFramesPerSecond,
          },
        });
      },
      message: (ws, message, isBinary) => this.onMessage(ws, message, isBinary),
      close: (ws) => {
        this.sockets.delete(ws);
        const connection = ws.getUserData();
        connection.closed = true;
        if (connection.expiry) clearTimeout(connection.expiry);
        if (connection.subscriber) this.core.connectionClosed(connection.id, connection.subscriber);
      },
    });
  }

  /**
   * Closes every connection with 1001 so that clients reconnect elsewhere and resume, in batches
   * spread over time so that they do not all come back at the same instant.
   */
  async closeAll(drain: { batchSize: number; intervalMs: number }): Promise<void> {
    const sockets = [...this.sockets];
    for (let start = 0; start < sockets.length; start += drain.batchSize) {
      if (start > 0 && drain.intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, drain.intervalMs));
      for (const ws of sockets.slice(start, start + drain.batchSize)) {
        if (!ws.getUserData().closed) ws.end(CloseCode.GOING_AWAY, 'server draining: reconnect and resume');
      }
    }
  }

  disconnect(match: (principal: Principal) => boolean): void {
    for (const ws of [...this.sockets]) {
      const connection = ws.getUserData();
      if (!connection.closed && match(connection.principal)) ws.end(CloseCode.UNAUTHORIZED, 'credentials revoked');
    }
  }

  private onMessage(ws: GatewayWebSocket, message: ArrayBuffer, isBinary: boolean): void {
    const connection = ws.getUserData();
    if (message.byteLength > this.options.maxFrameBytes) {
      ws.end(CloseCode.MESSAGE_TOO_BIG, `frame over ${this.options.maxFrameBytes} bytes`);
      return;
    }
    if (!takeFrameBudget(connection, this.options.maxFramesPerSecond)) {
      ws.end(CloseCode.TOO_MANY_FRAMES, `over ${this.options.maxFramesPerSecond} frames per second`);
      return;
    }
    let raw: unknown;
    try {
      // Text frames are JSON and binary frames MessagePack, whatever the subprotocol: be lenient in what we read.
      raw = (isBinary ? codecs.msgpack : codecs.json).decode(message);
    } catch {
      sendError(ws, connection, undefined, new ApiFailure('VALIDATION_ERROR', `Frame is not valid ${isBinary ? 'MessagePack' : 'JSON'}`));
      return;
    }
    // NULs, lone surrogates and deep nesting anywhere in the frame (ids, topics, keys), not only in
    // call params; one level more than an operation's input allows, for the frame around params.
    const problem = inputProblem(raw, MAX_INPUT_DEPTH + 1);
    if (problem) {
      sendError(ws, connection, idOf(raw), validationFailure(inputProblemError(problem), 'frame'));
      return;
    }
    let frame = plainlyValidFrame(raw);
    if (!frame) {
      const parsed = ClientFrame.safeParse(raw);
      if (!parsed.success) {
        sendError(ws, connection, idOf(raw), frameFailure(raw, parsed.error));
        return;
      }
      frame = parsed.data;
    }
    switch (frame.type) {
      case 'ping':
        send(ws, connection, { type: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) }, true);
        return;
      case 'call':
        this.call(ws, connection, frame.id, frame.method, frame.params ?? {}, frame.idempotency_key);
        return;
      case 'subscribe':
        this.call(ws, connection, frame.id, 'topics.subscribe', { topic: frame.topic, since: frame.since, epoch: frame.epoch });
        return;
      case 'unsubscribe':
        this.call(ws, connection, frame.id, 'topics.unsubscribe', { topic: frame.topic });
        return;
    }
  }

  /** Runs an operation; answers with a result or error frame, then runs what must follow the reply. */
  private call(ws: GatewayWebSocket, connection: Connection, id: FrameId, method: string, params: unknown, idempotencyKey?: string): void {
    const origin = new WsCallOrigin(this.core, connection, idempotencyKey);
    const outcome = this.core.execute(method, params, origin);
    if (!(outcome instanceof Promise)) {
      // Answered within the message handler: the socket is corked already.
      this.answer(ws, connection, id, outcome, true);
      return;
    }
    this.tracker.start();
    void outcome.then((settled) => {
      this.tracker.end();
      this.answer(ws, connection, id, settled);
    });
  }

  /** Sends the result or error frame, then runs what must follow it (or abandons it when the socket is gone). */
  private answer(ws: GatewayWebSocket, connection: Connection, id: FrameId, outcome: Outcome, corked = false): void {
    if (connection.closed) {
      outcome.afterReply?.abandon();
      return;
    }
    if (outcome.failure) sendError(ws, connection, id, outcome.failure);
    else sendResult(ws, connection, id, outcome.data, corked);
    outcome.afterReply?.run();
  }
}

/**
 * Where a WebSocket call comes from. Its request id is made on first use: most calls succeed
 * without logging or storing one, and making a random id is a measurable share of a cached read.
 */
class WsCallOrigin implements CallOrigin {
  readonly transport = 'ws';
  readonly principal: Principal;
  readonly connectionId: string;
  readonly subscriber: Subscriber | undefined;
  /** The whole frame, params included, was walked for NULs, lone surrogates and depth. */
  readonly inputChecked = true;
  private id: string | undefined;

  constructor(
    private readonly core: GatewayCore,
    connection: Connection,
    readonly idempotencyKey: string | undefined,
  ) {
    this.principal = connection.principal;
    this.connectionId = connection.id;
    this.subscriber = connection.subscriber ?? undefined;
  }

  get requestId(): string {
    return (this.id ??= this.core.newRequestId());
  }
}

function frameFailure(raw: unknown, error: Parameters<typeof validationFailure>[0]): ApiFailure {
  const type = raw !== null && typeof raw === 'object' ? (raw as { type?: unknown }).type : undefined;
  if (typeof type === 'string' && !(CLIENT_FRAME_TYPES as readonly string[]).includes(type)) {
    return new ApiFailure('VALIDATION_ERROR', `Unknown frame type: ${type.slice(0, 40)}`, { type: type.slice(0, 40) });
  }
  return validationFailure(error, 'frame');
}

/** Frames between the limit and this ceiling are closed with 1009; past it, the TCP connection is dropped. */
const SLOW_CONSUMER_SWEEP_MS = 250;

export function hardFrameCeiling(maxFrameBytes: number): number {
  return Math.max(4 * maxFrameBytes, 1024 * 1024);
}

function idOf(raw: unknown): FrameId | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const id = (raw as { id?: unknown }).id;
  if (typeof id === 'string' && id.length > 0 && id.length <= 64 && textProblem(id) === null) return id;
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return id;
  return undefined;
}
