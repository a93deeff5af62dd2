import { codecs, SUBPROTOCOL, type Codec, type Encoding } from '../protocol/codec.js';
import type { ErrorBody, ErrorEnvelope, SuccessEnvelope } from '../protocol/envelope.js';
import type { ErrorCode } from '../protocol/errors.js';
import { CONNECTION_REFRESH_METHOD } from '../protocol/connection.js';
import type {
  ConnectionRefreshResult,
  CredentialsExpiringFrame,
  ErrorFrame,
  EventFrame,
  FrameId,
  ServerFrame,
  SubscribeResult,
  UnsubscribedFrame,
  WelcomeFrame,
} from '../protocol/frames.js';
import type { InputOf, OperationName, OutputOf, RestOperationName } from '../protocol/operations.js';
// The generated route table (method and path of each REST operation) rather than the operation
// table: it carries no schemas, so a browser bundle of this file stays small.
import { ROUTES } from './sdk/routes.js';

/** TOKEN_SUBPROTOCOL_PREFIX of protocol/realtime.ts, repeated here because that module carries zod schemas. */
export const CREDENTIAL_SUBPROTOCOL_PREFIX = 'stategate.token.';

/**
 * A small typed client for both transports. Every operation is called by its name with the same
 * input over REST or over a WebSocket, which is how the tests prove the two transports agree.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly type: string;
  readonly details: Record<string, unknown> | undefined;
  readonly status: number | undefined;
  readonly requestId: string | undefined;

  constructor(body: ErrorBody, extra: { status?: number; requestId?: string } = {}) {
    super(body.message);
    this.name = 'ApiError';
    this.code = body.code;
    this.type = body.type;
    this.details = body.details;
    this.status = extra.status;
    this.requestId = extra.requestId;
  }
}

// ---------- REST ----------

export interface RestClientOptions {
  /** Gateway origin, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

export interface RestResponse<T> {
  status: number;
  headers: Headers;
  body: SuccessEnvelope<T> | ErrorEnvelope;
}

export class RestClient {
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: RestClientOptions) {
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** Calls an operation by name; resolves to its data or rejects with ApiError. */
  async call<N extends RestOperationName>(name: N, input: InputOf<N>): Promise<OutputOf<N>> {
    const { method, path } = ROUTES[name];
    const fields: Record<string, unknown> = { ...(input as Record<string, unknown>) };
    const url = path.replace(/\{(\w+)\}/g, (_, key: string) => {
      const value = fields[key];
      delete fields[key];
      return encodeURIComponent(String(value));
    });
    const hasBody = method !== 'GET' && method !== 'DELETE';
    const query = hasBody ? '' : toQuery(fields);
    const response = await this.request<OutputOf<N>>(method, url + query, hasBody ? fields : undefined);
    if (!response.body.success) {
      throw new ApiError(response.body.error, { status: response.status, requestId: response.body.meta.request_id });
    }
    return response.body.data;
  }

  /** A raw request, for what the typed calls do not cover. */
  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RestResponse<T>> {
    const response = await this.fetchImpl(this.options.baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.options.apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...this.options.headers,
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as RestResponse<T>['body'] };
  }
}

function toQuery(fields: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

// ---------- WebSocket ----------

/** The subset of the WebSocket API the client needs: the browser's, or the `ws` package's. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
  addEventListener(type: 'open', listener: () => void): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string[], options?: { headers?: Record<string, string> }) => WebSocketLike;

export interface SocketOptions {
  /** ws:// or wss:// URL of /v1/ws */
  url: string;
  apiKey?: string;
  encoding?: Encoding;
  /** Defaults to globalThis.WebSocket; in Node 20 pass the `ws` package's class. */
  WebSocket?: WebSocketConstructor;
  /** Browsers cannot set headers: send the key as `?api_key=` instead. */
  keyInQuery?: boolean;
  /** Or as the subprotocol `stategate.token.<key>` (browsers; kept out of URLs and their logs). */
  keyInProtocol?: boolean;
  /** Rejects pending calls after this long. */
  callTimeoutMs?: number;
}

type EventListener = (event: EventFrame) => void;

