import type { RateDecision, RateLimiter, RateQuota } from './rate-limiter.js';

/**
 * Shared counters while the shared store answers, this node's own counters while it does not:
 * a Redis outage must not turn every read into an error, and each node still enforces the plan.
 */
export class FallbackRateLimiter implements RateLimiter {
  readonly kind = 'redis';
  private failing = false;

  constructor(
    private readonly primary: RateLimiter,
    private readonly fallback: RateLimiter,
    private readonly onChange: (failing: boolean, error?: unknown) => void = () => {},
  ) {}

  async consume(subject: string, quota: RateQuota): Promise<RateDecision> {
    try {
      const decision = await this.primary.consume(subject, quota);
      if (this.failing) {
        this.failing = false;
        this.onChange(false);
      }
      return decision;
    } catch (error) {
      if (!this.failing) {
        this.failing = true;
        this.onChange(true, error);
      }
      return this.fallback.consume(subject, quota);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}
