import type { Redis } from 'ioredis';
import { FallbackRateLimiter } from './fallback-rate-limiter.js';
import { MemoryRateLimiter } from './memory-rate-limiter.js';
import type { RateLimiter } from './rate-limiter.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';

export * from './rate-limiter.js';
export { quotaFor, PLAN_QUOTAS } from './plans.js';
export { MemoryRateLimiter } from './memory-rate-limiter.js';
export { RedisRateLimiter } from './redis-rate-limiter.js';

/**
 * Redis when a client is given (counters shared by every node, falling back to this node's own
 * while Redis does not answer), else this process's memory.
 */
export function createRateLimiter(
  options: { redis?: Redis | undefined; prefix?: string; onFallback?: (failing: boolean, error?: unknown) => void } = {},
): RateLimiter {
  if (!options.redis) return new MemoryRateLimiter();
  const shared = new RedisRateLimiter(options.redis, options.prefix ? { prefix: options.prefix } : {});
  return new FallbackRateLimiter(shared, new MemoryRateLimiter(), options.onFallback);
}
