import { GatewaySocket, type SocketOptions } from './client.js';
import { closeAction } from './close-codes.js';
import type { EventFrame, SubscribeResult } from './frames.js';
import type { InputOf, OperationName, OutputOf } from './operations.js';

export interface TopicHandlers {
  onEvent(event: EventFrame): void;
  /**
   * History could not be replayed (the server said `recovered: false`, or the topic's epoch
   * changed): refetch the resource over REST; events continue from `result.seq`.
   */
  onReset?(result: { seq: number; epoch: string }): void;
}

export interface ResilientOptions extends SocketOptions {
  /** Asked before every connection attempt: e.g. mint a fresh client token after 4001. */
  credentials?: () => Promise<Partial<Pick<SocketOptions, 'apiKey' | 'url'>>>;
  backoff?: { initialMs?: number; maxMs?: number };
  onStateChange?: (state: 'connecting' | 'open' | 'closed', detail?: { code?: number }) => void;
}

interface Followed {
  handlers: TopicHandlers;
  /** Last position received; null before the first subscribe answered. */
  seq: number | null;
  epoch: string | null;
}

/**
 * A connection that stays up: it reconnects with jittered backoff as the close code says
 * (reconnect at once after a drain, back off after errors, refresh credentials after a token
 * expired, give up after a policy close), resubscribes every topic from its last seq, and hands
 * each event to the application once, in order.
 */
export class ResilientClient {
  private socket: GatewaySocket | null = null;
  private readonly topics = new Map<string, Followed>();
  private attempt = 0;
  private stopped = false;
  private waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private givenUp: Error | null = null;

  private constructor(private readonly options: ResilientOptions) {}

  static async connect(options: ResilientOptions): Promise<ResilientClient> {
    const client = new ResilientClient(options);
    await client.open();
    return client;
  }

  get connected(): boolean {
    return this.socket?.isOpen ?? false;
  }

  async call<N extends OperationName>(method: N, params: InputOf<N>): Promise<OutputOf<N>> {
    return (await this.ready()).call(method, params);
  }

  async subscribe(topic: string, handlers: TopicHandlers): Promise<SubscribeResult> {
    const followed: Followed = { handlers, seq: null, epoch: null };
    this.topics.set(topic, followed);
    return this.follow(await this.ready(), topic, followed);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.topics.delete(topic);
    if (this.socket?.isOpen) await this.socket.unsubscribe(topic);
  }

  /** Drops the current connection as a network failure would (tests, and "reconnect now" buttons). */
  drop(): void {
    this.socket?.terminate();
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.socket?.close();
    this.options.onStateChange?.('closed');
  }

  private ready(): Promise<GatewaySocket> {
    if (this.givenUp) return Promise.reject(this.givenUp);
    if (this.socket?.isOpen) return Promise.resolve(this.socket);
    return new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject })).then(() => this.socket!);
  }

  private async open(): Promise<void> {
    this.options.onStateChange?.('connecting');
    const fresh = this.options.credentials ? await this.options.credentials() : {};
    const socket = await GatewaySocket.connect({ ...this.options, ...fresh });
    this.socket = socket;
    this.attempt = 0;
    socket.on('*', (event) => this.receive(event));
    socket.onClose((code) => this.closed(code));
    this.options.onStateChange?.('open');
    await Promise.all([...this.topics].map(([topic, followed]) => this.follow(socket, topic, followed)));
    for (const waiter of this.waiting.splice(0)) waiter.resolve();
  }

  private async follow(socket: GatewaySocket, topic: string, followed: Followed): Promise<SubscribeResult> {
    const resume = followed.seq !== null && followed.epoch !== null ? { since: followed.seq, epoch: followed.epoch } : undefined;
    // Handled before the events that follow the result: after a replay the position moves with
    // the replayed events; otherwise it starts at the result's.
    return socket.subscribe(topic, undefined, resume, (result) => {
      if (resume && result.recovered === false) followed.handlers.onReset?.({ seq: result.seq, epoch: result.epoch });
      if (!resume || result.recovered === false) {
        followed.seq = result.seq;
        followed.epoch = result.epoch;
      }
    });
  }

  private receive(event: EventFrame): void {
    const followed = this.topics.get(event.topic);
    if (!followed) return;
    if (!event.ephemeral) {
      if (followed.epoch !== null && event.epoch !== followed.epoch) {
        followed.handlers.onReset?.({ seq: event.seq - 1, epoch: event.epoch });
      } else if (followed.seq !== null && event.seq <= followed.seq) {
        return; // already handed over
      }
      followed.seq = event.seq;
      followed.epoch = event.epoch;
    }
    followed.handlers.onEvent(event);
  }

  private closed(code: number): void {
    if (this.stopped) return;
    this.options.onStateChange?.('closed', { code });
    if (closeAction(code) === 'give_up') {
      this.givenUp = new Error(`connection closed for good (${code})`);
      for (const waiter of this.waiting.splice(0)) waiter.reject(this.givenUp);
      return;
    }
    void this.reconnect(closeAction(code) === 'reconnect');
  }

  private async reconnect(soon: boolean): Promise<void> {
    while (!this.stopped) {
      const { initialMs = 100, maxMs = 10_000 } = this.options.backoff ?? {};
      const ceiling = soon && this.attempt === 0 ? initialMs : Math.min(maxMs, initialMs * 2 ** this.attempt);
      this.attempt++;
      // Full jitter, so that clients dropped together do not return together.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
      try {
        await this.open();
        return;
      } catch {
        // The next attempt waits longer.
      }
    }
  }
}
