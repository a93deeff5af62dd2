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
  return async (): Promise<Bus> => RedisBus.open({ target: target(), keyPrefix, commandTimeoutMs: 2000, nodeName: `${label}-${node++}` });
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
    const bus = (await openRedisBus(() => parseRedisTarget(REDIS_URL), 'channels')()) as RedisBus;
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

  it('tells its listeners when it is back after losing Redis, so that nodes fill from the log', async () => {
    const bus = (await openRedisBus(() => parseRedisTarget(REDIS_URL), 'reconnect')()) as RedisBus;
    const { Redis } = await import('ioredis');
    const admin = new Redis(REDIS_URL);
    try {
      let reconnects = 0;
      bus.onReconnect(() => reconnects++);
      await bus.subscribe('acct/reconnect:1', () => {});
      // Drops this bus's own connections server-side (found by their names), as a Redis restart
      // would, leaving other suites' clients on the shared Redis alone.
      const clients = String(await admin.client('LIST'))
        .split('\n')
        .filter((line) => / name=stategate:reconnect-\d+ /.test(line));
      expect(clients.length).toBeGreaterThanOrEqual(2);
      for (const line of clients) await admin.client('KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!);
      const deadline = Date.now() + 5000;
      while ((reconnects === 0 || !bus.health().ok) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(reconnects).toBeGreaterThanOrEqual(1);
      expect(bus.health().ok).toBe(true);
    } finally {
      admin.disconnect();
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
    const bus = await openRedisBus(() => parseRedisTarget(cluster!.url), 'spread')();
    try {
      const topics = Array.from({ length: 12 }, (_, i) => `acct/spread:${i}`);
      for (const topic of topics) await bus.subscribe(topic, () => {});
      // Sharded channels live on the shard that owns their slot: more than one here.
      const channelsPerNode = await Promise.all(
        cluster!.nodes.map(async (node) => {
          const { Redis } = await import('ioredis');
          const client = new Redis(node.url);
          try {
            return ((await client.call('PUBSUB', 'SHARDCHANNELS')) as string[]).length;
          } finally {
            client.disconnect();
          }
        }),
      );
      expect(channelsPerNode.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    } finally {
      await bus.close();
    }
  });
});
