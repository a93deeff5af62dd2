import { nowUs, sleep } from '../../lib/clock.js';
import { frameType, integerField } from '../../lib/fields.js';
import { encodeHistogram, newHistogram, record } from '../../lib/histogram.js';
import { openLink, openMany, type Link } from '../link.js';
import type { Job, JobResult, JobSpec, RelaySender } from '../protocol.js';
import { SubscriberLedger } from './ledger.js';

/**
 * Fan-out: subscribers (this worker's share) each follow one topic; publishers publish
 * `messages.create` calls carrying `metadata.sent_at` (monotonic us) either at a fixed rate or, with
 * rate 0, as fast as the slowest subscriber allows (credit relayed by the coordinator: a topic
 * gets no more than `lagWindow` events ahead of its slowest subscriber). Every subscriber checks
 * that it got every event of its topic once, in `seq` order.
 */
export interface FanoutParams {
  topics: string[];
  conversationIds: string[];
  /** Topic index of each of this worker's subscribers. */
  subscriberTopics: number[];
  /** Topic indexes of each of this worker's publishers. */
  publisherTopics: number[][];
  /** Publishes per second per publisher; 0 = open throttle. */
  ratePerPublisher: number;
  lagWindow: number;
  content: string;
}

export interface FanoutRunOutput {
  /** Successful publishes per topic index (this worker's publishers). */
  published: Record<number, number>;
  publishErrors: number;
}

interface Publisher {
  link: Link;
  topics: number[];
  next: number;
  inFlight: Map<number, number>;
}

const MAX_IN_FLIGHT_PER_PUBLISHER = 5000;

