import type { Bus, HistoryLimits } from './bus.js';
import { LocalBus } from './local-bus.js';

export type { Bus, BusEvent, BusHealth, BusListener, HistoryLimits, HistoryResult, PublishOptions, TopicPosition } from './bus.js';

/** Picks the bus backend from configuration. Redis arrives with the scale-out work. */
export async function openBus(options: { redisUrl: string | undefined; history: HistoryLimits }): Promise<Bus> {
  if (options.redisUrl) {
    throw new Error('REDIS_URL is set, but the Redis bus is not available in this build yet; unset it to run on one node');
  }
  return new LocalBus(options.history);
}
