import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryPresenceStore, type PresenceStore } from '../src/realtime/presence-store.js';
import { RedisPresenceStore } from '../src/realtime/redis-presence-store.js';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers/redis.js';

/** The same behaviour from every presence store; Redis adds nodes that share one view. */
function presenceContract(name: string, open: () => PresenceStore) {
  describe(`presence store: ${name}`, () => {
    it('counts connections per subject and reports the first and the last', async () => {
      const store = open();
      expect(await store.join('acct/conversation:c1', 'user_a')).toBe(1);
      expect(await store.join('acct/conversation:c1', 'user_a')).toBe(2);
      expect(await store.join('acct/conversation:c1', 'user_b')).toBe(1);
      expect(await store.members('acct/conversation:c1')).toEqual([
        { subject: 'user_a', connections: 2 },
        { subject: 'user_b', connections: 1 },
      ]);
      expect(await store.leave('acct/conversation:c1', 'user_a')).toBe(1);
      expect(await store.leave('acct/conversation:c1', 'user_a')).toBe(0);
      expect(await store.members('acct/conversation:c1')).toEqual([{ subject: 'user_b', connections: 1 }]);
      expect(await store.members('acct/conversation:other')).toEqual([]);
      await store.close();
    });
  });
}

presenceContract('memory', () => new MemoryPresenceStore());

const available = await redisAvailable('the Redis presence store');
describe.runIf(available)('presence store: redis', () => {
  const prefix = uniquePrefix('presence');
  const clients: Redis[] = [];
  const node = (nodeId: string) => {
    const client = new Redis(REDIS_URL);
    clients.push(client);
    return new RedisPresenceStore(client, { prefix, nodeId });
  };
  afterAll(async () => {
    await deleteKeys(REDIS_URL, prefix);
    for (const client of clients) client.disconnect();
  });

  presenceContract('redis, one node', () => node(`solo-${Math.random()}`));

  it('adds up the connections of every node, and leaves out a node that died', async () => {
    const a = node('node-a');
    const b = node('node-b');
    const dying = node('node-c');
    const key = 'acct/conversation:shared';
    expect(await a.join(key, 'user_x')).toBe(1);
    expect(await b.join(key, 'user_x')).toBe(2);
    expect(await dying.join(key, 'user_y')).toBe(1);
    expect(await a.members(key)).toEqual([
      { subject: 'user_x', connections: 2 },
      { subject: 'user_y', connections: 1 },
    ]);
    await dying.close(); // its heartbeat is gone, as after a crash: its connections no longer count
    expect(await b.members(key)).toEqual([{ subject: 'user_x', connections: 2 }]);
    expect(await a.leave(key, 'user_x')).toBe(1);
    expect(await b.leave(key, 'user_x')).toBe(0);
    await a.close();
    await b.close();
  });
});
