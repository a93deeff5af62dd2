import type { Redis } from 'ioredis';
import { MemoryRateLimiter } from './memory-rate-limiter.js';
import type { RateLimiter } from './rate-limiter.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';

export * from './rate-limiter.js';
export { quotaFor, PLAN_QUOTAS } from './plans.js';
export { MemoryRateLimiter } from './memory-rate-limiter.js';
export { RedisRateLimiter } from './redis-rate-limiter.js';

/** Redis when a client is given (counters shared by every node), else this process's memory. */
export function createRateLimiter(options: { redis?: Redis | undefined } = {}): RateLimiter {
  return options.redis ? new RedisRateLimiter(options.redis) : new MemoryRateLimiter();
}
