import { describe, expect, it } from 'vitest';
import { ReadCache } from '../src/cache/read-cache.js';
import { expiringEntries } from '../src/cache/ttl.js';

describe('ReadCache', () => {
  it('serves repeated reads from memory and broadcasts evictions', async () => {
    const broadcasts: string[] = [];
    const cache = new ReadCache<{ v: number }>({ max: 10, ttlMs: 60_000 }, (key) => broadcasts.push(key));
    let loads = 0;
    const load = async () => ({ v: ++loads });
    expect(await cache.read('acct', 'a1', load)).toEqual({ v: 1 });
    expect(await cache.read('acct', 'a1', load)).toEqual({ v: 1 });
    cache.invalidate('acct', 'a1');
    expect(broadcasts).toEqual(['acct/a1']);
    expect(await cache.read('acct', 'a1', load)).toEqual({ v: 2 });
    expect(await cache.read('other', 'a1', load)).toEqual({ v: 3 });
  });

  it('does not keep a value read before a write that finished during the read', async () => {
    const cache = new ReadCache<{ name: string }>({ max: 10, ttlMs: 60_000 }, () => {});
    let release!: () => void;
    const slowStaleRead = cache.read('acct', 'a1', () => new Promise((resolve) => (release = () => resolve({ name: 'old' }))));
    cache.evict(ReadCache.key('acct', 'a1')); // the write lands while the read is in flight
    release();
    expect(await slowStaleRead).toEqual({ name: 'old' });
    expect(await cache.read('acct', 'a1', async () => ({ name: 'new' }))).toEqual({ name: 'new' });
  });

  it('does not cache misses', async () => {
    const cache = new ReadCache<{ v: number }>({ max: 10, ttlMs: 60_000 }, () => {});
    expect(await cache.read('acct', 'x', async () => null)).toBeNull();
    expect(await cache.read('acct', 'x', async () => ({ v: 1 }))).toEqual({ v: 1 });
  });

  it('expires an entry after its TTL, checking the clock at most every 1% of it', async () => {
    expect(expiringEntries(60_000)).toEqual({ ttl: 60_000, ttlResolution: 100 });
    expect(expiringEntries(5_000)).toEqual({ ttl: 5_000, ttlResolution: 50 });
    expect(expiringEntries(50)).toEqual({ ttl: 50, ttlResolution: 1 });
    const cache = new ReadCache<{ v: number }>({ max: 10, ttlMs: 200 }, () => {});
    let loads = 0;
    const load = async () => ({ v: ++loads });
    await cache.read('acct', 'a1', load);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cache.peek('acct', 'a1')).toEqual({ v: 1 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(cache.peek('acct', 'a1')).toBeUndefined();
    expect(await cache.read('acct', 'a1', load)).toEqual({ v: 2 });
  });
});
