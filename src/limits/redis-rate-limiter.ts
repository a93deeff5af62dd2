import type { Redis } from 'ioredis';
import { decide, endOfUtcDay, MINUTE_MS, type RateDecision, type RateLimiter, type RateQuota } from './rate-limiter.js';

/**
 * Both windows checked and counted in one Lua script, so that nodes sharing a Redis cannot
 * interleave between the check and the count. Each counter expires with its window.
 * KEYS: minute counter, day counter. ARGV: minute limit, minute ms, day limit (0 = none), ms to day end.
 * Returns: allowed (1/0), refused by (0 none, 1 minute, 2 day), minute count, minute ms left, day count, day ms left.
 */
const SCRIPT = `
local minuteLimit = tonumber(ARGV[1])
local minuteMs = tonumber(ARGV[2])
local dayLimit = tonumber(ARGV[3])
local dayMs = tonumber(ARGV[4])
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local mLeft = redis.call('PTTL', KEYS[1])
if mLeft < 0 then m = 0; mLeft = minuteMs end
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local dLeft = redis.call('PTTL', KEYS[2])
if dLeft < 0 then d = 0; dLeft = dayMs end
if m >= minuteLimit then return {0, 1, m, mLeft, d, dLeft} end
if dayLimit > 0 and d >= dayLimit then return {0, 2, m, mLeft, d, dLeft} end
m = redis.call('INCR', KEYS[1])
if m == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], minuteMs); mLeft = minuteMs end
d = redis.call('INCR', KEYS[2])
if d == 1 or redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], dayMs); dLeft = dayMs end
return {1, 0, m, mLeft, d, dLeft}
`;

type ScriptResult = [number, number, number, number, number, number];

interface RedisWithScript extends Redis {
  stategateRateLimit(minuteKey: string, dayKey: string, ...args: (string | number)[]): Promise<ScriptResult>;
}

export class RedisRateLimiter implements RateLimiter {
  readonly kind = 'redis';
  private readonly redis: RedisWithScript;

  constructor(
    redis: Redis,
    private readonly options: { prefix?: string; now?: () => number } = {},
  ) {
    // defineCommand loads the script once and calls it by SHA (EVALSHA), falling back to EVAL.
    if (!('stategateRateLimit' in redis)) redis.defineCommand('stategateRateLimit', { numberOfKeys: 2, lua: SCRIPT });
    this.redis = redis as RedisWithScript;
  }

  async consume(subject: string, quota: RateQuota): Promise<RateDecision> {
    const now = (this.options.now ?? Date.now)();
    const dayEnd = endOfUtcDay(now);
    const day = new Date(now).toISOString().slice(0, 10);
    // The hash tag keeps one subject's keys on one cluster slot, as the script needs.
    const base = `${this.options.prefix ?? 'sg:rl:'}{${subject}}`;
    const [allowed, refusedBy, minuteCount, minuteLeft, dayCount, dayLeft] = await this.redis.stategateRateLimit(
      `${base}:m`,
      `${base}:d:${day}`,
      quota.perMinute,
      MINUTE_MS,
      quota.perDay ?? 0,
      dayEnd - now + 1000,
    );
    return decide(
      quota,
      {
        allowed: allowed === 1,
        refusedBy: refusedBy === 1 ? 'minute' : refusedBy === 2 ? 'day' : null,
        minuteCount,
        minuteResetMs: now + minuteLeft,
        dayCount,
        dayResetMs: Math.min(now + dayLeft, dayEnd),
      },
      now,
    );
  }

  /** The client belongs to whoever passed it in; they close it. */
  async close(): Promise<void> {}
}
