import { ApiFailure } from '../core/errors.js';
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

/**
 * The bus as handlers see it, to announce changes that are already committed. A publish that fails
 * then must not read as "nothing happened": its 503 says the write is stored and only its event
 * is missing, so a client refetches instead of retrying the write (which would store it twice).
 */
export function announcingBus(bus: Bus): Bus {
  return {
    kind: bus.kind,
    async publish(topic, event, data, options) {
      try {
        return await bus.publish(topic, event, data, options);
      } catch (error) {
        // Ephemeral signals (typing, presence, stream deltas) follow no commit: their failure stays as it is.
        if (options?.ephemeral || !(error instanceof ApiFailure) || error.code !== 'SERVICE_UNAVAILABLE') throw error;
        throw new ApiFailure('SERVICE_UNAVAILABLE', 'The change was saved, but its event may not have reached every subscriber: the event bus is unreachable', {
          ...error.details,
          committed: true,
          announced: false,
          suggestion: 'Do not retry the write; fetch the resource, and resubscribe once the service is ready again',
        });
      }
    },
    subscribe: (topic, listener) => bus.subscribe(topic, listener),
    position: (topic) => bus.position(topic),
    history: (topic, since, epoch) => bus.history(topic, since, epoch),
    recent: (topic) => bus.recent(topic),
    health: () => bus.health(),
    close: () => bus.close(),
  };
}

/** Refuses a write up front while the bus is down, before anything is committed. */
export function requireBus(bus: Bus): void {
  const health = bus.health();
  if (health.ok) return;
  throw new ApiFailure('SERVICE_UNAVAILABLE', 'The event bus is unreachable, so changes cannot be announced; retry shortly', {
    component: 'bus',
    bus: health.detail,
    committed: false,
    retryable: true,
  });
}
