import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { ApiFailure } from '../core/errors.js';
import type { Logger } from '../logger.js';
import { createRedisClient, createSubscriberClient, isReady, type RedisTarget } from '../redis/connection.js';
import type { Bus, BusEvent, BusHealth, BusListener, HistoryLimits, HistoryResult, PublishOptions, TopicPosition } from './bus.js';
import { decodeMessage, encodeBody, topicKeys } from './redis-codec.js';
import { HISTORY_SCRIPT, POSITION_SCRIPT, PUBLISH_EPHEMERAL_SCRIPT, PUBLISH_SCRIPT } from './redis-scripts.js';

export interface RedisBusOptions {
  target: RedisTarget;
  /** Prepended to every key and channel, so several deployments (or test runs) can share a Redis. */
  keyPrefix: string;
  history: HistoryLimits;
  /** A command unanswered for this long fails with SERVICE_UNAVAILABLE. */
  commandTimeoutMs: number;
  /** How long open() waits for Redis before giving up. */
  connectTimeoutMs?: number;
  /** Shown in CLIENT LIST. */
  nodeName?: string;
  log?: Logger;
}

/** How long a topic's seq and epoch outlive its last use: far longer than any history window. */
const MIN_COUNTER_TTL_MS = 24 * 60 * 60 * 1000;

type ScriptCommand = (...keysAndArgs: (string | Buffer | number)[]) => Promise<unknown>;

interface ChannelState {
  topic: string;
  listeners: Set<BusListener>;
  /** Settles when Redis has confirmed (or refused) the subscription. */
  ready: Promise<void>;
}

/**
 * The bus shared by every node through Redis (one server or a Redis Cluster).
 *
 * A publish is one Lua script on the topic's shard: it numbers the event, records it in the
 * topic's history stream and publishes it on the topic's channel. Nodes receive every event,
 * including their own, from the channel only, so each is delivered exactly once per node, in seq
 * order. A node subscribes to a channel only while it has listeners for the topic.
 *
 * While Redis is unreachable, publishes, subscribes and reads fail at once with
 * SERVICE_UNAVAILABLE (no offline queue), and health() says so. The clients reconnect by
 * themselves; the subscriber connection then resubscribes every channel it had. Events published
 * while a node was cut off are not replayed by the bus: subscribers see the gap in seq (or a new
 * epoch, if Redis lost the topic) and resume from history().
 */
export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  private readonly channels = new Map<string, ChannelState>();
  private readonly cluster: boolean;
  private readonly counterTtlMs: number;
  private closed = false;

  private constructor(
    private readonly commands: Redis | Cluster,
    private readonly subscriber: Redis | Cluster,
    private readonly options: RedisBusOptions,
  ) {
    this.cluster = options.target.kind === 'cluster';
    this.counterTtlMs = Math.max(MIN_COUNTER_TTL_MS, options.history.ttlMs * 6);
    for (const [name, lua] of [
      ['sgPublish', PUBLISH_SCRIPT],
      ['sgPublishEphemeral', PUBLISH_EPHEMERAL_SCRIPT],
      ['sgPosition', POSITION_SCRIPT],
      ['sgHistory', HISTORY_SCRIPT],
    ] as const) {
      commands.defineCommand(name, { numberOfKeys: 2, lua });
    }
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
      throw new Error(`cannot connect to Redis: ${error instanceof Error ? error.message : String(error)}`);
    }
    return bus;
  }

  async publish(topic: string, event: string, data: unknown, options: PublishOptions = {}): Promise<BusEvent> {
    const keys = topicKeys(this.options.keyPrefix, topic);
    const ts = new Date().toISOString();
    const body = encodeBody(event, data, ts);
    const publishCommand = this.cluster ? 'SPUBLISH' : 'PUBLISH';
    if (options.ephemeral) {
      const epoch = await this.run('sgPublishEphemeralBuffer', keys, [newEpoch(), this.counterTtlMs, body, keys.channel, publishCommand]);
      return { topic, seq: 0, epoch: String(epoch), event, data, ts, ephemeral: true };
    }
    const { maxEvents, ttlMs } = this.options.history;
    const reply = (await this.run('sgPublishBuffer', keys, [newEpoch(), this.counterTtlMs, body, maxEvents, ttlMs, keys.channel, publishCommand])) as [
      number,
      Buffer,
    ];
    return { topic, seq: reply[0], epoch: reply[1].toString(), event, data, ts };
  }

  async subscribe(topic: string, listener: BusListener): Promise<() => void> {
    const { channel } = topicKeys(this.options.keyPrefix, topic);
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

  async position(topic: string): Promise<TopicPosition> {
    const keys = topicKeys(this.options.keyPrefix, topic);
    const reply = (await this.run('sgPosition', keys, [newEpoch(), this.counterTtlMs])) as [number, string];
    return { seq: reply[0], epoch: reply[1] };
  }

  async history(topic: string, since: number, epoch: string): Promise<HistoryResult> {
    const keys = topicKeys(this.options.keyPrefix, topic);
    const { maxEvents, ttlMs } = this.options.history;
    const reply = (await this.run('sgHistoryBuffer', keys, [newEpoch(), this.counterTtlMs, since, epoch, maxEvents, ttlMs])) as [
      number,
      number,
      Buffer,
      ...Buffer[],
    ];
    const [recovered, seq, currentEpoch, ...messages] = reply;
    const position = { seq, epoch: currentEpoch.toString() };
    if (recovered !== 1) return { recovered: false, events: [], position };
    const events = messages.map((message) => decodeMessage(topic, message));
    // The script returns a contiguous run; checked again here so a replay is never partial.
    if (events.some((e, i) => e.seq !== since + 1 + i) || (events.at(-1)?.seq ?? since) !== seq) {
      return { recovered: false, events: [], position };
    }
    return { recovered: true, events, position };
  }

  async recent(topic: string): Promise<BusEvent[]> {
    const { log } = topicKeys(this.options.keyPrefix, topic);
    const { maxEvents, ttlMs } = this.options.history;
    const entries = await this.commands.xrevrangeBuffer(log, '+', '-', 'COUNT', maxEvents);
    const cutoff = Date.now() - ttlMs;
    return entries
      .reverse()
      .filter(([id]) => Number(id.toString().split('-')[0]) >= cutoff)
      .map(([, fields]) => decodeMessage(topic, fields[1]!));
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

  private async run(command: string, keys: { meta: string; log: string }, args: (string | Buffer | number)[]): Promise<unknown> {
    if (this.closed) throw new ApiFailure('SERVICE_UNAVAILABLE', 'The event bus is closed');
    const script = (this.commands as unknown as Record<string, ScriptCommand>)[command]!;
    try {
      return await script.call(this.commands, keys.meta, keys.log, ...args);
    } catch (error) {
      throw unavailable(error, command);
    }
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
      event = decodeMessage(state.topic, message);
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
    // Without an 'error' listener ioredis errors would crash the process.
    client.on('error', (error: Error) => {
      if (!down) log?.warn({ err: { message: error.message }, role }, 'redis connection error');
      down = true;
    });
    client.on('ready', () => {
      if (down) log?.info({ role }, 'redis connection restored');
      down = false;
    });
  }
}

function newEpoch(): string {
  return randomUUID().slice(0, 8);
}

function unavailable(error: unknown, operation: string): ApiFailure {
  if (error instanceof ApiFailure) return error;
  return new ApiFailure('SERVICE_UNAVAILABLE', 'The event bus (Redis) is unreachable; retry shortly', {
    component: 'bus',
    operation: operation.replace(/^sg|Buffer$/g, '').toLowerCase() || operation,
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
