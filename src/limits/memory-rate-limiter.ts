import { decide, endOfUtcDay, MINUTE_MS, type RateDecision, type RateLimiter, type RateQuota } from './rate-limiter.js';

interface Counters {
  minuteEndsAt: number;
  minuteCount: number;
  dayEndsAt: number;
  dayCount: number;
}

/** In-process counters, for a single node. Stale entries are swept so idle keys cost nothing. */
export class MemoryRateLimiter implements RateLimiter {
  readonly kind = 'memory';
  private readonly counters = new Map<string, Counters>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), MINUTE_MS);
    this.sweeper.unref();
  }

  async consume(subject: string, quota: RateQuota): Promise<RateDecision> {
    return this.consumeNow(subject, quota);
  }

  /** The synchronous core, also used by the benchmark to time the limiter alone. */
  consumeNow(subject: string, quota: RateQuota): RateDecision {
    const now = this.now();
    let entry = this.counters.get(subject);
    if (!entry) {
      entry = { minuteEndsAt: now + MINUTE_MS, minuteCount: 0, dayEndsAt: endOfUtcDay(now), dayCount: 0 };
      this.counters.set(subject, entry);
    }
    if (now >= entry.minuteEndsAt) {
      entry.minuteEndsAt = now + MINUTE_MS;
      entry.minuteCount = 0;
    }
    if (now >= entry.dayEndsAt) {
      entry.dayEndsAt = endOfUtcDay(now);
      entry.dayCount = 0;
    }
    const refusedBy = entry.minuteCount >= quota.perMinute ? 'minute' : quota.perDay !== null && entry.dayCount >= quota.perDay ? 'day' : null;
    if (refusedBy === null) {
      entry.minuteCount++;
      entry.dayCount++;
    }
    return decide(
      quota,
      {
        allowed: refusedBy === null,
        refusedBy,
        minuteCount: entry.minuteCount,
        minuteResetMs: entry.minuteEndsAt,
        dayCount: entry.dayCount,
        dayResetMs: entry.dayEndsAt,
      },
      now,
    );
  }

  /** Drops keys whose both windows have ended: they would start afresh anyway. */
  sweep(): void {
    const now = this.now();
    for (const [subject, entry] of this.counters) {
      if (now >= entry.minuteEndsAt && now >= entry.dayEndsAt) this.counters.delete(subject);
    }
  }

  get size(): number {
    return this.counters.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
