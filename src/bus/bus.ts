import type { TopicEvent } from '../kernel/topic-event.js';

/**
 * Carries events between nodes: every node with listeners on a topic gets each event published
 * to it. The bus numbers nothing and keeps nothing: numbered events come from the event log
 * (the database), which is also where a subscriber resumes from; ephemeral signals (typing,
 * presence, the gateway's own messages) have seq 0. A message the bus loses (a reconnect, a
 * node that published and crashed) shows up as a gap in seq, which the receiving node fills from
 * the log. One implementation per backend, held to one behaviour by test/bus.contract.ts.
 */
export type BusEvent = TopicEvent;

export type BusListener = (event: BusEvent) => void;

export interface BusHealth {
  ok: boolean;
  detail: string;
}

export interface Bus {
  readonly kind: 'local' | 'redis';
  /** Delivers the events to every node listening to their topics, in the order given per topic. */
  publish(events: readonly BusEvent[]): Promise<void>;
  /**
   * Listens to one topic on this node. Resolves once the subscription is active, so that every
   * event published after that reaches the listener; resolves to the function that stops it.
   */
  subscribe(topic: string, listener: BusListener): Promise<() => void>;
  /** Called each time the connection came back after a loss: events published meanwhile may be missing. */
  onReconnect(listener: () => void): void;
  health(): BusHealth;
  close(): Promise<void>;
}
