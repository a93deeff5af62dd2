import type { Logger } from '../logger.js';
import { parseRedisTarget } from '../redis/connection.js';
import type { Bus } from './bus.js';
import { LocalBus } from './local-bus.js';
import { RedisBus } from './redis-bus.js';

export type { Bus, BusEvent, BusHealth, BusListener } from './bus.js';

export interface BusOptions {
  /** redis://… or redis+cluster://…; unset runs the in-process bus (one node). */
  redisUrl: string | undefined;
  redis?: { keyPrefix: string; commandTimeoutMs: number };
  nodeName?: string;
  log?: Logger;
}

/** Picks the bus backend from configuration: Redis when a URL is given, else in-process. */
export async function openBus(options: BusOptions): Promise<Bus> {
  if (!options.redisUrl) return new LocalBus();
  return RedisBus.open({
    target: parseRedisTarget(options.redisUrl),
    keyPrefix: options.redis?.keyPrefix ?? 'stategate:',
    commandTimeoutMs: options.redis?.commandTimeoutMs ?? 2000,
    ...(options.nodeName ? { nodeName: options.nodeName } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}
