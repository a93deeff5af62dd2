/**
 * lru-cache options for entries that expire after `ttlMs`. Its default `ttlResolution` of 1 ms
 * reads the clock and arms a timer at most once a millisecond, which on a hot cache (every
 * WebSocket call reads one) is a timer a millisecond; checking the clock every 1% of the TTL
 * (at most every 100 ms) keeps an entry at most that much past its TTL and costs nothing.
 */
export function expiringEntries(ttlMs: number): { ttl: number; ttlResolution: number } {
  return { ttl: ttlMs, ttlResolution: Math.max(1, Math.min(100, Math.floor(ttlMs / 100))) };
}
