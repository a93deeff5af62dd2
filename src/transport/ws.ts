import {
  ClientFrame,
  CloseCode,
  codecs,
  negotiateEncoding,
  PROTOCOL_VERSION,
  SUBPROTOCOL,
  type Codec,
  type Encoding,
  type FrameId,
  type ServerFrame,
} from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import { ApiFailure, toFailure, validationFailure } from '../core/errors.js';
import type { Logger } from '../logger.js';
import type { GatewayCore } from './core.js';
import { Fanout } from './fanout.js';
import { credentialsOf } from './http.js';
import { sendFailure } from './respond.js';
import { uWS, type TemplatedApp, type WebSocket } from './uws.js';

/**
 * The WebSocket adapter at /v1/ws: authenticates the upgrade, then maps `call` frames onto the
 * same operations as REST, and `subscribe` frames onto node-local fan-out.
 */
export interface WsOptions {
  maxFrameBytes: number;
  maxSubscriptions: number;
  heartbeatMs: number;
  maxBackpressureBytes: number;
  log: Logger;
}

interface Connection {
  id: string;
  principal: Principal;
  encoding: Encoding;
  codec: Codec;
  /** Client topic -> stream key. */
  subscriptions: Map<string, string>;
  closed: boolean;
}

export type GatewaySocket = WebSocket<Connection>;

export class WsAdapter {
  readonly sockets = new Set<GatewaySocket>();
  private readonly fanout: Fanout;

  constructor(
    private readonly app: TemplatedApp,
    private readonly core: GatewayCore,
    private readonly options: WsOptions,
  ) {
    this.fanout = new Fanout(app, core);
  }

  mount(path = '/v1/ws'): void {
    const { options } = this;
    this.app.ws<Connection>(path, {
      compression: uWS.DISABLED,
      // uWS drops an oversized frame's connection without a close frame. Letting it accept up to a
      // hard ceiling and checking the documented limit ourselves gives clients a real 1009.
      maxPayloadLength: hardFrameCeiling(options.maxFrameBytes),
      maxBackpressure: options.maxBackpressureBytes,
      // Past the limit uWS would drop frames silently; closing lets the client resume instead.
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
        try {
          this.core.resolveApiVersion(req.getHeader('x-api-version') || undefined);
        } catch (error) {
          refuse(toFailure(error));
          return;
        }
        if (!encoding) {
          refuse(
            new ApiFailure('VALIDATION_ERROR', 'No supported WebSocket subprotocol offered', {
              offered,
              supported: Object.values(SUBPROTOCOL),
            }),
          );
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
        this.send(ws, connection, {
          type: 'welcome',
          connection_id: connection.id,
          protocol: PROTOCOL_VERSION,
          encoding: connection.encoding,
          heartbeat_ms: options.heartbeatMs,
          limits: { max_frame_bytes: options.maxFrameBytes, max_subscriptions: options.maxSubscriptions },
        });
      },
      message: (ws, message, isBinary) => this.onMessage(ws, message, isBinary),
      close: (ws) => {
        this.sockets.delete(ws);
        const connection = ws.getUserData();
        connection.closed = true;
        for (const key of connection.subscriptions.values()) this.fanout.leave(key);
        connection.subscriptions.clear();
      },
    });
  }

  /** Closes every connection with 1001 so that clients reconnect elsewhere and resume. */
  closeAll(reason = 'server shutting down'): void {
    for (const ws of [...this.sockets]) ws.end(CloseCode.GOING_AWAY, reason);
  }

