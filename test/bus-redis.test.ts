import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../src/bus/index.js';
import { RedisBus } from '../src/bus/redis-bus.js';
import { parseRedisTarget, type RedisTarget } from '../src/redis/connection.js';
import { busContract } from './bus.contract.js';
import { LocalRedisCluster } from './helpers/redis-cluster.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers/redis.js';

const available = await redisAvailable('the Redis bus suites');

const prefixes: string[] = [];

function openRedisBus(target: () => RedisTarget, label: string) {
  const keyPrefix = uniquePrefix(label);
  prefixes.push(keyPrefix);
  let node = 0;
  return async (limits: { maxEvents: number; ttlMs: number }): Promise<Bus> =>
    RedisBus.open({ target: target(), keyPrefix, history: limits, commandTimeoutMs: 2000, nodeName: `${label}-${node++}` });
}

describe('Redis URLs', () => {
  it('reads one server, or a cluster from its seed nodes with credentials', () => {
    expect(parseRedisTarget('redis://:pw@10.0.0.1:6380/2')).toEqual({ kind: 'single', url: 'redis://:pw@10.0.0.1:6380/2' });
    expect(parseRedisTarget('redis+cluster://app:s%40cret@a:7000,b:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      username: 'app',
      password: 's@cret',
      tls: false,
    });
    expect(parseRedisTarget('rediss+cluster://[::1]:7000')).toMatchObject({ kind: 'cluster', nodes: [{ host: '::1', port: 7000 }], tls: true });
    expect(() => parseRedisTarget('redis+cluster://a')).toThrow(/host:port/);
    expect(() => parseRedisTarget('http://a:1')).toThrow(/must start with/);
  });
});

describe.runIf(available)('Redis bus (one server)', () => {
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(REDIS_URL, prefix);
  });
  busContract({ name: 'redis', shared: true, open: openRedisBus(() => parseRedisTarget(REDIS_URL), 'single') });

  it('subscribes a channel only while the node has listeners, and not twice', async () => {
    const bus = (await openRedisBus(() => parseRedisTarget(REDIS_URL), 'channels')({ maxEvents: 10, ttlMs: 60_000 })) as RedisBus;
    try {
      const stopA = await bus.subscribe('acct/t:1', () => {});
      const stopB = await bus.subscribe('acct/t:1', () => {});
      const stopC = await bus.subscribe('acct/t:2', () => {});
      expect(bus.channelCount).toBe(2);
      stopA();
      expect(bus.channelCount).toBe(2);
      stopB();
      stopC();
      expect(bus.channelCount).toBe(0);
      expect(bus.health()).toEqual({ ok: true, detail: 'redis: ok' });
    } finally {
      await bus.close();
    }
  });

  it('keeps seq and epoch of an idle topic after its history expired', async () => {
    const open = openRedisBus(() => parseRedisTarget(REDIS_URL), 'idle');
    const bus = await open({ maxEvents: 10, ttlMs: 1000 });
    try {
      const first = await bus.publish('acct/idle:1', 'e', {});
      await new Promise((r) => setTimeout(r, 2200)); // past the history stream's own expiry
      const second = await bus.publish('acct/idle:1', 'e', {});
      expect(second).toMatchObject({ seq: first.seq + 1, epoch: first.epoch });
      expect(await bus.history('acct/idle:1', 0, first.epoch)).toMatchObject({ recovered: false });
    } finally {
      await bus.close();
    }
  });
});

describe.runIf(available)('Redis bus (3-primary cluster, sharded pub/sub)', () => {
  let cluster: LocalRedisCluster | null = null;
  beforeAll(async () => {
    cluster = await LocalRedisCluster.start();
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  busContract({ name: 'redis cluster', shared: true, open: openRedisBus(() => parseRedisTarget(cluster!.url), 'cluster') });

  it('spreads topics over the shards', async () => {
    const bus = await openRedisBus(() => parseRedisTarget(cluster!.url), 'spread')({ maxEvents: 10, ttlMs: 60_000 });
    try {
      const topics = Array.from({ length: 12 }, (_, i) => `acct/spread:${i}`);
      await Promise.all(topics.map((topic) => bus.publish(topic, 'e', {})));
      const keysPerNode = await Promise.all(
        cluster!.nodes.map(async (node) => {
          const { Redis } = await import('ioredis');
          const client = new Redis(node.url);
          try {
            return (await client.dbsize());
          } finally {
            client.disconnect();
          }
        }),
      );
      expect(keysPerNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    } finally {
      await bus.close();
    }
  });
});
