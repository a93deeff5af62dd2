import type { RetryPolicy } from '../config.js';

/**
 * When to try again: exponential backoff from `baseMs`, capped at `maxMs`, with full jitter on
 * the upper half (so retries of many deliveries spread out), until `windowMs` after the
 * schedule started (about three days by default); then the delivery has failed.
 *
 * The delay before the attempt after `attempt` (1 = the first try failed), or null: give up.
 */
export function nextDelay(policy: RetryPolicy, attempt: number, startedAt: Date, now = Date.now(), random = Math.random): number | null {
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30));
  const delay = Math.round(exponential / 2 + random() * (exponential / 2));
  if (now + delay - startedAt.getTime() > policy.windowMs) return null;
  return delay;
}

/** Is this status a success, a 410 (stop calling), or worth another try? */
export function classify(statusCode: number | null): 'succeeded' | 'gone' | 'retry' {
  if (statusCode !== null && statusCode >= 200 && statusCode < 300) return 'succeeded';
  if (statusCode === 410) return 'gone';
  return 'retry';
}
