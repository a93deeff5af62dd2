import { LRUCache } from 'lru-cache';
import { freezeDeep } from '../../protocol/index.js';
import { expiringEntries } from './ttl.js';

/**
 * A read-through cache for a hot, rarely written resource (agents: every widget and agent call
 * reads one). On the embedded store a read costs the event loop a few hundred microseconds of
 * PGlite; from here it costs nothing. A write evicts the entry on this node at once and, through
 * `broadcast`, on every other node; the TTL bounds staleness if a broadcast is ever lost.
 */
export class ReadCache<T extends object> {
  private readonly entries: LRUCache<string, T>;
  /** Bumped by every eviction: a load that raced a write must not store what it read. */
  private readonly generations: LRUCache<string, number>;

  constructor(
    options: { max: number; ttlMs: number },
    private readonly broadcast: (key: string) => void,
  ) {
    this.entries = new LRUCache({ max: options.max, ...expiringEntries(options.ttlMs) });
    this.generations = new LRUCache({ max: options.max });
  }

  static key(accountId: string, id: string): string {
    return `${accountId}/${id}`;
  }

  /** The cached value, synchronously; undefined when `read` has to load it. */
  peek(accountId: string, id: string): T | undefined {
    return this.entries.get(ReadCache.key(accountId, id));
  }

  async read(accountId: string, id: string, load: () => Promise<T | null>): Promise<T | null> {
    const key = ReadCache.key(accountId, id);
    const cached = this.entries.get(key);
    if (cached) return cached;
    const generation = this.generations.get(key) ?? 0;
    const value = await load();
    // Shared by every reader, so frozen: none can change it for the others, and its JSON is made once.
    if (value && (this.generations.get(key) ?? 0) === generation) this.entries.set(key, freezeDeep(value));
    return value;
  }

  /** After a write: forget here and everywhere. */
  invalidate(accountId: string, id: string): void {
    const key = ReadCache.key(accountId, id);
    this.evict(key);
    this.broadcast(key);
  }

  /** Another node wrote: forget here only. */
  evict(key: string): void {
    this.entries.delete(key);
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
  }
}