interface Pending {
  /** Called synchronously when the result arrives, before later frames are dispatched. */
  onResult?: (data: unknown) => void;
  resolve: (data: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class GatewaySocket {
  private nextId = 1;
  private readonly pending = new Map<FrameId, Pending>();
  private readonly listeners = new Map<string, Set<EventListener>>();
  private readonly anyListeners = new Set<EventListener>();
  private readonly closeListeners = new Set<(code: number, reason: string) => void>();
  private readonly errorListeners = new Set<(frame: ErrorFrame) => void>();
  private readonly noticeListeners = new Set<(frame: CredentialsExpiringFrame | UnsubscribedFrame) => void>();
  private closed: { code: number; reason: string } | null = null;

  private constructor(
    private readonly ws: WebSocketLike,
    private readonly codec: Codec,
    readonly welcome: WelcomeFrame,
    private readonly callTimeoutMs: number,
  ) {}

  /** Opens a connection and resolves once the server's `welcome` frame has arrived. */
  static connect(options: SocketOptions): Promise<GatewaySocket> {
    const encoding = options.encoding ?? 'json';
    const codec = codecs[encoding];
    const Impl = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Impl) throw new Error('No WebSocket implementation: pass options.WebSocket');
    const url = new URL(options.url);
    const headers: Record<string, string> = {};
    const protocols: string[] = [SUBPROTOCOL[encoding]];
    if (options.apiKey) {
      if (options.keyInProtocol) protocols.push(CREDENTIAL_SUBPROTOCOL_PREFIX + options.apiKey);
      else if (options.keyInQuery) url.searchParams.set('api_key', options.apiKey);
      else headers['x-api-key'] = options.apiKey;
    }
    const ws = new Impl(url.toString(), protocols, { headers });
    ws.binaryType = 'arraybuffer';

    return new Promise((resolve, reject) => {
      let socket: GatewaySocket | null = null;
      ws.addEventListener('message', (event) => {
        let frame: ServerFrame;
        try {
          frame = codec.decode(event.data as ArrayBuffer | string) as ServerFrame;
        } catch {
          ws.close(1008, 'undecodable frame');
          return;
        }
        if (socket) socket.dispatch(frame);
        else if (frame.type === 'welcome') {
          socket = new GatewaySocket(ws, codec, frame, options.callTimeoutMs ?? 10_000);
          resolve(socket);
        }
      });
      ws.addEventListener('error', (event) => {
        if (socket) return;
        // The `ws` package names the refused upgrade's HTTP status (401: bad credentials); browsers do not.
        const message = String((event as { message?: unknown } | null)?.message ?? '');
        const status = /Unexpected server response: (\d{3})/.exec(message)?.[1];
        const error = new Error(`WebSocket connection to ${options.url} failed${message ? `: ${message}` : ''}`);
        reject(status ? Object.assign(error, { status: Number(status) }) : error);
      });
      ws.addEventListener('close', (event) => {
        if (socket) socket.handleClose(event.code, event.reason);
        else reject(Object.assign(new Error(`WebSocket closed before welcome (${event.code})`), { code: event.code }));
      });
    });
  }

  get isOpen(): boolean {
    return this.closed === null;
  }

  /** Calls an operation by name; resolves to its data or rejects with ApiError. */
  call<N extends OperationName>(method: N, params: InputOf<N>, extra: Record<string, unknown> = {}): Promise<OutputOf<N>> {
    return this.request({ type: 'call', method, params, ...extra }) as Promise<OutputOf<N>>;
  }

  /**
   * Subscribes to a topic; `listener` receives its events from now on. With `resume`, the server
   * first replays every event after `resume.since` (see SubscribeResult.recovered).
   */
  async subscribe(
    topic: string,
    listener?: EventListener,
    resume?: { since: number; epoch: string },
    /** Runs on the result before any event that follows it is dispatched. */
    onResult?: (result: SubscribeResult) => void,
  ): Promise<SubscribeResult> {
    if (listener) this.on(topic, listener);
    try {
      const frame = { type: 'subscribe', topic, ...(resume ? { since: resume.since, epoch: resume.epoch } : {}) };
      return (await this.request(frame, onResult as ((data: unknown) => void) | undefined)) as SubscribeResult;
    } catch (error) {
      if (listener) this.off(topic, listener);
      throw error;
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.request({ type: 'unsubscribe', topic });
    this.listeners.delete(topic);
  }

  async ping(): Promise<void> {
    await this.request({ type: 'ping' });
  }

  /**
   * Hands fresh credentials (a new client token for the same subject) to the open connection:
   * it and its subscriptions go on. Subscriptions the new token does not cover end (`ended`, and
   * an `unsubscribed` notice each).
   */
  async refresh(token: string): Promise<ConnectionRefreshResult> {
    return (await this.request({ type: 'call', method: CONNECTION_REFRESH_METHOD, params: { token } })) as ConnectionRefreshResult;
  }

  /** What the server says unasked: the credentials expire soon (refresh now), or it ended a subscription. */
  onNotice(listener: (frame: CredentialsExpiringFrame | UnsubscribedFrame) => void): void {
    this.noticeListeners.add(listener);
  }

  /** Listens to one topic's events, or to every event with `*`. */
  on(topic: string, listener: EventListener): void {
    if (topic === '*') {
      this.anyListeners.add(listener);
      return;
    }
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
  }

  off(topic: string, listener: EventListener): void {
    if (topic === '*') this.anyListeners.delete(listener);
    else this.listeners.get(topic)?.delete(listener);
  }

  /** Error frames that answer no pending request (malformed frames, raw sends). */
  onError(listener: (frame: ErrorFrame) => void): void {
    this.errorListeners.add(listener);
  }

  onClose(listener: (code: number, reason: string) => void): void {
    if (this.closed) listener(this.closed.code, this.closed.reason);
    else this.closeListeners.add(listener);
  }

  /** Resolves when the connection has closed, with its code and reason. */
  closedPromise(): Promise<{ code: number; reason: string }> {
    return new Promise((resolve) => this.onClose((code, reason) => resolve({ code, reason })));
  }

  /** Sends an already-built frame as it is: for tests of malformed input. */
  sendRaw(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  /** Drops the connection without a close handshake, as a network failure would. */
  terminate(): void {
    const socket = this.ws as WebSocketLike & { terminate?: () => void };
    if (socket.terminate) socket.terminate();
    else {
      // A browser's close() waits for the peer's close frame, which a dead network never sends:
      // the connection counts as closed now.
      socket.close(4000, 'terminated');
      this.handleClose(1006, 'connection dropped');
    }
  }

  close(code = 1000, reason = ''): Promise<{ code: number; reason: string }> {
    const done = this.closedPromise();
    if (!this.closed) this.ws.close(code, reason);
    return done;
  }

  private request(frame: Record<string, unknown>, onResult?: (data: unknown) => void): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(`connection closed (${this.closed.code})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`request ${id} timed out`));
      }, this.callTimeoutMs);
      this.pending.set(id, { resolve, reject, timer, ...(onResult ? { onResult } : {}) });
      this.ws.send(this.codec.encode({ ...frame, id }));
    });
  }

  private dispatch(frame: ServerFrame): void {
    switch (frame.type) {
      case 'result':
      case 'pong':
      case 'error': {
        const pending = frame.id === undefined ? undefined : this.pending.get(frame.id);
        if (!pending) {
          if (frame.type === 'error') for (const listener of this.errorListeners) listener(frame);
          return;
        }
        this.pending.delete(frame.id!);
        clearTimeout(pending.timer);
        if (frame.type === 'error') pending.reject(new ApiError(frame.error));
        else {
          if (frame.type === 'result') pending.onResult?.(frame.data);
          pending.resolve(frame.type === 'result' ? frame.data : undefined);
        }
        return;
      }
      case 'event': {
        for (const listener of this.listeners.get(frame.topic) ?? []) listener(frame);
        for (const listener of this.anyListeners) listener(frame);
        return;
      }
      case 'credentials_expiring':
      case 'unsubscribed':
        if (frame.type === 'unsubscribed') this.listeners.delete(frame.topic);
        for (const listener of this.noticeListeners) listener(frame);
        return;
      default:
        return;
    }
  }

  private handleClose(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    for (const [, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(`connection closed (${code})`));
    }
    this.pending.clear();
    for (const listener of this.closeListeners) listener(code, reason);
    this.closeListeners.clear();
  }
}
