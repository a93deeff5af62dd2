import type { EventFrame } from '../../protocol/index.js';
import type { GatewaySocket } from '../../clients/index.js';

/**
 * Records the events a socket receives on one topic (or all with `*`), and waits for counts.
 * Ephemeral signals (presence, typing) are left out unless asked for: they come and go with other
 * clients and would make counts of numbered events depend on timing.
 */
export function recorder(socket: GatewaySocket, topic = '*', options: { ephemeral?: boolean } = {}) {
  const events: EventFrame[] = [];
  socket.on(topic, (event) => {
    if (!event.ephemeral || options.ephemeral) events.push(event);
  });
  return {
    events,
    async waitFor(predicate: (events: EventFrame[]) => boolean, timeoutMs = 5000): Promise<EventFrame[]> {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        if (Date.now() > deadline) throw new Error(`timed out; have ${events.length} events: ${events.map((e) => e.event).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return events;
    },
    named(name: string): EventFrame[] {
      return events.filter((event) => event.event === name);
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the first `count` events a socket receives on a topic. */
export function collect(socket: GatewaySocket, topic: string, count: number, timeoutMs = 5000): Promise<EventFrame[]> {
  return new Promise((resolve, reject) => {
    const events: EventFrame[] = [];
    const timer = setTimeout(() => reject(new Error(`got ${events.length} of ${count} events on ${topic}`)), timeoutMs);
    socket.on(topic, (event) => {
      if (event.ephemeral) return;
      events.push(event);
      if (events.length === count) {
        clearTimeout(timer);
        resolve(events);
      }
    });
  });
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
