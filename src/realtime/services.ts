import { parseTopic, type StreamSnapshot } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { Bus } from '../bus/index.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { Delivery } from './delivery.js';
import { Feeds } from './feeds.js';
import type { PresenceRegistry } from './presence.js';
import { snapshotsFromEvents } from './stream-snapshots.js';
import type { StreamRegistry } from './streams.js';
import { authorizeTopic } from './subscriptions.js';

/** What the realtime layer is built from: the node's store, bus, streams and presence, and its settings. */
export interface RealtimeParts {
  store: Store;
  bus: Bus;
  streams: StreamRegistry;
  presence: PresenceRegistry;
  log: Logger;
  history: Pick<Config['history'], 'maxEvents' | 'reconcileMs'>;
  /** Subscriptions one subscriber may hold (WS_MAX_SUBSCRIPTIONS). */
  maxSubscriptions: number;
}

/** The node's delivery: feeds that follow topics on the bus, subscriptions with resume over them. */
export interface Realtime {
  feeds: Feeds;
  delivery: Delivery;
  /** Checks that a principal may follow a topic (not found otherwise); returns the account-scoped key. */
  authorize(principal: Principal, topic: string): Promise<string>;
  stop(): void;
}

/**
 * Builds delivery with its rules: feeds follow topics on the bus and fill from the event log
 * (at most `history.maxEvents` per read); subscribers resume from it, see the replies being
 * streamed when they join, and count as present where presence is kept.
 */
export function buildRealtime(parts: RealtimeParts): Realtime {
  const { store, streams, presence, history } = parts;
  const authorize = (principal: Principal, topic: string) => authorizeTopic(store, principal, topic);
  const readHistory = (key: string, since: number, epoch: string) => store.events.history(key, since, epoch, history.maxEvents);
  let delivery: Delivery | null = null;
  const feeds = new Feeds(
    parts.bus,
    { positions: (keys) => store.events.positions(keys), history: readHistory },
    { reconcileMs: history.reconcileMs, log: parts.log, onLost: (key) => delivery?.lost(key) },
  );
  delivery = new Delivery({
    feeds,
    authorize,
    position: (key) => store.events.position(key),
    history: readHistory,
    snapshots: (principal, topic, key) => streamSnapshots(store, streams, history.maxEvents, principal, topic, key),
    presence(principal, topic, joined) {
      if (!countsPresence(topic)) return;
      if (joined) presence.join(principal.accountId, topic, principal.subject);
      else presence.leave(principal.accountId, topic, principal.subject);
    },
    maxSubscriptions: parts.maxSubscriptions,
  });
  return { feeds, delivery, authorize, stop: () => feeds.stop() };
}

/** Presence is about who is in a conversation or session, not who follows an agent or the account. */
function countsPresence(topic: string): boolean {
  const kind = parseTopic(topic)?.kind;
  return kind === 'conversation' || kind === 'session';
}

/**
 * The replies being streamed on a conversation topic, for a subscriber joining mid-stream: this
 * node's own streams from its registry; others' rebuilt from the topic's recent events.
 */
async function streamSnapshots(
  store: Store,
  streams: StreamRegistry,
  maxEvents: number,
  principal: Principal,
  topic: string,
  key: string,
): Promise<StreamSnapshot[]> {
  const parsed = parseTopic(topic);
  if (parsed?.kind !== 'conversation') return [];
  const local = streams.snapshots(principal.accountId, parsed.id);
  const owned = new Set(local.map((snapshot) => snapshot.stream_id));
  const elsewhere = snapshotsFromEvents(await store.events.recent(key, maxEvents)).filter((snapshot) => !owned.has(snapshot.stream_id));
  return [...local, ...elsewhere];
}
