import { codecs, type Encoding, type EventFrame } from '../../protocol/index.js';
import type { BusEvent } from '../bus/index.js';
import type { GatewayCore } from './core.js';
import type { TemplatedApp } from './uws.js';

const ENCODINGS = Object.keys(codecs) as Encoding[];

/** Sees every event a stream delivers, after the uWS topic got it: how a joining socket catches up. */
export type Tap = (event: BusEvent) => void;

interface Stream {
  refs: number;
  /** Resolves once the bus subscription is active and the stream knows its position. */
  ready: Promise<void>;
  stop: (() => void) | null;
  /** Last seq delivered to the uWS topic, and its epoch. */
  seq: number;
  epoch: string;
  /** Events that arrived while the position was being read or a gap was being filled. */
  queue: BusEvent[] | null;
  taps: Set<Tap>;
}

/** The client's view of a bus event: the topic without the account scope. */
export function toEventFrame(key: string, event: BusEvent): EventFrame {
  return {
    type: 'event',
    topic: key.slice(key.indexOf('/') + 1),
    seq: event.seq,
    epoch: event.epoch,
    event: event.event,
    data: event.data,
    ts: event.ts,
    ...(event.ephemeral ? { ephemeral: true as const } : {}),
  };
}

/**
 * Node-local fan-out. Each stream has one uWS topic per encoding; a node follows a stream on the
 * bus only while one of its sockets is subscribed, and encodes each event once per encoding, not
 * once per recipient: uWS then copies the bytes to every subscriber natively.
 *
 * The stream is the node's guard of exactly-once, in-order delivery: it drops an event it already
 * delivered, and fills a gap (a bus message lost while Redis reconnected, say) from the bus
 * history before going on. A gap it cannot fill is reported through `onLost`, whose subscribers
 * are closed with "resume" so they recover from their own last seq.
 */
export class Fanout {
  private readonly streams = new Map<string, Stream>();

  constructor(
    private readonly app: TemplatedApp,
    private readonly core: GatewayCore,
    private readonly onLost: (key: string) => void,
  ) {}

  static channel(key: string, encoding: Encoding): string {
    return `${key}#${encoding}`;
  }

  /** Follows a stream (once per node); resolves when events published from now on will arrive. */
  join(key: string): Promise<void> {
    const existing = this.streams.get(key);
    if (existing) {
      existing.refs++;
      return existing.ready;
    }
    const stream: Stream = { refs: 1, ready: Promise.resolve(), stop: null, seq: 0, epoch: '', queue: [], taps: new Set() };
    stream.ready = this.start(key, stream);
    this.streams.set(key, stream);
    return stream.ready;
  }

  leave(key: string): void {
    const stream = this.streams.get(key);
    if (!stream || --stream.refs > 0) return;
    this.streams.delete(key);
    stream.stop?.();
  }

  /** Last seq this node delivered on a stream it follows. */
  delivered(key: string): { seq: number; epoch: string } | null {
    const stream = this.streams.get(key);
    return stream && stream.queue === null ? { seq: stream.seq, epoch: stream.epoch } : null;
  }

  addTap(key: string, tap: Tap): void {
    this.streams.get(key)?.taps.add(tap);
  }

  removeTap(key: string, tap: Tap): void {
    this.streams.get(key)?.taps.delete(tap);
  }

  get followed(): number {
    return this.streams.size;
  }

  private async start(key: string, stream: Stream): Promise<void> {
    try {
      const stop = await this.core.follow(key, (event) => this.receive(key, stream, event));
      if (this.streams.get(key) !== stream) {
        stop();
        return;
      }
      stream.stop = stop;
      const position = await this.core.position(key);
      stream.seq = position.seq;
      stream.epoch = position.epoch;
      this.drainQueue(key, stream);
    } catch (error) {
      if (this.streams.get(key) === stream) this.streams.delete(key);
      throw error;
    }
  }

  private receive(key: string, stream: Stream, event: BusEvent): void {
    if (this.streams.get(key) !== stream) return;
    if (stream.queue) {
      stream.queue.push(event);
      return;
    }
    if (event.ephemeral || event.epoch !== stream.epoch || event.seq === stream.seq + 1) {
      this.deliver(key, stream, event);
      return;
    }
    if (event.seq <= stream.seq) return; // already delivered
    // A gap: hold everything until history fills it.
    stream.queue = [event];
    void this.fill(key, stream);
  }

  private async fill(key: string, stream: Stream): Promise<void> {
    try {
      const history = await this.core.history(key, stream.seq, stream.epoch);
      if (this.streams.get(key) !== stream) return;
      if (history.recovered) {
        for (const event of history.events) if (event.seq > stream.seq) this.deliver(key, stream, event);
      } else {
        // Lost for good: subscribers resume from their own position; the stream starts afresh.
        stream.seq = history.position.seq;
        stream.epoch = history.position.epoch;
        this.onLost(key);
      }
    } catch {
      this.onLost(key);
    }
    this.drainQueue(key, stream);
  }

  private drainQueue(key: string, stream: Stream): void {
    const queued = stream.queue ?? [];
    stream.queue = null;
    for (const event of queued) this.receive(key, stream, event);
  }

  private deliver(key: string, stream: Stream, event: BusEvent): void {
    if (!event.ephemeral) {
      stream.seq = event.seq;
      stream.epoch = event.epoch;
    }
    const frame = toEventFrame(key, event);
    for (const encoding of ENCODINGS) {
      const channel = Fanout.channel(key, encoding);
      if (this.app.numSubscribers(channel) === 0) continue;
      const codec = codecs[encoding];
      this.app.publish(channel, codec.encode(frame), codec.binary);
    }
    for (const tap of stream.taps) tap(event);
  }
}
