import type { Bus } from '../bus/index.js';
import type { TopicEvent, TopicPosition } from '../kernel/topic-event.js';
import type { Logger } from '../logger.js';
import type { HistoryRead } from '../store/repos/events.js';

/** Sees every event a feed delivers, in order, once: how a joining subscriber catches up. */
export type Tap = (event: TopicEvent) => void;

/** Where a feed's events go first: a transport's shared fan-out (uWS topics), once per event per node. */
export interface BroadcastSink {
  publish(key: string, event: TopicEvent): void;
}

/** What feeds read from the event log. */
export interface FeedLog {
  positions(keys: readonly string[]): Promise<Map<string, TopicPosition>>;
  history(key: string, since: number, epoch: string): Promise<HistoryRead>;
}

interface Feed {
  refs: number;
  /** Resolves once the bus subscription is active and the feed knows its position. */
  ready: Promise<void>;
  stop: (() => void) | null;
  /** Last seq delivered, and its epoch. */
  seq: number;
  epoch: string;
  /** Events that arrived while the position was being read or a gap was being filled. */
  queue: TopicEvent[] | null;
  taps: Set<Tap>;
  /** The log's head at the previous reconciliation. */
  lastHead: number;
}

export interface FeedOptions {
  /** How often followed topics are compared with the log (to catch what the bus never carried). */
  reconcileMs: number;
  log: Logger;
  /** The node lost events of a topic it cannot refill: its subscribers must resume on their own. */
  onLost: (key: string) => void;
}

/**
 * The node's view of the topics its subscribers follow: each followed once on the bus, checked
 * for seq on every event, and delivered exactly once, in order, to the broadcast sink and the taps.
 *
 * The event log is the truth and the bus only the fast path: an old event is dropped, a gap is
 * filled from the log before delivery goes on, and every `reconcileMs` (and whenever the bus
 * reconnects) each topic's head in the log is compared with what was delivered, so an event the
 * bus never carried (its publisher crashed after commit, Redis was away) arrives anyway, at most
 * two intervals late. Only when the log itself no longer holds the missing events are the
 * topic's subscribers told to resume (`onLost`).
 */
export class Feeds {
  private readonly feeds = new Map<string, Feed>();
  private readonly reconciler: NodeJS.Timeout;
  private broadcast: BroadcastSink | null = null;
  private reconciling = false;
  private forceAgain = false;

  constructor(
    private readonly bus: Bus,
    private readonly eventLog: FeedLog,
    private readonly options: FeedOptions,
  ) {
    this.reconciler = setInterval(() => void this.reconcile(false), options.reconcileMs);
    this.reconciler.unref();
    bus.onReconnect(() => void this.reconcile(true));
  }

  /** The transport's native fan-out, once it is listening. */
  useBroadcast(sink: BroadcastSink): void {
    this.broadcast = sink;
  }

  /** Follows a topic (once per node); resolves when events published from now on will arrive. */
  join(key: string): Promise<void> {
    const existing = this.feeds.get(key);
    if (existing) {
      existing.refs++;
      return existing.ready;
    }
    const feed: Feed = { refs: 1, ready: Promise.resolve(), stop: null, seq: 0, epoch: '', queue: [], taps: new Set(), lastHead: 0 };
    feed.ready = this.start(key, feed);
    this.feeds.set(key, feed);
    return feed.ready;
  }

  leave(key: string): void {
    const feed = this.feeds.get(key);
    if (!feed || --feed.refs > 0) return;
    this.feeds.delete(key);
    feed.stop?.();
  }

  /** Last seq this node delivered on a topic it follows (null while it is catching up). */
  delivered(key: string): TopicPosition | null {
    const feed = this.feeds.get(key);
    return feed && feed.queue === null ? { seq: feed.seq, epoch: feed.epoch } : null;
  }

  addTap(key: string, tap: Tap): void {
    this.feeds.get(key)?.taps.add(tap);
  }

  removeTap(key: string, tap: Tap): void {
    this.feeds.get(key)?.taps.delete(tap);
  }

