import { ApiError, GatewaySocket, type SocketOptions } from './client.js';
import { closeAction, type CloseAction } from '../protocol/close-codes.js';
import { deferred, type Deferred } from './deferred.js';
import type { CredentialsExpiringFrame, EventFrame, SubscribeResult, UnsubscribedFrame } from '../protocol/frames.js';
import type { InputOf, OperationName, OutputOf } from '../protocol/operations.js';
import {
  RealtimeError,
  type CallOptions,
  type ConnectionState,
  type ResilientOptions,
  type StateDetail,
  type StateListener,
  type TopicHandlers,
} from './resilient-contract.js';

// What applications see of the client (its states, options, handlers and errors) has a file of its own.
export * from './resilient-contract.js';

interface Followed {
  handlers: TopicHandlers;
  /** Last position received; null before the first subscribe answered. */
  seq: number | null;
  epoch: string | null;
  /** The connection it is subscribed on. */
  on: GatewaySocket | null;
  /** Settled by its first subscription (which may wait for a connection). */
  first: Deferred<SubscribeResult>;
}

interface QueuedCall {
  /** Order of the call: a resent call keeps its place before later ones. */
  n: number;
  method: string;
  params: unknown;
  options: CallOptions;
  deferred: Deferred<unknown>;
}

/** A repeat of a keyed call still running on the server is refused with CONFLICT: wait, then ask again. */
const CONFLICT_RETRIES = 5;
const CONFLICT_WAIT_MS = 200;

/**
 * A connection that stays up: it reconnects with jittered backoff as the close code says
 * (reconnect at once after a drain, back off after errors, refresh credentials after a token
 * expired, give up after a policy close), resubscribes every topic from its last seq, and hands
 * each event to the application once, in order. Calls made while offline wait in a bounded
 * queue and are sent in order, one at a time, once the topics are resubscribed.
 */
export class ResilientClient {
  private socket: GatewaySocket | null = null;
  private readonly topics = new Map<string, Followed>();
  private currentState: ConnectionState = 'disconnected';
  private readonly stateListeners = new Set<StateListener>();
  private attempt = 0;
  private stopped = false;
  /** A connection loop is running (connecting, or setting a new connection up). */
  private looping = false;
  private givenUp: RealtimeError | null = null;
  private waiting: Deferred<void>[] = [];
  private readonly queue: QueuedCall[] = [];
  private draining = false;
  private calls = 0;
  private readonly maxQueue: number;

  private constructor(private readonly options: ResilientOptions) {
    this.maxQueue = options.maxQueue ?? 100;
    if (options.onStateChange) this.stateListeners.add(options.onStateChange);
  }

  /** A client that has not connected yet: call `connect()` (state listeners can be added first). */
  static create(options: ResilientOptions): ResilientClient {
    return new ResilientClient(options);
  }

