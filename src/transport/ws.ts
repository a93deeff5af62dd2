import {
  CLIENT_FRAME_TYPES,
  ClientFrame,
  CloseCode,
  codecs,
  negotiateEncoding,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  type FrameId,
} from '../../protocol/index.js';
import { ApiFailure, toFailure, validationFailure } from '../core/errors.js';
import type { Logger } from '../logger.js';
import type { GatewayCore } from './core.js';
import { Fanout } from './fanout.js';
import { credentialsOf } from './http.js';
import { sendFailure } from './respond.js';
import { uWS, type TemplatedApp } from './uws.js';
import { send, sendError, takeFrameBudget, type Connection, type GatewayWebSocket } from './ws-connection.js';
import { Subscriptions } from './ws-subscriptions.js';

/**
 * The WebSocket adapter at /v1/ws: authenticates the upgrade, then maps `call` frames onto the
 * same operations as REST, and `subscribe` frames onto node-local fan-out with resume.
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
  private readonly subscriptions: Subscriptions;

  constructor(
    private readonly app: TemplatedApp,
    private readonly core: GatewayCore,
    private readonly options: WsOptions,
  ) {
    const fanout = new Fanout(app, core, (key) => this.resumeAll(key));
    this.subscriptions = new Subscriptions(core, fanout, options.maxSubscriptions);
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
        const apiKey = credentialsOf(req) ?? (new URLSearchParams(req.getQuery() ?? '').get('api_key') || undefined);
        const requestId = this.core.newRequestId();
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        const encoding = negotiateEncoding(offered ? offered.split(',').map((name) => name.trim()) : []);
        const refuse = (failure: ApiFailure) => {
          if (!aborted) sendFailure(res, failure, requestId);
        };
        if (!encoding) {
          refuse(new ApiFailure('VALIDATION_ERROR', 'No supported WebSocket subprotocol offered', { offered, supported: Object.values(SUBPROTOCOL) }));
          return;
        }
        this.core.authenticate(apiKey).then(
          (principal) => {
            if (aborted) return;
            const connection: Connection = {
              id: this.core.newConnectionId(),
              principal,
              encoding,
              codec: codecs[encoding],
              subscriptions: new Map(),
              pending: new Map(),
              budget: { tokens: options.maxFramesPerSecond * 2, refilledAt: performance.now() },
              closed: false,
            };
            res.cork(() => res.upgrade(connection, key, offered ? SUBPROTOCOL[encoding] : '', extensions, context));
          },
          (error) => refuse(toFailure(error)),
        );
      },
      open: (ws) => {
        this.sockets.add(ws);
        const connection = ws.getUserData();
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
        this.subscriptions.closed(ws, connection);
      },
    });
  }

  /** Closes every connection with 1001 so that clients reconnect elsewhere and resume. */
  closeAll(reason = 'server shutting down'): void {
    for (const ws of [...this.sockets]) ws.end(CloseCode.GOING_AWAY, reason);
  }

  /** This node lost events of a stream it could not refill: its subscribers resume on their own. */
  private resumeAll(key: string): void {
    for (const ws of this.subscriptions.socketsOf(key)) ws.end(CloseCode.RESUME, 'events lost on this node: resume');
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
    const parsed = ClientFrame.safeParse(raw);
    if (!parsed.success) {
      sendError(ws, connection, idOf(raw), frameFailure(raw, parsed.error));
      return;
    }
    const frame = parsed.data;
    switch (frame.type) {
      case 'ping':
        send(ws, connection, { type: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) });
        return;
      case 'call': {
        const requestId = this.core.newRequestId();
        this.core.invoke(frame.method, frame.params ?? {}, { principal: connection.principal, requestId }).then(
          (data) => send(ws, connection, { type: 'result', id: frame.id, data }),
          (error) => {
            const failure = toFailure(error);
            if (failure.code === 'INTERNAL_ERROR') this.options.log.error({ err: error, request_id: requestId, method: frame.method }, 'call failed');
            sendError(ws, connection, frame.id, failure);
          },
        );
        return;
      }
      case 'subscribe':
        void this.subscriptions.subscribe(ws, connection, frame);
        return;
      case 'unsubscribe':
        this.subscriptions.unsubscribe(ws, connection, frame.id, frame.topic);
        return;
    }
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
export function hardFrameCeiling(maxFrameBytes: number): number {
  return Math.max(4 * maxFrameBytes, 1024 * 1024);
}

function idOf(raw: unknown): FrameId | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const id = (raw as { id?: unknown }).id;
  if (typeof id === 'string' && id.length > 0 && id.length <= 64) return id;
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return id;
  return undefined;
}
