import { ApiFailure } from '../kernel/errors.js';
import type { Principal } from '../auth/keys.js';
import type { SubscribeResult, StreamSnapshot } from '../../protocol/index.js';
import type { TopicEvent, TopicPosition } from '../kernel/topic-event.js';
import type { HistoryRead } from '../store/repos/events.js';
import type { Feeds, Tap } from './feeds.js';

/**
 * Whatever receives events: a WebSocket connection, a GraphQL subscription, a test's list. The
 * transport implements it; delivery knows nothing of frames.
 */
export interface Subscriber {
  readonly id: string;
  readonly closed: boolean;
  /** Sends one event to this subscriber alone. */
  send(event: TopicEvent): void;
  /**
   * A transport's shared fan-out (uWS topics fed by the broadcast sink): the subscriber is put on
   * it once in step with the node's feed. Without it the subscriber is fed by a tap throughout.
   */
  shared?: { join(key: string): void; leave(key: string): void };
  /** This node lost events of `key` it cannot refill: the subscriber must resume from its own position. */
  resume(key: string): void;
}

export interface SubscribeRequest {
  topic: string;
  since?: number | undefined;
  epoch?: string | undefined;
}

/** An accepted subscribe: `start` must run right after `result` reached the subscriber, synchronously. */
export interface PendingSubscribe {
  result: SubscribeResult;
  start(): void;
  /** The result could not be sent: undo. */
  abandon(): void;
}

export interface DeliveryDeps {
  feeds: Feeds;
  /** Checks that the principal may follow the topic; returns the account-scoped key. */
  authorize(principal: Principal, topic: string): Promise<string>;
  position(key: string): Promise<TopicPosition>;
  history(key: string, since: number, epoch: string): Promise<HistoryRead>;
  snapshots(principal: Principal, topic: string, key: string): Promise<StreamSnapshot[]>;
  presence(principal: Principal, topic: string, joined: boolean): void;
  maxSubscriptions: number;
}

interface Subscription {
  key: string;
  /** Last seq and epoch this subscriber received; tracked while it is fed by a tap. */
  seq: number;
  epoch: string;
  /** Set while the subscriber is fed by a tap instead of the shared fan-out. */
  tap: Tap | null;
}

interface SubscriberState {
  principal: Principal;
  subscriptions: Map<string, Subscription>;
  /** Topics whose subscribe is still being answered, and whether an unsubscribe cancelled it. */
  pending: Map<string, { cancelled: boolean }>;
}

/**
 * Subscriptions with resume, for any kind of subscriber. A joining subscriber is fed through a
 * tap (events buffered from before its history read) until it has caught up with what the node's
 * feed has delivered; only then is it handed to the shared fan-out. So every subscriber gets every
 * event once, in order, with no gap and no repeat at the seam between replay and live: see
 * docs/realtime.md.
 */
export class Delivery {
  private readonly states = new Map<Subscriber, SubscriberState>();
  /** Topic key -> subscribers following it, to make them resume when the node lost events. */
  private readonly byKey = new Map<string, Set<Subscriber>>();

  constructor(private readonly deps: DeliveryDeps) {}

  /** The node lost events of a topic it could not refill: its subscribers resume on their own. */
  lost(key: string): void {
    for (const subscriber of [...(this.byKey.get(key) ?? [])]) if (!subscriber.closed) subscriber.resume(key);
  }

  async subscribe(subscriber: Subscriber, principal: Principal, request: SubscribeRequest): Promise<PendingSubscribe> {
    const { topic } = request;
    const state = this.stateOf(subscriber, principal);
    const existing = state.subscriptions.get(topic);
    if (existing) {
      const position = await this.deps.position(existing.key);
      return { result: { topic, subscribed: true, seq: position.seq, epoch: position.epoch }, start() {}, abandon() {} };
    }
    if (state.pending.has(topic)) throw new ApiFailure('CONFLICT', `A subscribe to ${topic} is already in progress`, { topic });
    if (state.subscriptions.size + state.pending.size >= this.deps.maxSubscriptions) {
      throw new ApiFailure('VALIDATION_ERROR', `At most ${this.deps.maxSubscriptions} subscriptions per connection`, {
        max_subscriptions: this.deps.maxSubscriptions,
      });
    }
    const pending = { cancelled: false };
    state.pending.set(topic, pending);
    let key: string | null = null;
    let joined = false;
    const buffered: TopicEvent[] = [];
    const bufferTap: Tap = (event) => buffered.push(event);
    const undo = () => {
      state.pending.delete(topic);
      if (!key) return;
      this.deps.feeds.removeTap(key, bufferTap);
      if (joined) this.deps.feeds.leave(key);
    };
    try {
      key = await this.deps.authorize(principal, topic);
      const ready = this.deps.feeds.join(key);
      joined = true;
      // The tap sees everything the feed delivers from now on, until start() hands over.
      this.deps.feeds.addTap(key, bufferTap);
      await ready;
      let position: TopicPosition;
      let history: HistoryRead | null = null;
      if (request.since !== undefined && request.epoch !== undefined) {
        history = await this.deps.history(key, request.since, request.epoch);
        position = history.position;
      } else {
        position = await this.deps.position(key);
      }
      // Read after the position, so that the snapshots cover at least everything up to it. A
      // recovered resume needs none: it had the text up to `since`, the replay brings the rest.
      const streams = history?.recovered ? [] : await this.deps.snapshots(principal, topic, key);
      const result: SubscribeResult = {
        topic,
        subscribed: true,
        seq: position.seq,
        epoch: position.epoch,
        ...(history ? { recovered: history.recovered, replayed: history.events.length } : {}),
        streams,
      };
      const subscribedKey = key;
      let settled = false;
      return {
        result,
        abandon: () => {
          if (settled) return;
          settled = true;
          undo();
        },
        // Nothing awaits from here to the end: no event can slip between replay, buffer and live.
        start: () => {
          if (settled) return;
          settled = true;
          this.deps.feeds.removeTap(subscribedKey, bufferTap);
          state.pending.delete(topic);
          if (subscriber.closed || pending.cancelled) {
            this.deps.feeds.leave(subscribedKey);
            return;
          }
          const subscription: Subscription = { key: subscribedKey, seq: position.seq, epoch: position.epoch, tap: null };
          if (history?.recovered) {
            subscription.seq = request.since!;
            for (const event of history.events) this.forward(subscriber, subscription, event);
          }
          for (const event of buffered) this.forward(subscriber, subscription, event);
          state.subscriptions.set(topic, subscription);
          this.index(subscribedKey, subscriber, true);
          this.deps.presence(principal, topic, true);
          this.goLiveOrCatchUp(subscriber, subscription);
        },
      };
    } catch (error) {
      undo();
      throw error;
    }
  }

