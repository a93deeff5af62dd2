import {
  CLIENT_FRAME_TYPES,
  ClientFrame,
  codecs,
  CONNECTION_REFRESH_METHOD,
  ConnectionRefreshParams,
  type ConnectionRefreshResult,
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
import type { InFlight } from './in-flight.js';
import { credentialsOf } from './request.js';
import { sendFailure } from './respond.js';
import { ConnectionPolicy, policedState, type SocketLimits } from './socket/policy.js';
import type { TemplatedApp } from './uws.js';
import { send, sendError, sendResult, type Connection, type GatewayWebSocket } from './ws-connection.js';
import { plainlyValidFrame } from './ws-frames.js';
import { socketSubscriber, uwsBroadcast } from './ws-delivery.js';

/**
 * The WebSocket adapter at /v1/ws: authenticates the upgrade, then maps frames onto operations
 * (`call` onto any, `subscribe`/`unsubscribe` onto topics.subscribe/unsubscribe) and the events
 * the realtime layer delivers onto event frames.
 */
export interface WsOptions extends SocketLimits {
  maxSubscriptions: number;
  log: Logger;
}

export class WsAdapter {
  /** Credentials' lifetime, frame limits, backpressure, keep-alive and close codes: shared with every socket transport. */
  readonly policy: ConnectionPolicy<Connection>;

  constructor(
    private readonly app: TemplatedApp,
    private readonly core: GatewayCore,
    private readonly options: WsOptions,
    /** Calls in flight, so that a drain answers them before closing their sockets. */
    private readonly inFlight: InFlight,
  ) {
    core.useBroadcast(uwsBroadcast(app));
    this.policy = new ConnectionPolicy<Connection>('stategate', options, {
      expiring: (ws, expiresAt) => send(ws, ws.getUserData(), { type: 'credentials_expiring', expires_at: new Date(expiresAt).toISOString() }),
    });
  }

  mount(path = '/v1/ws'): void {
    const { options } = this;
    this.app.ws<Connection>(path, {
      ...this.policy.behavior(),
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
              ...policedState(this.core.newConnectionId(), principal, options),
              principal,
              encoding,
              codec: codecs[encoding],
              subscriber: null,
            };
            // A browser that offered a token protocol must see an encoding protocol chosen.
            res.cork(() => res.upgrade(connection, key, protocols.length > 0 ? SUBPROTOCOL[encoding] : '', extensions, context));
          },
          (error) => refuse(toFailure(error)),
        );
      },
      open: (ws) => {
        const connection = ws.getUserData();
        connection.subscriber = socketSubscriber(ws, () => this.policy.close(ws, 'resume', 'events lost on this node: resume'));
        // A notice due at once (a token about to expire) is sent from a timer: after the welcome.
        this.policy.opened(ws);
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
        this.policy.closed(ws);
        const connection = ws.getUserData();
        if (connection.subscriber) this.core.connectionClosed(connection.id, connection.subscriber);
      },
    });
  }

  private onMessage(ws: GatewayWebSocket, message: ArrayBuffer, isBinary: boolean): void {
    const connection = ws.getUserData();
    if (!this.policy.admit(ws, message.byteLength)) return;
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
        if (frame.method === CONNECTION_REFRESH_METHOD) this.refresh(ws, connection, frame.id, frame.params ?? {});
        else this.call(ws, connection, frame.id, frame.method, frame.params ?? {}, frame.idempotency_key);
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
    this.inFlight.start();
    void outcome.then((settled) => {
      this.inFlight.end();
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

  /**
   * `connection.refresh`: fresh credentials for the open connection. The subscriptions they no
   * longer cover end, each with an `unsubscribed` frame; the others go on without a gap.
   */
  private refresh(ws: GatewayWebSocket, connection: Connection, id: FrameId, params: unknown): void {
    const parsed = ConnectionRefreshParams.safeParse(params);
    if (!parsed.success) {
      sendError(ws, connection, id, validationFailure(parsed.error, `input for ${CONNECTION_REFRESH_METHOD}`));
      return;
    }
    this.inFlight.start();
    void (async () => {
      try {
        const principal = await this.core.authenticate(parsed.data.token);
        if (connection.closed) return;
        this.policy.renew(ws, principal);
        const ended = connection.subscriber ? await this.core.credentialsRenewed(connection.subscriber, principal) : [];
        if (connection.closed) return;
        for (const { topic, failure } of ended) send(ws, connection, { type: 'unsubscribed', topic, error: failure.toBody() });
        const result: ConnectionRefreshResult = {
          subject: principal.subject,
          expires_at: principal.expiresAt === undefined ? null : new Date(principal.expiresAt).toISOString(),
          ended: ended.map((end) => end.topic),
        };
        sendResult(ws, connection, id, result);
      } catch (error) {
        sendError(ws, connection, id, toFailure(error));
      } finally {
        this.inFlight.end();
      }
    })();
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

function idOf(raw: unknown): FrameId | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const id = (raw as { id?: unknown }).id;
  if (typeof id === 'string' && id.length > 0 && id.length <= 64 && textProblem(id) === null) return id;
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return id;
  return undefined;
}
