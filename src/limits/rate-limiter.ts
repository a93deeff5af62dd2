/**
 * Rate limiting per API key: a fixed one-minute window anchored at the key's first request in it,
 * and a UTC-day quota, checked and counted together in one atomic step. Refused requests are not
 * counted. See docs/api.md ("Rate limits") for why windows rather than a refilling bucket.
 */
export interface RateQuota {
  perMinute: number;
  /** Null: no daily cap. */
  perDay: number | null;
}

export type RateWindow = 'minute' | 'day';

export interface RateDecision {
  allowed: boolean;
  /** The window these figures describe: the one that refused, else the one closer to its limit. */
  window: RateWindow;
  limit: number;
  remaining: number;
  /** Unix time (seconds) at which the window described resets. */
  resetAt: number;
  /** Whole seconds to wait before retrying; 0 when allowed. */
  retryAfter: number;
}

export interface RateLimiter {
  readonly kind: 'memory' | 'redis';
  /** Counts one request for `subject` unless a window is full. */
  consume(subject: string, quota: RateQuota): Promise<RateDecision>;
  close(): Promise<void>;
}

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** The raw counters a backend reports; turned into a decision the same way for every backend. */
export interface WindowCounts {
  allowed: boolean;
  /** Which window refused, when one did. */
  refusedBy: RateWindow | null;
  minuteCount: number;
  minuteResetMs: number;
  dayCount: number;
  dayResetMs: number;
}

export function decide(quota: RateQuota, counts: WindowCounts, now: number): RateDecision {
  const minute = {
    window: 'minute' as const,
    limit: quota.perMinute,
    remaining: Math.max(0, quota.perMinute - counts.minuteCount),
    resetMs: counts.minuteResetMs,
  };
  const day =
    quota.perDay === null
      ? null
      : { window: 'day' as const, limit: quota.perDay, remaining: Math.max(0, quota.perDay - counts.dayCount), resetMs: counts.dayResetMs };
  const shown = counts.refusedBy === 'day' || (counts.refusedBy === null && day && day.remaining < minute.remaining) ? day! : minute;
  const resetAt = Math.ceil(shown.resetMs / 1000);
  return {
    allowed: counts.allowed,
    window: shown.window,
    limit: shown.limit,
    remaining: shown.remaining,
    resetAt,
    retryAfter: counts.allowed ? 0 : Math.max(1, Math.ceil((shown.resetMs - now) / 1000)),
  };
}

/** Milliseconds since the epoch at which the UTC day containing `now` ends. */
export function endOfUtcDay(now: number): number {
  return (Math.floor(now / DAY_MS) + 1) * DAY_MS;
}
