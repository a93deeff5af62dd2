import { randomBytes } from 'node:crypto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { WebhookSettings } from '../config.js';
import { newId } from '../kernel/ids.js';
import type { Logger } from '../logger.js';
import type { ClaimedDelivery, Verdict, WebhookDeliveryRepo } from '../store/repos/webhook-deliveries.js';
import { prepareDelivery } from './payload.js';
import { classify, nextDelay } from './schedule.js';
import { postWebhook, SendAborted } from './sender.js';
import { signedHeaders } from './signing.js';

/** Webhooks are made from the events of an account's `account` topic, `<account>/account`. */
const ACCOUNT_TOPIC_SUFFIX = '/account';

/** Prometheus metrics of webhook delivery. */
export class WebhookMetrics {
  readonly attempts: Counter<'outcome'>;
  readonly latency: Histogram;
  constructor(registry: Registry, pending: () => Promise<number>) {
    this.attempts = new Counter({
      name: 'stategate_webhook_attempts_total',
      help: 'Webhook delivery attempts by outcome (succeeded, retry, failed, gone)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'stategate_webhook_attempt_seconds',
      help: 'Time from sending a webhook to its answer (or time-out)',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    new Gauge({
      name: 'stategate_webhook_queue_depth',
      help: 'Webhook deliveries still owed (pending, all endpoints)',
      registers: [registry],
      // One count in PostgreSQL, read alike by every worker: merged across workers by max, not sum.
      aggregator: 'max',
      async collect() {
        this.set(await pending().catch(() => 0));
      },
    });
  }
}

/**
 * Rounds run on a poke (a local commit, a redelivery) at most this often: under a stream of
 * writes, a round every few milliseconds would only keep the database busy finding nothing new.
 */
const POKED_ROUND_GAP_MS = 50;

/**
 * Delivers webhooks from the event log. Each round it turns new account events into deliveries
 * (per endpoint, under `skip locked`), then claims due deliveries up to its free slots and posts
 * them. Claims are leases: a node that dies mid-delivery leaves its lease to expire, and any node
 * then tries again (at least once; receivers de-duplicate by `webhook-id`). Any number of nodes
 * can run this on one database.
 *
 * A round runs when this node commits account events (`eventsCommitted`), when it is poked, when
 * a delivery frees a slot, and at every poll otherwise: events committed by other nodes arrive by
 * the poll.
 */
export class WebhookWorker {
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | null = null;
  /** Poked since the current round began: the next round follows it, whenever it ends. */
  private poked = false;
  private readonly abort = new AbortController();
  private readonly metrics: WebhookMetrics;
  private readonly leaseMs: number;

  constructor(
    private readonly repo: WebhookDeliveryRepo,
    private readonly settings: WebhookSettings,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.metrics = new WebhookMetrics(registry, () => repo.pendingCount());
    // Longer than any attempt can take, so a lease expires only when its holder is gone.
    this.leaseMs = settings.timeoutMs * 2 + 1000;
  }

  start(): void {
    if (!this.settings.enabled || this.loop) return;
    this.loop = this.run();
  }

  /**
   * A round now instead of at the next poll (a redelivery is due, or events committed). Pokes
   * coalesce: one during a round makes one more round after it, then rounds are spaced by
   * POKED_ROUND_GAP_MS while pokes keep coming.
   */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /** This node committed these events: a round now if any may make a webhook (its account's topic). */
  eventsCommitted(events: readonly { topic: string }[]): void {
    if (events.some((event) => event.topic.endsWith(ACCOUNT_TOPIC_SUFFIX))) this.poke();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.inFlight]);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // A poke from now on may be for events this round does not see: it makes another round.
      this.poked = false;
      const started = Date.now();
      let busy: boolean;
      try {
        busy = (await this.repo.materialize(prepareDelivery, () => newId('webhookDelivery'))) > 0;
        const free = this.settings.concurrency - this.inFlight.size;
        if (free > 0) {
          const claimed = await this.repo.claim(free, randomBytes(8).toString('hex'), this.leaseMs);
          for (const delivery of claimed) this.track(this.deliver(delivery));
          busy ||= claimed.length > 0;
        }
      } catch (error) {
        if (this.stopped) break;
        this.log.warn({ err: error }, 'webhook round failed; retrying at the next poll');
        busy = false;
      }
      if (this.stopped) break;
      // With free slots and work found, go again at once; otherwise wait for a slot, a poke or the poll.
      if (busy && this.inFlight.size < this.settings.concurrency) continue;
      if (!this.poked) await this.sleep(this.settings.pollMs);
      const gap = started + POKED_ROUND_GAP_MS - Date.now();
      if (this.poked && !this.stopped && gap > 0) await new Promise((resolve) => setTimeout(resolve, gap));
    }
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => {
      this.inFlight.delete(work);
      this.wake?.();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const headers = signedHeaders({ id: delivery.eventId, type: delivery.eventType, body: delivery.body, secrets: delivery.secrets });
    let result;
    try {
      result = await postWebhook(delivery.url, delivery.body, headers, {
        timeoutMs: this.settings.timeoutMs,
        maxResponseBytes: this.settings.maxResponseBytes,
        allowPrivate: this.settings.allowPrivate,
        signal: this.abort.signal,
      });
    } catch (error) {
      // Stopping: not recorded; the lease expires and a node tries again.
      if (error instanceof SendAborted) return;
      throw error;
    }
    const outcome = classify(result.statusCode);
    let verdict: Verdict;
    if (outcome === 'succeeded') verdict = { kind: 'succeeded' };
    else if (outcome === 'gone') verdict = { kind: 'gone' };
    else {
      const delay = nextDelay(this.settings.retry, delivery.attempt, delivery.scheduleStartedAt);
      verdict = delay === null ? { kind: 'failed' } : { kind: 'retry', delayMs: delay };
    }
    this.metrics.attempts.inc({ outcome: verdict.kind });
    this.metrics.latency.observe(result.latencyMs / 1000);
    try {
      await this.repo.record(
        delivery,
        {
          id: newId('webhookAttempt'),
          endpointId: delivery.endpointId,
          accountId: delivery.accountId,
          eventId: delivery.eventId,
          eventType: delivery.eventType,
          attempt: delivery.attempt,
          statusCode: result.statusCode,
          succeeded: verdict.kind === 'succeeded',
          error: result.error,
          latencyMs: result.latencyMs,
          responseBody: result.responseBody,
        },
        verdict,
        this.settings.disableAfterMs,
      );
    } catch (error) {
      // The lease expires and the delivery is tried again: at least once, never lost.
      this.log.warn({ err: error, delivery_id: delivery.id, webhook_id: delivery.endpointId }, 'webhook attempt not recorded');
    }
  }
}
