/**
 * Fan-out of events between everything that publishes and every node that has subscribers.
 *
 * The bus stamps each event with its topic's next `seq` (gap-free, one per event) and the topic's
 * `epoch`, so every subscriber on every node sees the same numbers, and keeps a bounded history
 * window per topic from which a subscriber can resume. One implementation per backend, all held
 * to the same behaviour by test/bus.contract.ts.
 */
export interface BusEvent {
  topic: string;
  /** Position on the topic; 0 for ephemeral events, which take no position. */
  seq: number;
  epoch: string;
  event: string;
  data: unknown;
  /** ISO 8601 publish time. */
  ts: string;
  /** Ephemeral events (typing, presence) are delivered live only: no seq, no history. */
  ephemeral?: true;
}

export type BusListener = (event: BusEvent) => void;

export interface TopicPosition {
  /** Last seq published on the topic, 0 when none. */
  seq: number;
  epoch: string;
}

export interface PublishOptions {
  ephemeral?: boolean;
}

export interface HistoryResult {
  /**
   * True when `events` holds every event after `since` in `epoch`, up to `position`.
   * False when the epoch changed or the window no longer reaches back to `since + 1`:
   * then `events` is empty (never a partial replay) and the subscriber must refetch.
   */
  recovered: boolean;
  events: BusEvent[];
  position: TopicPosition;
}

export interface HistoryLimits {
  /** Most events kept per topic. */
  maxEvents: number;
  /** How long an event stays in the window. */
  ttlMs: number;
}

export interface BusHealth {
  ok: boolean;
  detail: string;
}

export interface Bus {
  readonly kind: 'local' | 'redis';
  /** Stamps, records and delivers an event; resolves once it is in the history window. */
  publish(topic: string, event: string, data: unknown, options?: PublishOptions): Promise<BusEvent>;
  /**
   * Listens to one topic on this node. Resolves once the subscription is active, so that every
   * event published after that reaches the listener; resolves to the function that stops it.
   */
  subscribe(topic: string, listener: BusListener): Promise<() => void>;
  position(topic: string): Promise<TopicPosition>;
  /** Events with seq > `since` of `epoch`, oldest first, or recovered: false. */
  history(topic: string, since: number, epoch: string): Promise<HistoryResult>;
  /**
   * The numbered events still in a topic's window, oldest first (for snapshots such as the text
   * of a reply being streamed; resume uses `history`, which is all-or-nothing).
   */
  recent(topic: string): Promise<BusEvent[]>;
  health(): BusHealth;
  close(): Promise<void>;
}
