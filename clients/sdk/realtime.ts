import { ApiError, type WebSocketConstructor } from '../client.js';
import type { Encoding } from '../../protocol/codec.js';
import type { EventData, EventName } from '../../protocol/events.js';
import type { EventFrame, SubscribeResult } from '../../protocol/frames.js';
import type { InputOf, OperationName, OutputOf } from '../../protocol/operations.js';
import {
  RealtimeError,
  ResilientClient,
  type CallOptions,
  type ConnectionState,
  type ResubscribedInfo,
  type StateDetail,
  type StateListener,
} from '../resilient-client.js';
import { StateSetError } from './errors.js';
import { newIdempotencyKey } from './http.js';
import { ROUTES } from './routes.js';

export type { ConnectionState, StateDetail, ResubscribedInfo };

/**
 * Realtime over the gateway's WebSocket (`/v1/ws`): `client.realtime(options)`. One connection
 * that stays up: jittered reconnects driven by close codes, topics resumed by seq/epoch with every
 * event handed over once and in order, calls queued (bounded) while offline, token streaming.
 */
export interface RealtimeOptions {
  /** Frame encoding; default JSON. */
  codec?: Encoding;
  /** The WebSocket URL; default the client's baseURL with ws(s):// and `/v1/ws`. */
  url?: string;
  /** Default `globalThis.WebSocket`; in Node 20 pass the `ws` package's class. */
  WebSocket?: WebSocketConstructor;
  /**
   * Fresh credentials for every connection attempt (a client token minted by your backend);
   * default the client's apiKey. When it keeps failing (3 attempts) the state becomes `failed`.
   */
  token?: () => Promise<string>;
  /** Calls waiting while offline, at most (default 100); one more is rejected with QUEUE_FULL. */
  maxQueue?: number;
  /** Reconnect delays: full jitter over `initialMs * 2^attempt`, capped at `maxMs` (100 ms, 10 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Milliseconds before an unanswered call is rejected with TIMEOUT; default 10 000. */
  callTimeoutMs?: number;
  /**
   * Milliseconds between pings proving the connection alive (one unanswered within
   * `callTimeoutMs` drops and reconnects it); default the server's `heartbeat_ms`; false: none.
   */
  heartbeatMs?: number | false;
}

/** An event frame whose `data` is typed by its `event` name (see protocol/events.ts). */
export type RealtimeEvent = {
  [E in EventName]: Omit<EventFrame, 'event' | 'data'> & { event: E; data: EventData<E> };
}[EventName];

export interface SubscriptionHandlers {
  /** Every event of the topic, each once, in order, across reconnects. */
  onEvent(event: RealtimeEvent): void;
  /**
   * After every reconnect (and when a live event shows the topic's history was replaced):
   * `recovered: false` means events were lost; refetch what you show over REST.
   */
  onResubscribed?(info: ResubscribedInfo): void;
  /** The topic could no longer be subscribed after a reconnect (deleted, say); it is no longer followed. */
  onError?(error: StateSetError): void;
}

export interface Subscription {
  readonly topic: string;
  /** The first subscription's answer: position, and replies being streamed right now (`streams`). */
  readonly result: SubscribeResult;
  unsubscribe(): Promise<void>;
}

export interface RealtimeCallOptions {
  /** Replaces the generated idempotency key of a write (POST operations). */
  idempotencyKey?: string;
}

export type StreamStartInput = InputOf<'streams.start'>;
export type StoredMessage = OutputOf<'streams.end'>;

/** A reply being streamed: lives on the connection that started it (a reconnect ends it as incomplete). */
export interface RealtimeStream {
  readonly streamId: string;
  readonly started: OutputOf<'streams.start'>;
  append(delta: string): Promise<OutputOf<'streams.append'>>;
  end(metadata?: Record<string, unknown>): Promise<StoredMessage>;
}

/** Writes that must not be resent blindly, and whose resends the gateway can recognise by key. */
function keyedByDefault(method: string): boolean {
  const route = (ROUTES as Record<string, { method: string } | undefined>)[method];
  // Stream calls belong to their connection; typing is an ephemeral signal.
  return route?.method === 'POST' && !method.startsWith('streams.') && method !== 'conversations.typing';
}

/** Reads are safe to send again after a connection was lost before their answer. */
function safeToResend(method: string): boolean {
  return (ROUTES as Record<string, { method: string } | undefined>)[method]?.method === 'GET';
}

export class RealtimeClient {
  private readonly core: ResilientClient;
  private readonly topics = new Map<string, { handlers: Set<SubscriptionHandlers>; result: Promise<SubscribeResult> }>();