export function fanoutJob(spec: JobSpec<FanoutParams>, relay: RelaySender): Job {
  const { params } = spec;
  const delivery = newHistogram();
  const publishLatency = newHistogram();
  const subscribers: SubscriberLedger[] = [];
  const publishers: Publisher[] = [];
  const published: Record<number, number> = {};
  const sentPerTopic: Record<number, number> = {};
  let credit: Record<number, number> = {};
  let publishErrors = 0;
  let skipped = 0;
  let nextId = 1;
  let firstError: string | undefined;
  let setupFailures = 0;
  const pendingSince = new Map<number, number>();

  const publish = (publisher: Publisher, topic: number) => {
    const id = nextId++;
    const sentAt = nowUs();
    publisher.inFlight.set(id, topic);
    sentPerTopic[topic] = (sentPerTopic[topic] ?? 0) + 1;
    publisher.link.send(
      `{"type":"call","id":${id},"method":"messages.create","params":{"conversation_id":"${params.conversationIds[topic]}","role":"user","content":"${params.content}","metadata":{"sent_at":${sentAt}}}}`,
    );
    pendingSince.set(id, sentAt);
  };

  /** With open throttle, a topic may run at most lagWindow events ahead of its slowest subscriber. */
  const mayPublish = (topic: number) => params.ratePerPublisher > 0 || (sentPerTopic[topic] ?? 0) - (credit[topic] ?? 0) < params.lagWindow;

  const publishDue = (publisher: Publisher, count: number) => {
    for (let sent = 0; sent < count; sent++) {
      if (publisher.inFlight.size >= MAX_IN_FLIGHT_PER_PUBLISHER) {
        skipped += count - sent;
        return;
      }
      let topic: number | undefined;
      for (let tries = 0; tries < publisher.topics.length; tries++) {
        const candidate = publisher.topics[publisher.next++ % publisher.topics.length]!;
        if (mayPublish(candidate)) {
          topic = candidate;
          break;
        }
      }
      if (topic === undefined) return;
      publish(publisher, topic);
    }
  };

  return {
    async setup() {
      const subs = await openMany(params.subscriberTopics.length, async (index) => {
        const topic = params.subscriberTopics[index]!;
        const ledger = new SubscriberLedger(topic);
        const link = await openLink(spec.target, index, {
          onFrame(frame) {
            if (frameType(frame) === 'event') {
              ledger.onEvent(integerField(frame, 'seq'));
              const sentAt = integerField(frame, 'sent_at');
              if (sentAt > 0) record(delivery, nowUs() - sentAt);
            } else ledger.onSubscribed(frame);
          },
          onClose: () => (ledger.closed = true),
        });
        ledger.link = link;
        link.send(`{"type":"subscribe","id":1,"topic":"${params.topics[topic]}"}`);
        subscribers.push(ledger);
        return link;
      });
      setupFailures += subs.failures;
      firstError ??= subs.firstError;
      const deadline = Date.now() + 30_000;
      while (subscribers.some((ledger) => ledger.startSeq < 0 && !ledger.closed) && Date.now() < deadline) await sleep(20);
      const unconfirmed = subscribers.filter((ledger) => ledger.startSeq < 0);
      if (unconfirmed.length > 0) throw new Error(`${unconfirmed.length} subscriptions were not confirmed: ${unconfirmed[0]!.refusal ?? 'no answer'}`);

      const pubs = await openMany(params.publisherTopics.length, async (index) => {
        const publisher: Publisher = { link: undefined as unknown as Link, topics: params.publisherTopics[index]!, next: 0, inFlight: new Map() };
        publisher.link = await openLink(spec.target, 0, {
          onFrame(frame) {
            const id = integerField(frame, 'id');
            const topic = publisher.inFlight.get(id);
            if (topic === undefined) return;
            publisher.inFlight.delete(id);
            record(publishLatency, nowUs() - (pendingSince.get(id) ?? nowUs()));
            pendingSince.delete(id);
            if (frameType(frame) === 'result') published[topic] = (published[topic] ?? 0) + 1;
            else {
              publishErrors++;
              firstError ??= frame.toString('utf8', 0, 300);
            }
          },
        });
        publishers.push(publisher);
        return publisher.link;
      });
      setupFailures += pubs.failures;
      firstError ??= pubs.firstError;
      if (pubs.failures > 0) throw new Error(`publishers could not connect: ${pubs.firstError}`);
    },

    async run(durationMs): Promise<FanoutRunOutput> {
      const started = Date.now();
      const creditTimer = setInterval(() => relay(deliveredByTopic(subscribers)), 25);
      const sentBy = new Map<Publisher, number>();
      while (Date.now() - started < durationMs) {
        const elapsed = (Date.now() - started) / 1000;
        for (const publisher of publishers) {
          if (params.ratePerPublisher > 0) {
            const due = Math.floor(elapsed * params.ratePerPublisher) - (sentBy.get(publisher) ?? 0);
            if (due > 0) {
              publishDue(publisher, due);
              sentBy.set(publisher, (sentBy.get(publisher) ?? 0) + due);
            }
          } else publishDue(publisher, params.lagWindow);
        }
        await sleep(params.ratePerPublisher > 0 ? 5 : 1);
      }
      // Wait for the answers of publishes still in flight: only answered publishes are expected.
      const deadline = Date.now() + 10_000;
      while (publishers.some((publisher) => publisher.inFlight.size > 0) && Date.now() < deadline) await sleep(10);
      clearInterval(creditTimer);
      return { published: { ...published }, publishErrors };
    },

    async finish(input): Promise<JobResult> {
      const expected = input as Record<number, number>;
      // Drain: every subscriber should reach its topic's published count.
      const deadline = Date.now() + 10_000;
      while (subscribers.some((ledger) => !ledger.closed && ledger.received < (expected[ledger.topic] ?? 0)) && Date.now() < deadline) await sleep(20);
      const counters: Record<string, number> = {
        subscribers: subscribers.length,
        expected_events: 0,
        delivered: 0,
        gaps: 0,
        duplicates: 0,
        incomplete_subscribers: 0,
        closed_subscribers: 0,
        setup_failures: setupFailures,
        publish_errors: publishErrors,
        skipped_publishes: skipped,
      };
      for (const ledger of subscribers) {
        const want = expected[ledger.topic] ?? 0;
        counters.expected_events! += want;
        counters.delivered! += ledger.received;
        counters.gaps! += ledger.gaps;
        counters.duplicates! += ledger.duplicates;
        if (ledger.received !== want || ledger.gaps > 0 || ledger.duplicates > 0) counters.incomplete_subscribers!++;
        if (ledger.closed) counters.closed_subscribers!++;
      }
      return {
        counters,
        histograms: { delivery: encodeHistogram(delivery), publish: encodeHistogram(publishLatency) },
        notes: firstError ? [firstError] : [],
      };
    },

    progress: () => ({
      delivered: subscribers.reduce((sum, ledger) => sum + ledger.received, 0),
      published: Object.values(published).reduce((a, b) => a + b, 0),
    }),
    onRelay(data) {
      credit = data as Record<number, number>;
    },
    close() {
      for (const ledger of subscribers) ledger.link?.close();
      for (const publisher of publishers) publisher.link.close();
    },
  };
}

/** For flow control: per topic, the fewest events any of this worker's subscribers has received. */
function deliveredByTopic(subscribers: SubscriberLedger[]): Record<number, number> {
  const least: Record<number, number> = {};
  for (const ledger of subscribers) {
    if (ledger.closed) continue;
    const current = least[ledger.topic];
    if (current === undefined || ledger.received < current) least[ledger.topic] = ledger.received;
  }
  return least;
}