  /** Connects; rejects only once the client gave up (see `failed`). */
  static async connect(options: ResilientOptions): Promise<ResilientClient> {
    const client = new ResilientClient(options);
    await client.connect();
    return client;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  get connected(): boolean {
    return this.currentState === 'connected' && (this.socket?.isOpen ?? false);
  }

  /** The current connection's id (from its welcome frame), or null while offline. */
  get connectionId(): string | null {
    return this.connected ? this.socket!.welcome.connection_id : null;
  }

  /** Calls waiting for a connection. */
  get queued(): number {
    return this.queue.length;
  }

  /** Listens to state changes; returns a function that stops listening. */
  onState(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Resolves once connected (at once if already), rejects once the client has given up. */
  connect(): Promise<void> {
    if (this.givenUp) return Promise.reject(this.givenUp);
    if (this.stopped) return Promise.reject(new RealtimeError('CONNECTION_CLOSED', 'the client was closed'));
    if (this.connected) return Promise.resolve();
    const waiter = deferred<void>();
    this.waiting.push(waiter);
    if (!this.looping) void this.loop('reconnect', true);
    return waiter.promise;
  }

  /** Calls an operation; offline, the call waits in the queue (see CallOptions). */
  call<N extends OperationName>(method: N, params: InputOf<N>, options: CallOptions = {}): Promise<OutputOf<N>> {
    if (this.givenUp) return Promise.reject(this.givenUp);
    if (this.stopped) return Promise.reject(new RealtimeError('CONNECTION_CLOSED', 'the client was closed'));
    if (options.connectionId !== undefined && options.connectionId !== this.connectionId) {
      return Promise.reject(new RealtimeError('CONNECTION_CLOSED', `${method}: its connection (${options.connectionId}) has closed`));
    }
    const entry: QueuedCall = { n: this.calls++, method, params, options, deferred: deferred() };
    if (this.connected && (options.noQueue || (this.queue.length === 0 && !this.draining))) {
      void this.send(this.socket!, entry);
    } else if (options.noQueue) {
      return Promise.reject(new RealtimeError('CONNECTION_CLOSED', `${method}: not connected`));
    } else if (this.queue.length >= this.maxQueue) {
      return Promise.reject(new RealtimeError('QUEUE_FULL', `${this.queue.length} calls already wait for the connection (maxQueue ${this.maxQueue})`));
    } else {
      this.queue.push(entry);
      this.ensureConnecting();
      void this.drain();
    }
    return entry.deferred.promise as Promise<OutputOf<N>>;
  }

  /**
   * Follows a topic: resolves with the first subscription's result (after the next connection
   * when offline). Later reconnects resume it from the last event handed over.
   */
  async subscribe(topic: string, handlers: TopicHandlers): Promise<SubscribeResult> {
    if (this.givenUp) throw this.givenUp;
    if (this.topics.has(topic)) throw new Error(`already subscribed to ${topic}`);
    const followed: Followed = { handlers, seq: null, epoch: null, on: null, first: deferred() };
    // A rejection nobody awaits yet must not be reported as unhandled.
    followed.first.promise.catch(() => {});
    this.topics.set(topic, followed);
    if (this.connected) void this.follow(this.socket!, topic, followed).catch(() => {});
    else this.ensureConnecting();
    const result = await followed.first.promise;
    // Subscribed while a connection was being set up: answer once it is (state `connected`).
    if (!this.connected) await this.connect();
    return result;
  }

  async unsubscribe(topic: string): Promise<void> {
    const followed = this.topics.get(topic);
    this.topics.delete(topic);
    followed?.first.reject(new RealtimeError('CONNECTION_CLOSED', `unsubscribed from ${topic}`));
    if (followed?.on && followed.on === this.socket && this.socket.isOpen) {
      await this.socket.unsubscribe(topic).catch(() => {});
    }
  }

  /** Drops the current connection as a network failure would (tests, and "reconnect now" buttons). */
  drop(): void {
    this.socket?.terminate();
  }

  /** Closes for good: queued calls are rejected, nothing reconnects. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const closed = new RealtimeError('CONNECTION_CLOSED', 'the client was closed');
    this.rejectAll(closed);
    await this.socket?.close();
    if (!this.givenUp) this.setState('disconnected', { code: 1000 });
  }

  // ---------- connecting ----------

  private setState(state: ConnectionState, detail?: StateDetail): void {
    this.currentState = state;
    for (const listener of [...this.stateListeners]) listener(state, detail);
  }

  /** Work that needs a connection starts one (a client that was never connected, say). */
  private ensureConnecting(): void {
    if (!this.looping && !this.stopped && !this.givenUp && !this.connected) void this.loop('reconnect', true);
  }

  /** Connects until connected, stopped or given up. Only one runs at a time. */
  private async loop(action: CloseAction, first = false): Promise<void> {
    if (this.looping) return;
    this.looping = true;
    let credentialFailures = 0;
    try {
      while (!this.stopped && !this.givenUp) {
        if (!first) await sleep(this.delay(action));
        first = false;
        if (this.stopped) return;
        this.attempt++;
        this.setState('connecting', { attempt: this.attempt });
        action = 'backoff';

        let fresh: Partial<Pick<SocketOptions, 'apiKey' | 'url'>> = {};
        if (this.options.credentials) {
          try {
            fresh = await this.options.credentials();
          } catch (error) {
            if (++credentialFailures >= (this.options.maxCredentialFailures ?? 3)) {
              this.giveUp(undefined, `credentials failed ${credentialFailures} times: ${messageOf(error)}`);
              return;
            }
            continue;
          }
        }
        if (this.stopped) return;
        const socketOptions = { ...this.options, ...fresh };
        let socket: GatewaySocket;
        try {
          socket = await GatewaySocket.connect(socketOptions);
        } catch (error) {
          if (this.stopped) return;
          if (await this.refused(error, socketOptions.apiKey)) {
            const allowed = this.options.credentials ? (this.options.maxCredentialFailures ?? 3) : 1;
            if (++credentialFailures >= allowed) {
              this.giveUp(4003, 'credentials refused');
              return;
            }
          }
          continue;
        }
        if (this.stopped) {
          await socket.close();
          return;
        }
        credentialFailures = 0;
        let lost: { code: number; reason: string } | null = null;
        this.socket = socket;
        socket.on('*', (event) => this.receive(socket, event));
        socket.onNotice((notice) => this.notice(socket, notice));
        socket.onClose((code, reason) => {
          lost = { code, reason };
          this.closed(socket, code, reason);
        });
        await this.resubscribe(socket);
        const closedDuringSetup = lost as { code: number; reason: string } | null;
        if (closedDuringSetup) {
          const next = closeAction(closedDuringSetup.code);
          if (next === 'give_up') {
            this.giveUp(closedDuringSetup.code, closedDuringSetup.reason);
            return;
          }
          action = next;
          continue;
        }
        this.attempt = 0;
        this.keepAlive(socket);
        this.setState('connected');
        for (const waiter of this.waiting.splice(0)) waiter.resolve();
        void this.drain();
        return;
      }
    } finally {
      this.looping = false;
    }
  }

  /** Pings while the connection is current; a ping left unanswered drops it. */
  private keepAlive(socket: GatewaySocket): void {
    const every = this.options.heartbeatMs ?? socket.welcome.heartbeat_ms;
    if (every === false || !(every > 0)) return;
    const timer = setInterval(() => {
      if (socket !== this.socket || !socket.isOpen) {
        clearInterval(timer);
        return;
      }
      socket.ping().catch(() => {
        if (socket === this.socket && socket.isOpen) socket.terminate();
      });
    }, every);
    (timer as { unref?: () => void }).unref?.();
    socket.onClose(() => clearInterval(timer));
  }

  /** Milliseconds before the next attempt: full jitter over an exponential ceiling. */
  private delay(action: CloseAction): number {
    const { initialMs = 100, maxMs = 10_000 } = this.options.backoff ?? {};
    if (action === 'refresh') return 0;
    const ceiling = action === 'reconnect' && this.attempt === 0 ? initialMs : Math.min(maxMs, initialMs * 2 ** this.attempt);
    // Full jitter, so that clients dropped together do not return together.
    return Math.random() * ceiling;
  }

  /** Did the gateway refuse the credentials (rather than the network failing)? */
  private async refused(error: unknown, apiKey: string | undefined): Promise<boolean> {
    const status = (error as { status?: unknown }).status;
    if (status === 401 || status === 403) return true;
    if (typeof status === 'number' || !this.options.credentialsRefused) return false;
    return this.options.credentialsRefused(apiKey).catch(() => false);
  }

  /** Subscribes every followed topic on a new connection, including those added meanwhile. */
  private async resubscribe(socket: GatewaySocket): Promise<void> {
    for (;;) {
      const missing = [...this.topics].filter(([, followed]) => followed.on !== socket);
      if (missing.length === 0 || !socket.isOpen) return;
      await Promise.all(missing.map(([topic, followed]) => this.follow(socket, topic, followed).catch(() => {})));
    }
  }

  private async follow(socket: GatewaySocket, topic: string, followed: Followed): Promise<SubscribeResult> {
    const resume = followed.seq !== null && followed.epoch !== null ? { since: followed.seq, epoch: followed.epoch } : undefined;
    try {
      // Handled before the events that follow the result: after a replay the position moves with
      // the replayed events; otherwise it starts at the result's.
      const result = await socket.subscribe(topic, undefined, resume, (result) => {
        if (this.topics.get(topic) !== followed) return;
        followed.on = socket;
        if (resume && result.recovered === false) followed.handlers.onReset?.({ seq: result.seq, epoch: result.epoch }, 'resume');
        if (!resume || result.recovered === false) {
          followed.seq = result.seq;
          followed.epoch = result.epoch;
        }
        if (resume) {
          followed.handlers.onResubscribed?.({
            recovered: result.recovered !== false,
            seq: result.seq,
            epoch: result.epoch,
            ...(result.replayed === undefined ? {} : { replayed: result.replayed }),
            ...(result.streams ? { streams: result.streams } : {}),
          });
        }
      });
      followed.first.resolve(result);
      return result;
    } catch (error) {
      // The gateway refused the topic (not found, not permitted): stop following it. A lost
      // connection is not a refusal: the next connection subscribes again.
      if (error instanceof ApiError && this.topics.get(topic) === followed) {
        this.topics.delete(topic);
        if (followed.first.settled) followed.handlers.onError?.(error);
        followed.first.reject(error);
      }
      throw error;
    }
  }

  /**
   * Before a token expires, fresh credentials are handed over in place (with a `credentials`
   * function): the connection and its subscriptions go on. A topic the server ended is dropped.
   */
  private notice(socket: GatewaySocket, notice: CredentialsExpiringFrame | UnsubscribedFrame): void {
    if (notice.type === 'unsubscribed') {
      const followed = this.topics.get(notice.topic);
      if (!followed || followed.on !== socket) return;
      this.topics.delete(notice.topic);
      followed.handlers.onError?.(new ApiError(notice.error));
      return;
    }
    if (!this.options.credentials) return;
    this.options
      .credentials()
      .then((fresh) => (fresh.apiKey && socket === this.socket && socket.isOpen ? socket.refresh(fresh.apiKey) : undefined))
      // Not refreshed: the close at expiry (4001) reconnects with fresh credentials instead.
      .catch(() => {});
  }

  private receive(socket: GatewaySocket, event: EventFrame): void {
    const followed = this.topics.get(event.topic);
    if (!followed || followed.on !== socket) return;
    if (!event.ephemeral) {
      if (followed.epoch !== null && event.epoch !== followed.epoch) {
        followed.handlers.onReset?.({ seq: event.seq - 1, epoch: event.epoch }, 'epoch');
      } else if (followed.seq !== null && event.seq <= followed.seq) {
        return; // already handed over
      }
      followed.seq = event.seq;
      followed.epoch = event.epoch;
    }
    try {
      followed.handlers.onEvent(event);
    } catch (error) {
      // The application's handler failed: reported as an uncaught error would be, while delivery
      // (and the position already taken) carries on.
      report(error);
    }
  }

  private closed(socket: GatewaySocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    for (const followed of this.topics.values()) if (followed.on === socket) followed.on = null;
    if (this.stopped) return;
    // While the loop sets a connection up it sees the close itself.
    if (this.looping) return;
    this.setState('disconnected', { code, reason });
    const action = closeAction(code);
    if (action === 'give_up') {
      this.giveUp(code, reason);
      return;
    }
    void this.loop(action);
  }

  private giveUp(code: number | undefined, reason: string): void {
    this.givenUp = new RealtimeError('CONNECTION_FAILED', `connection closed for good${code === undefined ? '' : ` (${code})`}: ${reason}`, code);
    this.rejectAll(this.givenUp);
    this.setState('failed', { ...(code === undefined ? {} : { code }), reason });
  }

  private rejectAll(error: RealtimeError): void {
    for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    for (const entry of this.queue.splice(0)) entry.deferred.reject(error);
    for (const followed of this.topics.values()) followed.first.reject(error);
  }

  // ---------- calls ----------

  /** Sends the queue in order, each call after the previous one's answer. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0 && this.connected) {
        const entry = this.queue.shift()!;
        await this.send(this.socket!, entry);
      }
    } finally {
      this.draining = false;
    }
  }

  private async send(socket: GatewaySocket, entry: QueuedCall): Promise<void> {
    const { idempotencyKey, connectionId } = entry.options;
    for (let conflicts = 0; ; conflicts++) {
      if (connectionId !== undefined && connectionId !== socket.welcome.connection_id) {
        entry.deferred.reject(new RealtimeError('CONNECTION_CLOSED', `${entry.method}: its connection (${connectionId}) has closed`));
        return;
      }
      try {
        const extra = idempotencyKey === undefined ? {} : { idempotency_key: idempotencyKey };
        entry.deferred.resolve(await socket.call(entry.method as OperationName, entry.params as never, extra));
        return;
      } catch (error) {
        if (error instanceof ApiError) {
          // The same key still running: the first attempt reached the server before the connection dropped.
          if (error.code === 'CONFLICT' && idempotencyKey !== undefined && conflicts < CONFLICT_RETRIES) {
            await sleep(CONFLICT_WAIT_MS * (conflicts + 1));
            if (!socket.isOpen) break;
            continue;
          }
          entry.deferred.reject(error);
          return;
        }
        if (socket.isOpen) {
          // Still connected: the call itself failed (a time-out).
          entry.deferred.reject(new RealtimeError('TIMEOUT', `${entry.method}: ${messageOf(error)}`));
          return;
        }
        break;
      }
    }
    // The connection was lost before the answer: resend only what is safe to resend.
    if (this.stopped || this.givenUp) {
      entry.deferred.reject(this.givenUp ?? new RealtimeError('CONNECTION_CLOSED', 'the client was closed'));
      return;
    }
    const resend = entry.options.resendOnReconnect ?? idempotencyKey !== undefined;
    if (!resend || connectionId !== undefined) {
      entry.deferred.reject(
        new RealtimeError('CONNECTION_CLOSED', `${entry.method}: the connection closed before the answer; it may or may not have been applied`),
      );
      return;
    }
    const at = this.queue.findIndex((queued) => queued.n > entry.n);
    this.queue.splice(at === -1 ? this.queue.length : at, 0, entry);
  }
}

function report(error: unknown): void {
  const reportError = (globalThis as { reportError?: (error: unknown) => void }).reportError;
  if (reportError) reportError(error);
  else
    setTimeout(() => {
      throw error;
    });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
