import type { EventFrame, FrameId } from '../../protocol/index.js';
import type { BusEvent, HistoryResult, TopicPosition } from '../bus/index.js';
import { ApiFailure, toFailure } from '../core/errors.js';
import type { GatewayCore } from './core.js';
import { Fanout, toEventFrame, type Tap } from './fanout.js';
import { send, sendError, type Connection, type GatewayWebSocket, type Subscription } from './ws-connection.js';

export interface SubscribeRequest {
  id: FrameId;
  topic: string;
  since?: number | undefined;
  epoch?: string | undefined;
}

/**
 * Subscriptions of WebSocket connections, with resume. A joining socket is fed through a tap
 * (events buffered from before its history read) until it has caught up with what the node's
 * stream has delivered; only then is it put on the shared uWS topic. So every socket gets every
 * event once, in order, with no gap and no repeat at the seam between replay and live.
 */
export class Subscriptions {
  /** Stream key -> sockets following it, to close them when the node lost events it cannot refill. */
  private readonly byKey = new Map<string, Set<GatewayWebSocket>>();

  constructor(
    private readonly core: GatewayCore,
    private readonly fanout: Fanout,
    private readonly maxSubscriptions: number,
  ) {}

  socketsOf(key: string): GatewayWebSocket[] {
    return [...(this.byKey.get(key) ?? [])];
  }

  async subscribe(ws: GatewayWebSocket, connection: Connection, request: SubscribeRequest): Promise<void> {
    const { id, topic } = request;
    const existing = connection.subscriptions.get(topic);
    if (existing) {
      const position = await this.core.position(existing.key);
      send(ws, connection, { type: 'result', id, data: { topic, subscribed: true, seq: position.seq, epoch: position.epoch } });
      return;
    }
    if (connection.pending.has(topic)) {
      sendError(ws, connection, id, new ApiFailure('CONFLICT', `A subscribe to ${topic} is already in progress`, { topic }));
      return;
    }
    if (connection.subscriptions.size + connection.pending.size >= this.maxSubscriptions) {
      sendError(
        ws,
        connection,
        id,
        new ApiFailure('VALIDATION_ERROR', `At most ${this.maxSubscriptions} subscriptions per connection`, { max_subscriptions: this.maxSubscriptions }),
      );
      return;
    }
    const pending = { cancelled: false };
    connection.pending.set(topic, pending);
    let key: string | null = null;
    let joined = false;
    const buffered: BusEvent[] = [];
    const bufferTap: Tap = (event) => buffered.push(event);
    try {
      key = await this.core.authorizeTopic(connection.principal, topic);
      const ready = this.fanout.join(key);
      joined = true;
      this.fanout.addTap(key, bufferTap);
      await ready;
      let position: TopicPosition;
      let history: HistoryResult | null = null;
      if (request.since !== undefined && request.epoch !== undefined) {
        history = await this.core.history(key, request.since, request.epoch);
        position = history.position;
      } else {
        position = await this.core.position(key);
      }
      // Read after the position, so that the snapshots cover at least everything up to it. A
      // recovered resume needs none: it had the text up to `since`, the replay brings the rest
      // (and a herd of clients resuming after a drain does not read every topic's window).
      const streams = history?.recovered ? [] : await this.core.streamSnapshots(connection.principal, topic, key);
      this.fanout.removeTap(key, bufferTap);
      connection.pending.delete(topic);
      if (connection.closed || pending.cancelled) {
        this.fanout.leave(key);
        return;
      }
      // From here to the end, nothing awaits: no event can slip between replay, buffer and live.
      send(ws, connection, {
        type: 'result',
        id,
        data: {
          topic,
          subscribed: true,
          seq: position.seq,
          epoch: position.epoch,
          ...(history ? { recovered: history.recovered, replayed: history.events.length } : {}),
          streams,
        },
      });
      const subscription: Subscription = { key, seq: position.seq, epoch: position.epoch, tap: null };
      if (history?.recovered) {
        subscription.seq = request.since!;
        for (const event of history.events) this.forward(ws, connection, subscription, event);
      }
      for (const event of buffered) this.forward(ws, connection, subscription, event);
      connection.subscriptions.set(topic, subscription);
      this.index(key, ws, true);
      this.core.presence(connection.principal, topic, true);
      this.goLiveOrCatchUp(ws, connection, subscription);
    } catch (error) {
      connection.pending.delete(topic);
      if (key) {
        this.fanout.removeTap(key, bufferTap);
        if (joined) this.fanout.leave(key);
      }
      sendError(ws, connection, id, toFailure(error));
    }
  }

  unsubscribe(ws: GatewayWebSocket, connection: Connection, id: FrameId, topic: string): void {
    const pending = connection.pending.get(topic);
    if (pending) pending.cancelled = true;
    const subscription = connection.subscriptions.get(topic);
    if (subscription) {
      connection.subscriptions.delete(topic);
      this.detach(ws, connection, subscription);
      this.core.presence(connection.principal, topic, false);
    }
    send(ws, connection, { type: 'result', id, data: { topic, subscribed: false } });
  }

  /** On close: uWS already dropped the socket's topics; release the streams. */
  closed(ws: GatewayWebSocket, connection: Connection): void {
    for (const [topic, subscription] of connection.subscriptions) {
      if (subscription.tap) this.fanout.removeTap(subscription.key, subscription.tap);
      this.index(subscription.key, ws, false);
      this.fanout.leave(subscription.key);
      this.core.presence(connection.principal, topic, false);
    }
    connection.subscriptions.clear();
  }

  private detach(ws: GatewayWebSocket, connection: Connection, subscription: Subscription): void {
    if (subscription.tap) this.fanout.removeTap(subscription.key, subscription.tap);
    else ws.unsubscribe(Fanout.channel(subscription.key, connection.encoding));
    this.index(subscription.key, ws, false);
    this.fanout.leave(subscription.key);
  }

  /** Sends an event the socket has not had yet; drops one it has. */
  private forward(ws: GatewayWebSocket, connection: Connection, subscription: Subscription, event: BusEvent): void {
    if (!event.ephemeral) {
      if (event.epoch === subscription.epoch && event.seq <= subscription.seq) return;
      subscription.seq = event.seq;
      subscription.epoch = event.epoch;
    }
    send(ws, connection, toEventFrame(subscription.key, event) as EventFrame);
  }

  private caughtUp(subscription: Subscription): boolean {
    const delivered = this.fanout.delivered(subscription.key);
    if (!delivered) return false;
    return delivered.epoch !== subscription.epoch || delivered.seq >= subscription.seq;
  }

  private goLiveOrCatchUp(ws: GatewayWebSocket, connection: Connection, subscription: Subscription): void {
    if (this.caughtUp(subscription)) {
      ws.subscribe(Fanout.channel(subscription.key, connection.encoding));
      return;
    }
    // The socket is ahead of this node's stream (its history read saw events still in flight to
    // this node): feed it directly until the stream catches up, then hand it to the uWS topic.
    const tap: Tap = (event) => {
      if (connection.closed) return;
      this.forward(ws, connection, subscription, event);
      if (this.caughtUp(subscription)) {
        this.fanout.removeTap(subscription.key, tap);
        subscription.tap = null;
        ws.subscribe(Fanout.channel(subscription.key, connection.encoding));
      }
    };
    subscription.tap = tap;
    this.fanout.addTap(subscription.key, tap);
  }

  private index(key: string, ws: GatewayWebSocket, add: boolean): void {
    let set = this.byKey.get(key);
    if (add) {
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(ws);
    } else if (set) {
      set.delete(ws);
      if (set.size === 0) this.byKey.delete(key);
    }
  }
}
