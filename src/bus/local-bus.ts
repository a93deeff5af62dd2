import type { Bus, BusEvent, BusHealth, BusListener } from './bus.js';

/** The in-process bus of a single node: delivers synchronously, in publish order. */
export class LocalBus implements Bus {
  readonly kind = 'local' as const;
  private readonly listeners = new Map<string, Set<BusListener>>();

  async publish(events: readonly BusEvent[]): Promise<void> {
    for (const event of events) {
      const set = this.listeners.get(event.topic);
      if (!set) continue;
      for (const listener of set) {
        try {
          listener(event);
        } catch {
          // A failing listener must not stop delivery to the others; listeners log their own errors.
        }
      }
    }
  }

  async subscribe(topic: string, listener: BusListener): Promise<() => void> {
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

  onReconnect(): void {
    // Never disconnected.
  }

  health(): BusHealth {
    return { ok: true, detail: 'in-process' };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
