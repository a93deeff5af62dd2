import type { Bus } from '../bus/index.js';
import { openSystemChannel } from '../bus/system-channel.js';
import type { Logger } from '../logger.js';
import { ReadCache } from './read-cache.js';

/** Bus topic on which nodes tell each other to drop cached reads. */
const CACHE_TOPIC = '_system/cache';

/** A ReadCache whose evictions reach every node through the bus: a write on one node drops the entry on all. */
export async function openSharedReadCache<T extends object>(bus: Bus, options: { max: number; ttlMs: number; log: Logger }): Promise<ReadCache<T>> {
  let cache: ReadCache<T> | null = null;
  const evicted = await openSystemChannel<{ key: string }>(bus, { topic: CACHE_TOPIC, log: options.log, onMessage: ({ key }) => cache?.evict(key) });
  cache = new ReadCache<T>({ max: options.max, ttlMs: options.ttlMs }, (key) => evicted({ key }));
  return cache;
}