  private onMessage(ws: GatewaySocket, message: ArrayBuffer, isBinary: boolean): void {
    const connection = ws.getUserData();
    if (message.byteLength > this.options.maxFrameBytes) {
      ws.end(CloseCode.MESSAGE_TOO_BIG, `frame over ${this.options.maxFrameBytes} bytes`);
      return;
    }
    let raw: unknown;
    try {
      // Text frames are JSON and binary frames MessagePack, whatever the subprotocol: be lenient in what we read.
      raw = (isBinary ? codecs.msgpack : codecs.json).decode(message);
    } catch {
      this.sendError(ws, connection, undefined, new ApiFailure('VALIDATION_ERROR', `Frame is not valid ${isBinary ? 'MessagePack' : 'JSON'}`));
      return;
    }
    const parsed = ClientFrame.safeParse(raw);
    if (!parsed.success) {
      const id = idOf(raw);
      const type = raw !== null && typeof raw === 'object' ? (raw as { type?: unknown }).type : undefined;
      const failure =
        typeof type === 'string' && !['call', 'subscribe', 'unsubscribe', 'ping'].includes(type)
          ? new ApiFailure('VALIDATION_ERROR', `Unknown frame type: ${type.slice(0, 40)}`, { type: type.slice(0, 40) })
          : validationFailure(parsed.error, 'frame');
      this.sendError(ws, connection, id, failure);
      return;
    }
    const frame = parsed.data;
    switch (frame.type) {
      case 'ping':
        this.send(ws, connection, { type: 'pong', ...(frame.id === undefined ? {} : { id: frame.id }) });
        return;
      case 'call': {
        const requestId = this.core.newRequestId();
        const origin = { principal: connection.principal, requestId, idempotencyKey: frame.idempotency_key };
        this.core.invoke(frame.method, frame.params ?? {}, origin).then(
          (data) => this.send(ws, connection, { type: 'result', id: frame.id, data }),
          (error) => {
            const failure = toFailure(error);
            if (failure.code === 'INTERNAL_ERROR') this.options.log.error({ err: error, request_id: requestId, method: frame.method }, 'call failed');
            this.sendError(ws, connection, frame.id, failure);
          },
        );
        return;
      }
      case 'subscribe':
        void this.subscribe(ws, frame.id, frame.topic);
        return;
      case 'unsubscribe': {
        const key = connection.subscriptions.get(frame.topic);
        if (key) {
          connection.subscriptions.delete(frame.topic);
          for (const encoding of Object.keys(codecs) as Encoding[]) ws.unsubscribe(Fanout.channel(key, encoding));
          this.fanout.leave(key);
        }
        this.send(ws, connection, { type: 'result', id: frame.id, data: { topic: frame.topic, subscribed: false } });
        return;
      }
    }
  }

  private async subscribe(ws: GatewaySocket, id: FrameId, topic: string): Promise<void> {
    const connection = ws.getUserData();
    try {
      if (!connection.subscriptions.has(topic) && connection.subscriptions.size >= this.options.maxSubscriptions) {
        throw new ApiFailure('VALIDATION_ERROR', `At most ${this.options.maxSubscriptions} subscriptions per connection`, {
          max_subscriptions: this.options.maxSubscriptions,
        });
      }
      const opened = await this.core.openSubscription(connection.principal, topic);
      if (connection.closed) return;
      if (!connection.subscriptions.has(topic)) {
        connection.subscriptions.set(topic, opened.key);
        this.fanout.join(opened.key);
        ws.subscribe(Fanout.channel(opened.key, connection.encoding));
      }
      this.send(ws, connection, { type: 'result', id, data: { topic, subscribed: true, seq: opened.seq, epoch: opened.epoch } });
    } catch (error) {
      this.sendError(ws, connection, id, toFailure(error));
    }
  }

  private sendError(ws: GatewaySocket, connection: Connection, id: FrameId | undefined, failure: ApiFailure): void {
    this.send(ws, connection, { type: 'error', ...(id === undefined ? {} : { id }), error: failure.toBody() });
  }

  /** The connection, not the socket, says whether it is closed: a closed uWS socket must not be touched. */
  private send(ws: GatewaySocket, connection: Connection, frame: ServerFrame): void {
    if (connection.closed) return;
    const bytes = connection.codec.encode(frame);
    ws.cork(() => ws.send(bytes, connection.codec.binary));
  }
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
