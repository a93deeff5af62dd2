import type { Principal } from '../auth/keys.js';
import type { RateQuota } from './rate-limiter.js';

/**
 * Plan quotas from both documents: StateSet's Starter/Growth/Enterprise and StateBase's
 * Free/Pro/Enterprise name the same tiers. Enterprise is configurable per account (up to
 * 10,000 per minute, enforced by the column's check).
 */
export const PLAN_QUOTAS: Record<string, RateQuota> = {
  starter: { perMinute: 100, perDay: 10_000 },
  growth: { perMinute: 1_000, perDay: 100_000 },
  enterprise: { perMinute: 10_000, perDay: null },
};

const ALIASES: Record<string, string> = { free: 'starter', pro: 'growth' };

export const MAX_PER_MINUTE = 10_000;

/** An unknown plan gets the smallest quota, never none. */
export function quotaFor(principal: Pick<Principal, 'plan' | 'limits'>): RateQuota {
  const plan = ALIASES[principal.plan] ?? principal.plan;
  const base = PLAN_QUOTAS[plan] ?? PLAN_QUOTAS.starter!;
  const perMinute = principal.limits?.perMinute;
  const perDay = principal.limits?.perDay;
  return {
    perMinute: Math.min(perMinute ?? base.perMinute, MAX_PER_MINUTE),
    perDay: perDay ?? base.perDay,
  };
}