  /** @internal: use `client.realtime(options)`. */
  constructor(options: RealtimeOptions, connection: { apiKey: string; origin: string; probe: (credential: string) => Promise<boolean> }) {
    if (options.codec !== undefined && options.codec !== 'json' && options.codec !== 'msgpack') {
      throw new StateSetError({ code: 'VALIDATION_ERROR', message: `codec must be 'json' or 'msgpack', not ${String(options.codec)}`, param: 'codec' });
    }
    const url = options.url ?? `${connection.origin.replace(/^http/, 'ws')}/v1/ws`;
    if (!/^wss?:\/\//.test(url)) {
      throw new StateSetError({ code: 'VALIDATION_ERROR', message: `realtime url must start with ws:// or wss://, not ${url}`, param: 'url' });
    }
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new StateSetError({
        code: 'VALIDATION_ERROR',
        message: 'No WebSocket here: pass options.WebSocket (the `ws` package in Node 20)',
        param: 'WebSocket',
      });
    }
    const token = options.token;
    this.core = ResilientClient.create({
      url,
      apiKey: connection.apiKey,
      encoding: options.codec ?? 'json',
      WebSocket: WebSocketImpl,
      // A WebSocket class handed in (the `ws` package) can send headers; the browser's cannot,
      // so there the credential travels as a subprotocol, out of URLs and their logs.
      keyInProtocol: options.WebSocket === undefined,
      callTimeoutMs: options.callTimeoutMs ?? 10_000,
      maxQueue: options.maxQueue ?? 100,
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(token ? { credentials: async () => ({ apiKey: await token() }) } : {}),
      // Browsers hide a refused upgrade's status: ask REST whether the credential is refused.
      credentialsRefused: async (credential) => (credential === undefined ? false : connection.probe(credential)),
    });
  }

  get state(): ConnectionState {
    return this.core.state;
  }

  /** The current connection's id, or null while offline. */
  get connectionId(): string | null {
    return this.core.connectionId;
  }

  /** Calls waiting for the connection. */
  get queued(): number {
    return this.core.queued;
  }

  /** `state`: (state, detail) on every change; returns a function that stops listening. */
  on(event: 'state', listener: StateListener): () => void {
    if (event !== 'state') throw new StateSetError({ code: 'VALIDATION_ERROR', message: `unknown realtime event ${String(event)}` });
    return this.core.onState(listener);
  }

  /** Resolves when connected; rejects (CONNECTION_FAILED) once the client gave up. */
  async connect(): Promise<void> {
    await this.core.connect().catch(rethrow);
  }

  /** Follows a topic (`conversation:<id>`, `session:<id>`, `agent:<id>`, `account`). */
  async subscribe(topic: string, handlers: SubscriptionHandlers): Promise<Subscription> {
    if (!handlers || typeof handlers.onEvent !== 'function') {
      throw new StateSetError({ code: 'VALIDATION_ERROR', message: 'subscribe needs handlers with onEvent', param: 'onEvent' });
    }
    // Several subscriptions to one topic share one subscription on the socket.
    let shared = this.topics.get(topic);
    if (!shared) {
      const set = new Set<SubscriptionHandlers>();
      const each = (fn: (h: SubscriptionHandlers) => void) => {
        for (const h of [...set]) fn(h);
      };
      const result = this.core.subscribe(topic, {
        onEvent: (event) => each((h) => h.onEvent(event as RealtimeEvent)),
        onResubscribed: (info) => each((h) => h.onResubscribed?.(info)),
        onReset: (at, cause) => {
          // A lost resume is told by onResubscribed already; a live epoch change only here.
          if (cause === 'epoch') each((h) => h.onResubscribed?.({ recovered: false, seq: at.seq, epoch: at.epoch }));
        },
        onError: (error) => {
          if (this.topics.get(topic) === shared) this.topics.delete(topic);
          each((h) => h.onError?.(toStateSetError(error)));
        },
      });
      shared = { handlers: set, result };
      this.topics.set(topic, shared);
      const mine = shared;
      result.catch(() => {
        if (this.topics.get(topic) === mine) this.topics.delete(topic);
      });
    }
    const entry = shared;
    entry.handlers.add(handlers);
    let result: SubscribeResult;
    try {
      result = await entry.result;
    } catch (error) {
      entry.handlers.delete(handlers);
      return rethrow(error);
    }
    let active = true;
    return {
      topic,
      result,
      unsubscribe: async () => {
        if (!active) return;
        active = false;
        entry.handlers.delete(handlers);
        if (entry.handlers.size > 0 || this.topics.get(topic) !== entry) return;
        this.topics.delete(topic);
        await this.core.unsubscribe(topic).catch(rethrow);
      },
    };
  }

  conversation(conversationId: string, handlers: SubscriptionHandlers): Promise<Subscription> {
    return this.subscribe(`conversation:${conversationId}`, handlers);
  }

  session(sessionId: string, handlers: SubscriptionHandlers): Promise<Subscription> {
    return this.subscribe(`session:${sessionId}`, handlers);
  }

  agent(agentId: string, handlers: SubscriptionHandlers): Promise<Subscription> {
    return this.subscribe(`agent:${agentId}`, handlers);
  }

  account(handlers: SubscriptionHandlers): Promise<Subscription> {
    return this.subscribe('account', handlers);
  }

  /**
   * Any operation over the socket. Offline, it waits in the queue and is sent, in order, after the
   * topics are resubscribed. A write (POST) carries an idempotency key generated once for the
   * call, so a resend after a lost answer is answered by the gateway instead of applied twice.
   */
  async call<N extends OperationName>(method: N, params: InputOf<N>, options: RealtimeCallOptions = {}): Promise<OutputOf<N>> {
    const idempotencyKey = options.idempotencyKey ?? (keyedByDefault(method) ? newIdempotencyKey() : undefined);
    const callOptions: CallOptions = {
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      resendOnReconnect: idempotencyKey !== undefined || safeToResend(method),
    };
    return this.core.call(method, params, callOptions).catch(rethrow);
  }

  /** `streams.start`: appends and the end go over the same connection. */
  async startStream(input: StreamStartInput): Promise<RealtimeStream> {
    // Started on a live connection only: a stream queued for later would outlive nothing useful.
    await this.connect();
    const connectionId = this.core.connectionId;
    const started = await this.core.call('streams.start', input, { ...(connectionId ? { connectionId } : {}), resendOnReconnect: false }).catch(rethrow);
    const bound: CallOptions = { ...(connectionId ? { connectionId } : {}), resendOnReconnect: false };
    return {
      streamId: started.stream_id,
      started,
      append: (delta) => this.core.call('streams.append', { stream_id: started.stream_id, delta }, bound).catch(rethrow),
      end: (metadata) => this.core.call('streams.end', { stream_id: started.stream_id, ...(metadata ? { metadata } : {}) }, bound).catch(rethrow),
    };
  }

  /**
   * Streams a reply: start, one append per non-empty chunk, end. The stream is ended even when
   * the chunks throw (the text so far is stored), and the error is then rethrown.
   */
  async streamReply(input: StreamStartInput, chunks: AsyncIterable<string> | Iterable<string>): Promise<StoredMessage> {
    const stream = await this.startStream(input);
    try {
      for await (const chunk of chunks) {
        if (typeof chunk !== 'string') {
          throw new StateSetError({ code: 'VALIDATION_ERROR', message: `streamReply chunks must be strings, not ${typeof chunk}` });
        }
        if (chunk !== '') await stream.append(chunk);
      }
    } catch (error) {
      await stream.end({ incomplete: true }).catch(() => {});
      throw error;
    }
    return stream.end();
  }

  /** Says the caller is (or stopped) typing; ephemeral, so not queued: a no-op while offline. */
  async typing(conversationId: string, typing = true): Promise<void> {
    if (!this.core.connected) return;
    await this.core.call('conversations.typing', { conversation_id: conversationId, typing }, { noQueue: true }).catch(rethrow);
  }

  /** Drops the connection as a network failure would (tests, "reconnect now"). */
  drop(): void {
    this.core.drop();
  }

  /** Closes for good: waiting calls are rejected with CONNECTION_CLOSED. */
  close(): Promise<void> {
    return this.core.close();
  }
}

function toStateSetError(error: unknown): StateSetError {
  if (error instanceof StateSetError) return error;
  if (error instanceof ApiError) {
    return new StateSetError({
      code: error.code,
      message: error.message,
      type: error.type,
      ...(error.details ? { details: error.details } : {}),
      cause: error,
    });
  }
  if (error instanceof RealtimeError) {
    return new StateSetError({
      code: error.code,
      message: error.message,
      ...(error.closeCode === undefined ? {} : { details: { close_code: error.closeCode } }),
      cause: error,
    });
  }
  return new StateSetError({ code: 'CONNECTION_ERROR', message: error instanceof Error ? error.message : String(error), cause: error });
}

function rethrow(error: unknown): never {
  throw toStateSetError(error);
}
