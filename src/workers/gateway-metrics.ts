import { AggregatorRegistry } from 'prom-client';
import type { MetricsSnapshot } from './messages.js';

/**
 * The whole gateway's metrics, kept by the supervisor: the latest snapshot of every worker's
 * registry, merged with prom-client's `AggregatorRegistry.aggregate` (each metric by its own
 * `aggregator`: `sum` for counters, histograms and most gauges).
 *
 * Summing counters across processes has one trap: when a worker is replaced, its counts vanish
 * from the sum, the total goes down, and Prometheus reads that as a counter reset, so `rate()`
 * then counts the survivors' whole totals as new. So the counters and histograms of a worker
 * that is gone are kept (`retire`) and added to every later total: the gateway's counters only
 * ever grow. (What a worker counted after the last scrape before it died is lost.)
 */

/**
 * Gauges that read one shared thing (a count in PostgreSQL) the same from every worker: summing
 * them would multiply it by the number of workers.
 */
const SHARED_READINGS: Readonly<Record<string, 'max'>> = { stategate_webhook_queue_depth: 'max' };

/** Metric types whose values only grow, and so outlive the worker that counted them. */
const CUMULATIVE_TYPES = new Set(['counter', 'histogram']);

export class GatewayMetrics {
  /** Worker slot -> the last snapshot its current worker sent. */
  private readonly latest = new Map<number, MetricsSnapshot>();
  /** Counters and histograms of workers that are gone, summed. */
  private retired: MetricsSnapshot = [];
  /** Retirements are merged one after another (a merge is asynchronous). */
  private retiring: Promise<void> = Promise.resolve();

  /** A worker's fresh snapshot (it replaces the previous one of the same slot). */
  record(slot: number, snapshot: MetricsSnapshot): void {
    this.latest.set(slot, snapshot);
  }

  /** The worker of `slot` is gone: what it counted stays in the totals. */
  retire(slot: number): void {
    const last = this.latest.get(slot);
    this.latest.delete(slot);
    if (!last) return;
    const cumulative = last.filter((metric) => CUMULATIVE_TYPES.has(metric.type) && (metric.aggregator ?? 'sum') === 'sum');
    this.retiring = this.retiring.then(async () => {
      this.retired = (await merged([this.retired, cumulative]).getMetricsAsJSON()) as unknown as MetricsSnapshot;
    });
  }

  /** Prometheus text of every worker's latest snapshot, the retired counts and `extra` (the supervisor's own). */
  async text(extra: MetricsSnapshot = []): Promise<string> {
    await this.retiring;
    return merged([this.retired, ...this.latest.values(), extra]).metrics();
  }
}

function merged(snapshots: MetricsSnapshot[]) {
  const adjusted = snapshots.map((snapshot) =>
    snapshot.map((metric) => (SHARED_READINGS[metric.name] ? { ...metric, aggregator: SHARED_READINGS[metric.name] } : metric)),
  );
  return AggregatorRegistry.aggregate(adjusted);
}
