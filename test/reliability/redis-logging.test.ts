import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, RedisProcess, redisAvailable } from '../helpers/redis.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/events.js';

/**
 * Issue 16, defect 11: the state/presence Redis client had no 'error' listener, so ioredis printed
 * "[ioredis] Unhandled error event" raw on stderr at every reconnection attempt. Every client now
 * logs through pino, once when its connection fails and once when it is back. A private
 * redis-server is killed, never the shared one.
 */
const available = await redisAvailable('the Redis logging test');

describe.runIf(available)('Redis clients log through pino (defect 11)', () => {
  let redis: RedisProcess;
  let t: TestGateway;
  const lines: { level: number; msg: string; role?: string }[] = [];

  beforeAll(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
    t = await startTestGateway('pglite', { REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '500' }, { log });
  });
  afterAll(async () => {
    await t?.stop();
    await redis?.destroy();
  });

  it('logs an outage once per client and state change, and nothing raw on stderr', async () => {
    const raw = vi.spyOn(console, 'error');
    try {
      await redis.stop({ hard: true });
      // ioredis retries every second at most: wait through several attempts.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const unhandled = raw.mock.calls.filter((args) => String(args[0]).includes('[ioredis] Unhandled error event'));
      expect(unhandled).toEqual([]);
      const errors = lines.filter((line) => line.msg === 'redis connection error');
      expect(errors.filter((line) => line.role === 'state')).toHaveLength(1);
      expect(errors.every((line) => line.level === 40)).toBe(true);

      await redis.start();
      await until(() => lines.some((line) => line.msg === 'redis connection restored' && line.role === 'state'), 10_000, 'the state client to reconnect');
      expect(lines.filter((line) => line.msg === 'redis connection restored' && line.role === 'state')).toHaveLength(1);
      expect(raw.mock.calls.filter((args) => String(args[0]).includes('[ioredis]'))).toEqual([]);
    } finally {
      raw.mockRestore();
    }
  });
});