  get followed(): number {
    return this.feeds.size;
  }

  stop(): void {
    clearInterval(this.reconciler);
  }

  /**
   * Compares every followed topic with the log. A topic is filled when it is still behind a head
   * seen one round earlier (`force`: behind at all, after the bus reconnected), so events merely
   * in flight on the bus are not read twice.
   */
  async reconcile(force: boolean): Promise<void> {
    if (this.reconciling) {
      // A reconnect during a round must not be lost: it runs right after.
      if (force) this.forceAgain = true;
      return;
    }
    if (this.feeds.size === 0) return;
    this.reconciling = true;
    try {
      const heads = await this.eventLog.positions([...this.feeds.keys()]);
      for (const [key, head] of heads) {
        const feed = this.feeds.get(key);
        if (!feed || feed.queue) continue;
        const behind = head.epoch !== feed.epoch || (force ? feed.seq < head.seq : feed.seq < Math.min(feed.lastHead, head.seq));
        feed.lastHead = head.seq;
        if (behind) {
          feed.queue = [];
          void this.fill(key, feed);
        }
      }
    } catch (error) {
      this.options.log.warn({ err: error }, 'could not compare followed topics with the event log');
    } finally {
      this.reconciling = false;
    }
    if (this.forceAgain) {
      this.forceAgain = false;
      await this.reconcile(true);
    }
  }

  private async start(key: string, feed: Feed): Promise<void> {
    try {
      const stop = await this.bus.subscribe(key, (event) => this.receive(key, feed, event));
      if (this.feeds.get(key) !== feed) {
        stop();
        return;
      }
      feed.stop = stop;
      const position = (await this.eventLog.positions([key])).get(key)!;
      feed.seq = position.seq;
      feed.epoch = position.epoch;
      feed.lastHead = position.seq;
      this.drainQueue(key, feed);
    } catch (error) {
      if (this.feeds.get(key) === feed) this.feeds.delete(key);
      throw error;
    }
  }

  private receive(key: string, feed: Feed, event: TopicEvent): void {
    if (this.feeds.get(key) !== feed) return;
    if (feed.queue) {
      feed.queue.push(event);
      return;
    }
    if (event.ephemeral || (event.epoch === feed.epoch && event.seq === feed.seq + 1)) {
      this.deliver(key, feed, event);
      return;
    }
    if (event.epoch === feed.epoch && event.seq <= feed.seq) return; // already delivered
    // A gap (or another epoch): hold everything until the log fills it.
    feed.queue = [event];
    void this.fill(key, feed);
  }

  private async fill(key: string, feed: Feed): Promise<void> {
    try {
      const history = await this.eventLog.history(key, feed.seq, feed.epoch);
      if (this.feeds.get(key) !== feed) return;
      if (history.recovered) {
        for (const event of history.events) if (event.seq > feed.seq) this.deliver(key, feed, event);
      } else {
        // Gone from the log too: subscribers resume from their own positions; the feed starts afresh.
        feed.seq = history.position.seq;
        feed.epoch = history.position.epoch;
        this.options.onLost(key);
      }
    } catch (error) {
      // The log is unreachable: subscribers resume on their own; what was queued is dropped (they
      // get it from the log when they resume) and the next reconciliation retries.
      this.options.log.warn({ err: error, topic: key }, 'could not fill a gap from the event log; subscribers resume');
      feed.queue = null;
      this.options.onLost(key);
      return;
    }
    this.drainQueue(key, feed);
  }

  private drainQueue(key: string, feed: Feed): void {
    const queued = feed.queue ?? [];
    feed.queue = null;
    for (const event of queued) this.receive(key, feed, event);
  }

  private deliver(key: string, feed: Feed, event: TopicEvent): void {
    if (event.ephemeral) {
      event = { ...event, epoch: feed.epoch };
    } else {
      feed.seq = event.seq;
      feed.epoch = event.epoch;
    }
    this.broadcast?.publish(key, event);
    for (const tap of feed.taps) tap(event);
  }
}
