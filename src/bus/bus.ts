/**
 * Fan-out of events between everything that publishes and every node that has subscribers.
 * The bus stamps each event with its topic's next `seq` and the topic's `epoch`, so that every
 * subscriber on every node sees the same numbers. One implementation per backend.
 */
export interface BusEvent {
  topic: string;
  seq: number;
  epoch: string;
  event: string;
  data: unknown;
  /** ISO 8601 publish time. */
  ts: string;
}

export type BusListener = (event: BusEvent) => void;

export interface TopicPosition {
  seq: number;
  epoch: string;
}

export interface Bus {
  readonly kind: 'local' | 'redis';
  /** Stamps and delivers an event; resolves once the bus has accepted it. */
  publish(topic: string, event: string, data: unknown): Promise<BusEvent>;
  /** Listens to one topic on this node; returns the function that stops listening. */
  subscribe(topic: string, listener: BusListener): () => void;
  /** The last seq published on a topic (0 when none) and its epoch. */
  position(topic: string): Promise<TopicPosition>;
  close(): Promise<void>;
}
