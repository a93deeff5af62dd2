/**
 * One event on one topic, as every layer sees it: numbered by the event log (store), carried
 * between nodes by the bus, delivered by the realtime layer. Shared here so that neither the
 * store nor the bus imports the other.
 */
export interface TopicEvent {
  /** The account-scoped topic key, `<account>/<topic>`. */
  topic: string;
  /** Position on the topic, gap-free from 1; 0 for ephemeral signals, which take no position. */
  seq: number;
  /** Identifies the topic's numbering; a seq is comparable only within one epoch. */
  epoch: string;
  /** The event's id, the same on every topic it went to (and later in webhooks); '' for signals. */
  id: string;
  event: string;
  data: unknown;
  /** ISO 8601 time of the change. */
  ts: string;
  /** Typing and presence: delivered live only, never numbered or replayed. */
  ephemeral?: true;
}

export interface TopicPosition {
  /** Last seq on the topic, 0 when none. */
  seq: number;
  epoch: string;
}

/** An event to be numbered and stored: one id, several topics (each gets its own seq). */
export interface EventDraft {
  id: string;
  topics: string[];
  event: string;
  data: unknown;
}
