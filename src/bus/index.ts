import type { Logger } from '../logger.js';
import { parseRedisTarget } from '../redis/connection.js';
import type { Bus, HistoryLimits } from './bus.js';
import { LocalBus } from './local-bus.js';
import { RedisBus } from './redis-bus.js';

export type { Bus, BusEvent, BusHealth, BusListener, HistoryLimits, HistoryResult, PublishOptions, TopicPosition } from './bus.js';

export interface BusOptions {
  /** redis://… or redis+cluster://…; unset runs the in-process bus (one node). */
  redisUrl: string | undefined;
  history: HistoryLimits;
  redis?: { keyPrefix: string; commandTimeoutMs: number };
  nodeName?: string;
  log?: Logger;
}

/** Picks the bus backend from configuration: Redis when a URL is given, else in-process. */
export async function openBus(options: BusOptions): Promise<Bus> {
  if (!options.redisUrl) return new LocalBus(options.history);
  return RedisBus.open({
    target: parseRedisTarget(options.redisUrl),
    keyPrefix: options.redis?.keyPrefix ?? 'stategate:',
    commandTimeoutMs: options.redis?.commandTimeoutMs ?? 2000,
    history: options.history,
    ...(options.nodeName ? { nodeName: options.nodeName } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}