  /** Stops following a topic (also cancels a subscribe still being answered). */
  unsubscribe(subscriber: Subscriber, topic: string): { topic: string; subscribed: false } {
    const state = this.states.get(subscriber);
    const pending = state?.pending.get(topic);
    if (pending) pending.cancelled = true;
    const subscription = state?.subscriptions.get(topic);
    if (state && subscription) {
      state.subscriptions.delete(topic);
      this.detach(subscriber, subscription);
      this.deps.presence(state.principal, topic, false);
    }
    return { topic, subscribed: false };
  }

  /** The subscriber is gone (its shared fan-out already dropped it): release its topics. */
  closed(subscriber: Subscriber): void {
    const state = this.states.get(subscriber);
    if (!state) return;
    this.states.delete(subscriber);
    for (const pending of state.pending.values()) pending.cancelled = true;
    for (const [topic, subscription] of state.subscriptions) {
      if (subscription.tap) this.deps.feeds.removeTap(subscription.key, subscription.tap);
      this.index(subscription.key, subscriber, false);
      this.deps.feeds.leave(subscription.key);
      this.deps.presence(state.principal, topic, false);
    }
  }

  /**
   * The subscriber acts with new credentials from now on: each topic it follows is authorized
   * again, and those refused end (the others go on untouched). Returns the ended topics and why.
   */
  async renew(subscriber: Subscriber, principal: Principal): Promise<{ topic: string; failure: ApiFailure }[]> {
    const state = this.states.get(subscriber);
    if (!state) return [];
    state.principal = principal;
    const ended: { topic: string; failure: ApiFailure }[] = [];
    for (const topic of [...state.subscriptions.keys()]) {
      try {
        await this.deps.authorize(principal, topic);
      } catch (error) {
        // A refusal ends it; anything else (the store briefly unreachable) is no reason to.
        if (!(error instanceof ApiFailure) || error.status >= 500) continue;
        if (state.principal !== principal || !state.subscriptions.has(topic)) continue;
        this.unsubscribe(subscriber, topic);
        ended.push({ topic, failure: error });
      }
    }
    return ended;
  }

  /** Topics a subscriber follows (client names). */
  topicsOf(subscriber: Subscriber): string[] {
    return [...(this.states.get(subscriber)?.subscriptions.keys() ?? [])];
  }

  private stateOf(subscriber: Subscriber, principal: Principal): SubscriberState {
    let state = this.states.get(subscriber);
    if (!state) this.states.set(subscriber, (state = { principal, subscriptions: new Map(), pending: new Map() }));
    return state;
  }

  private detach(subscriber: Subscriber, subscription: Subscription): void {
    if (subscription.tap) this.deps.feeds.removeTap(subscription.key, subscription.tap);
    else subscriber.shared?.leave(subscription.key);
    this.index(subscription.key, subscriber, false);
    this.deps.feeds.leave(subscription.key);
  }

  /** Sends an event the subscriber has not had yet; drops one it has. */
  private forward(subscriber: Subscriber, subscription: Subscription, event: TopicEvent): void {
    if (!event.ephemeral) {
      if (event.epoch === subscription.epoch && event.seq <= subscription.seq) return;
      subscription.seq = event.seq;
      subscription.epoch = event.epoch;
    }
    subscriber.send(event);
  }

  private caughtUp(subscription: Subscription): boolean {
    const delivered = this.deps.feeds.delivered(subscription.key);
    if (!delivered) return false;
    return delivered.epoch !== subscription.epoch || delivered.seq >= subscription.seq;
  }

  private goLiveOrCatchUp(subscriber: Subscriber, subscription: Subscription): void {
    const shared = subscriber.shared;
    if (shared && this.caughtUp(subscription)) {
      shared.join(subscription.key);
      return;
    }
    // Fed directly: for good when the subscriber has no shared fan-out; otherwise until the
    // node's feed catches up with it (its history read saw events still in flight to this node).
    const tap: Tap = (event) => {
      if (subscriber.closed) return;
      this.forward(subscriber, subscription, event);
      if (shared && this.caughtUp(subscription)) {
        this.deps.feeds.removeTap(subscription.key, tap);
        subscription.tap = null;
        shared.join(subscription.key);
      }
    };
    subscription.tap = tap;
    this.deps.feeds.addTap(subscription.key, tap);
  }

  private index(key: string, subscriber: Subscriber, add: boolean): void {
    let set = this.byKey.get(key);
    if (add) {
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(subscriber);
    } else if (set) {
      set.delete(subscriber);
      if (set.size === 0) this.byKey.delete(key);
    }
  }
}
