import type { Logger } from '../logger.js';
import type { Bus } from './bus.js';

/**
 * A node-to-node channel on the bus for the gateway's own signals (key revocations, cache
 * evictions): every node, the sender included, receives each message once. Live only: a node
 * that misses one falls back on its caches' TTLs.
 */
export async function openSystemChannel<T>(bus: Bus, options: { topic: string; log: Logger; onMessage: (message: T) => void }): Promise<(message: T) => void> {
  await bus.subscribe(options.topic, (event) => options.onMessage(event.data as T));
  return (message) => {
    const signal = { topic: options.topic, seq: 0, epoch: '', id: '', event: 'system', data: message, ts: new Date().toISOString(), ephemeral: true as const };
    bus.publish([signal]).catch((error: unknown) => {
      options.log.warn({ err: error, topic: options.topic }, 'system message not broadcast: other nodes catch up when their caches expire');
    });
  };
}
