import type { Cluster, Redis } from 'ioredis';
import type { Presence } from '../../protocol/index.js';
import { sortMembers, type PresenceStore } from './presence-store.js';

/**
 * Presence shared by every node: one hash per topic, a field per node and subject, so that a
 * node that dies without saying goodbye can be left out: each node keeps a heartbeat key alive,
 * and members() counts only the fields of nodes whose heartbeat is still there.
 */
const CHANGE = `
local field = ARGV[1] .. '|' .. ARGV[2]
local n = redis.call('HINCRBY', KEYS[1], field, ARGV[3])
if n <= 0 then redis.call('HDEL', KEYS[1], field) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local sep = string.find(all[i], '|', 1, true)
  if sep and string.sub(all[i], sep + 1) == ARGV[2] then total = total + tonumber(all[i + 1]) end
end
return total`;

const HEARTBEAT_MS = 10_000;
const HEARTBEAT_TTL_MS = 30_000;
const PRESENCE_TTL_MS = 24 * 60 * 60 * 1000;

type Client = (Redis | Cluster) & { stategatePresence?: (key: string, node: string, subject: string, delta: number, ttl: number) => Promise<number> };

export class RedisPresenceStore implements PresenceStore {
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly redis: Client,
    private readonly options: { prefix: string; nodeId: string },
  ) {
    if (options.nodeId.includes('|')) throw new Error('a node id cannot contain "|"');
    if (!redis.stategatePresence) redis.defineCommand('stategatePresence', { numberOfKeys: 1, lua: CHANGE });
    const beat = () => {
      this.redis.set(this.nodeKey(options.nodeId), '1', 'PX', HEARTBEAT_TTL_MS).catch(() => {});
    };
    beat();
    this.heartbeat = setInterval(beat, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  join(key: string, subject: string): Promise<number> {
    return this.redis.stategatePresence!(this.hashKey(key), this.options.nodeId, subject, 1, PRESENCE_TTL_MS);
  }

  leave(key: string, subject: string): Promise<number> {
    return this.redis.stategatePresence!(this.hashKey(key), this.options.nodeId, subject, -1, PRESENCE_TTL_MS);
  }

  async members(key: string): Promise<Presence['members']> {
    const fields = await this.redis.hgetall(this.hashKey(key));
    const entries = Object.entries(fields).map(([field, count]) => {
      const sep = field.indexOf('|');
      return { node: field.slice(0, sep), subject: field.slice(sep + 1), count: Number(count) };
    });
    const nodes = [...new Set(entries.map((entry) => entry.node))];
    const alive = new Set<string>();
    await Promise.all(
      nodes.map(async (node) => {
        if (node === this.options.nodeId || (await this.redis.exists(this.nodeKey(node)))) alive.add(node);
      }),
    );
    const bySubject = new Map<string, number>();
    for (const entry of entries) {
      if (alive.has(entry.node) && entry.count > 0) bySubject.set(entry.subject, (bySubject.get(entry.subject) ?? 0) + entry.count);
    }
    return sortMembers([...bySubject].map(([subject, connections]) => ({ subject, connections })));
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.redis.del(this.nodeKey(this.options.nodeId)).catch(() => {});
  }

  /** One slot per topic (hash tag), as the script needs. */
  private hashKey(key: string): string {
    return `${this.options.prefix}presence:{${key}}`;
  }

  private nodeKey(node: string): string {
    return `${this.options.prefix}node:${node}`;
  }
}
