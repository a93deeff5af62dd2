import { LRUCache } from 'lru-cache';
import { expiringEntries } from '../cache/ttl.js';
import type { AccountRepo } from '../store/repos/accounts.js';
import { hashApiKey, type Principal } from './keys.js';

/**
 * Resolves an API key to its principal. Hot keys are answered from memory (a store round trip
 * per request would block PGlite's single connection); unknown keys are remembered briefly so a
 * flood of bad keys cannot reach the store either. Revocation evicts at once on this node and,
 * through `evict`, on every node the bus reaches; the TTL bounds staleness in any case.
 */
export class KeyResolver {
  private readonly cache: LRUCache<string, Principal>;
  private readonly unknown: LRUCache<string, true>;
  /** Key ids revoked on this node: checked on every call, so open WebSocket connections stop too. */
  private readonly revokedIds = new LRUCache<string, true>({ max: 100_000 });

  constructor(
    private readonly accounts: AccountRepo,
    options: { ttlMs: number; maxEntries?: number },
  ) {
    const max = options.maxEntries ?? 100_000;
    this.cache = new LRUCache({ max, ...(options.ttlMs > 0 ? expiringEntries(options.ttlMs) : {}) });
    this.unknown = new LRUCache({ max, ...expiringEntries(Math.min(options.ttlMs || 5_000, 5_000)) });
  }

  /** Null when the key is unknown or revoked. */
  async resolve(key: string): Promise<Principal | null> {
    const hash = hashApiKey(key);
    const cached = this.cache.get(hash);
    if (cached) return cached;
    if (this.unknown.has(hash)) return null;
    const record = await this.accounts.findKeyByHash(hash);
    if (!record || record.revoked) {
      this.unknown.set(hash, true);
      return null;
    }
    const principal: Principal = {
      accountId: record.account_id,
      keyId: record.id,
      plan: record.plan,
      scopes: record.scopes,
      subject: record.id,
      limits: { perMinute: record.rate_limit_per_minute, perDay: record.rate_limit_per_day },
    };
    this.cache.set(hash, principal);
    return principal;
  }

  /** A key was revoked: refuse it from now on, even to connections that authenticated earlier. */
  revoke(keyId: string, hash: string): void {
    this.revokedIds.set(keyId, true);
    this.evict(hash);
  }

  isRevoked(keyId: string): boolean {
    return this.revokedIds.has(keyId);
  }

  /** Forgets a key hash, whether cached as valid or as unknown. */
  evict(hash: string): void {
    this.cache.delete(hash);
    this.unknown.delete(hash);
  }
}
