import type { Cluster, Redis } from 'ioredis';
import { ApiFailure } from '../kernel/errors.js';
import type { Logger } from '../logger.js';
import { createRedisClient, createSubscriberClient, isReady, type RedisTarget } from '../redis/connection.js';
import type { Bus, BusEvent, BusHealth, BusListener } from './bus.js';
import { decodeEvent, encodeEvent, topicChannel } from './redis-codec.js';

export interface RedisBusOptions {
  target: RedisTarget;
  /** Prepended to every key and channel, so several deployments (or test runs) can share a Redis. */
  keyPrefix: string;
  /** A command unanswered for this long fails with SERVICE_UNAVAILABLE. */
  commandTimeoutMs: number;
  /** How long open() waits for Redis before giving up. */
  connectTimeoutMs?: number;
  /** Shown in CLIENT LIST. */
  nodeName?: string;
  log?: Logger;
}

interface ChannelState {
  topic: string;
  listeners: Set<BusListener>;
  /** Settles when Redis has confirmed (or refused) the subscription. */
  ready: Promise<void>;
}

/**
 * The bus shared by every node through Redis (one server or a Redis Cluster, with sharded
 * pub/sub). Nodes receive every event, including their own, from the channel only, so each is
 * delivered once per node, in publish order per topic. A node subscribes to a channel only while
 * it has listeners for the topic.
 *
 * While Redis is unreachable, publishes and subscribes fail at once with SERVICE_UNAVAILABLE (no
 * offline queue), and health() says so. The clients reconnect by themselves; the subscriber
 * connection resubscribes every channel it had, and `onReconnect` listeners are told, so that
 * nodes fill from the event log what was published while they were cut off.
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  private readonly channels = new Map<string, ChannelState>();
  private readonly cluster: boolean;
  private readonly reconnectListeners: (() => void)[] = [];
  /** Cluster only: the last publish still in flight per topic. */
  private readonly topicChains = new Map<string, Promise<unknown>>();
  private closed = false;

  private constructor(
    private readonly commands: Redis | Cluster,
    private readonly subscriber: Redis | Cluster,
    private readonly options: RedisBusOptions,
  ) {
    this.cluster = options.target.kind === 'cluster';
    const onMessage = (channel: Buffer, message: Buffer) => this.receive(channel.toString(), message);
    subscriber.on(this.cluster ? 'smessageBuffer' : 'messageBuffer', onMessage);
    this.watch(commands, 'commands');
    if (subscriber !== commands) this.watch(subscriber, 'subscriber');
  }

  /** Connects both clients; rejects if Redis does not answer within connectTimeoutMs. */
  static async open(options: RedisBusOptions): Promise<RedisBus> {
    const clientOptions = { commandTimeoutMs: options.commandTimeoutMs, connectionName: `stategate:${options.nodeName ?? process.pid}` };
    const commands = createRedisClient(options.target, clientOptions);
    // On a cluster the command client also carries the sharded subscriber connections.
    const subscriber = options.target.kind === 'cluster' ? commands : createSubscriberClient(options.target, clientOptions);
    const bus = new RedisBus(commands, subscriber, options);
    try {
      await withTimeout(
        Promise.all([commands.connect(), subscriber === commands ? undefined : subscriber.connect()]),
        options.connectTimeoutMs ?? 10_000,
        'Redis did not answer in time',
      );
    } catch (error) {
      await bus.close();
      throw new Error(`cannot connect to Redis: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return bus;
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.closed) throw new ApiFailure('SERVICE_UNAVAILABLE', 'The event bus is closed');
    try {
      // One server: one pipeline on one connection keeps every topic's order. A cluster client may
      // redirect and resend a command, so there each topic's publishes go one after another.
      if (!this.cluster) await Promise.all(events.map((event) => this.send(event)));
      else await Promise.all(events.map((event) => this.inTopicOrder(event)));
    } catch (error) {
      throw unavailable(error, 'publish');
    }
  }

  private send(event: BusEvent): Promise<unknown> {
    const channel = topicChannel(this.options.keyPrefix, event.topic);
    return this.cluster ? (this.commands as Cluster).spublish(channel, encodeEvent(event)) : (this.commands as Redis).publish(channel, encodeEvent(event));
  }

  private inTopicOrder(event: BusEvent): Promise<unknown> {
    const previous = this.topicChains.get(event.topic) ?? Promise.resolve();
    const sent = previous.catch(() => {}).then(() => this.send(event));
    this.topicChains.set(event.topic, sent);
    void sent
      .finally(() => {
        if (this.topicChains.get(event.topic) === sent) this.topicChains.delete(event.topic);
      })
      .catch(() => {});
    return sent;
  }

  async subscribe(topic: string, listener: BusListener): Promise<() => void> {
    const channel = topicChannel(this.options.keyPrefix, topic);
    let state = this.channels.get(channel);
    if (!state) {
      state = { topic, listeners: new Set(), ready: this.listen(channel) };
      this.channels.set(channel, state);
    }
    // Registered before the confirmation: an event that arrives with it is not lost.
    state.listeners.add(listener);
    try {
      await state.ready;
    } catch (error) {
      this.removeListener(channel, listener);
      throw unavailable(error, 'subscribe');
    }
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.removeListener(channel, listener);
    };
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  health(): BusHealth {
    if (this.closed) return { ok: false, detail: 'redis: closed' };
    const ok = isReady(this.commands) && isReady(this.subscriber);
    return { ok, detail: ok ? 'redis: ok' : 'redis: unreachable' };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.channels.clear();
    const clients = this.subscriber === this.commands ? [this.commands] : [this.commands, this.subscriber];
    await Promise.all(
      clients.map(async (client) => {
        try {
          if (client.status === 'ready') await withTimeout(client.quit(), 1000, 'quit timed out');
        } catch {
          // Closing anyway below.
        }
        client.disconnect();
      }),
    );
  }

  /** Active channels on this node (for tests and metrics). */
  get channelCount(): number {
    return this.channels.size;
  }

  private async listen(channel: string): Promise<void> {
    if (this.cluster) await (this.subscriber as Cluster).ssubscribe(channel);
    else await (this.subscriber as Redis).subscribe(channel);
  }

  private removeListener(channel: string, listener: BusListener): void {
    const state = this.channels.get(channel);
    if (!state) return;
    state.listeners.delete(listener);
    if (state.listeners.size > 0) return;
    this.channels.delete(channel);
    this.unlisten(channel);
  }

  private unlisten(channel: string): void {
    if (this.closed) return;
    const done = this.cluster ? (this.subscriber as Cluster).sunsubscribe(channel) : (this.subscriber as Redis).unsubscribe(channel);
    // While Redis is away this fails; the channel comes back with the resubscription and is
    // dropped again when its first message finds no listener (see receive).
    done.catch(() => {});
  }

  private receive(channel: string, message: Buffer): void {
    const state = this.channels.get(channel);
    if (!state) {
      this.unlisten(channel);
      return;
    }
    let event: BusEvent;
    try {
      event = decodeEvent(state.topic, message);
    } catch (error) {
      this.options.log?.error({ err: error, channel }, 'undecodable bus message dropped');
      return;
    }
    for (const listener of state.listeners) {
      try {
        listener(event);
      } catch {
        // A failing listener must not stop delivery to the others; listeners log their own errors.
      }
    }
  }

  private watch(client: Redis | Cluster, role: string): void {
    const log = this.options.log;
    let down = false;
    let lost = false;
    client.on('close', () => {
      lost = true;
    });
    // Without an 'error' listener ioredis errors would crash the process.
    client.on('error', (error: Error) => {
      if (!down) log?.warn({ err: { message: error.message }, role }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) log?.info({ role }, 'redis connection restored');
      down = false;
      if (!lost || this.closed) return;
      lost = false;
      for (const listener of this.reconnectListeners) listener();
    });
  }
}

function unavailable(error: unknown, operation: string): ApiFailure {
  if (error instanceof ApiFailure) return error;
  return new ApiFailure('SERVICE_UNAVAILABLE', 'The event bus (Redis) is unreachable; retry shortly', {
    component: 'bus',
    operation,
    retryable: true,
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
