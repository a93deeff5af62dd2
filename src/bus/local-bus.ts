import { randomUUID } from 'node:crypto';
import type { Bus, BusEvent, BusListener, TopicPosition } from './bus.js';

/**
 * The in-process bus of a single node. Its epoch is new at every start: sequence numbers from a
 * previous process are not comparable with this one's.
 */
export class LocalBus implements Bus {
  readonly kind = 'local' as const;
  private readonly epoch = randomUUID().slice(0, 8);
  private readonly seqs = new Map<string, number>();
  private readonly listeners = new Map<string, Set<BusListener>>();

  async publish(topic: string, event: string, data: unknown): Promise<BusEvent> {
    const seq = (this.seqs.get(topic) ?? 0) + 1;
    this.seqs.set(topic, seq);
    const stamped: BusEvent = { topic, seq, epoch: this.epoch, event, data, ts: new Date().toISOString() };
    const set = this.listeners.get(topic);
    if (set) {
      for (const listener of set) {
        try {
          listener(stamped);
        } catch {
          // A failing listener must not stop delivery to the others; listeners log their own errors.
        }
      }
    }
    return stamped;
  }

  subscribe(topic: string, listener: BusListener): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.listeners.get(topic);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.listeners.delete(topic);
    };
  }

  async position(topic: string): Promise<TopicPosition> {
    return { seq: this.seqs.get(topic) ?? 0, epoch: this.epoch };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
