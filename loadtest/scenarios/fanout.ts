import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures, TargetCheck } from '../report/types.js';
import type { Settings } from '../settings.js';
import { seedConversations } from '../target/seed.js';
import type { FanoutParams, FanoutRunOutput } from '../worker/jobs/fanout.js';
import { cpuPer, measure } from './measure.js';
import { startReport, type Scenario } from './scenario.js';
import { baselineNames, startBaseline, startGatewaySubject, withSubject, type Subject } from './subjects.js';

/**
 * Fan-out: M publishers, N subscribers spread over T topics, at fixed publish rates or open
 * throttle. The gateway publishes `messages.create` (durable, then fanned out); the baselines
 * publish the same call as a topic publish. Every subscriber checks it got every event in order.
 */
const variantName = (rate: number | 'open') => (rate === 'open' ? 'open' : `${rate}/s`);

/** Credit for open throttle: per topic, the fewest events any subscriber anywhere has received. */
function creditRelay() {
  const latest = new Map<number, Record<number, number>>();
  return (fromWorker: number, data: unknown) => {
    latest.set(fromWorker, data as Record<number, number>);
    const least: Record<number, number> = {};
    for (const perTopic of latest.values()) {
      for (const [topic, count] of Object.entries(perTopic)) {
        const index = Number(topic);
        if (least[index] === undefined || count < least[index]) least[index] = count;
      }
    }
    return least;
  };
}

export async function runFanout(
  subject: Subject,
  settings: Settings,
  log: (line: string) => void,
  rate: number | 'open',
  conversationIds: string[],
): Promise<RunFigures> {
  const { workers, subscribers, publishers } = settings;
  const topics = conversationIds.map((id) => `conversation:${id}`);
  const topicCount = topics.length;
  const publisherTopics = Array.from({ length: publishers }, (_, p) =>
    publishers >= topicCount ? [p % topicCount] : topics.map((_, t) => t).filter((t) => t % publishers === p),
  );
  // Publishers get a process of their own (the last worker): sharing one with subscribers that
  // receive 100,000s of events/s would delay their ticks and lower the publish rate.
  const measured = await measure({
    label: `fanout ${subject.name} ${variantName(rate)}`,
    subject,
    settings,
    kind: 'fanout',
    cpuUntil: 'finished',
    log,
    workers: workers + 1,
    onRelay: creditRelay(),
    paramsFor: (index): FanoutParams => ({
      topics,
      conversationIds,
      subscriberTopics:
        index === workers
          ? []
          : Array.from({ length: subscribers }, (_, s) => s)
              .filter((s) => s % workers === index)
              .map((s) => s % topicCount),
      publisherTopics: index === workers ? publisherTopics : [],
      ratePerPublisher: rate === 'open' ? 0 : rate / publishers,
      lagWindow: settings.lagWindow,
      content: 'Where is my order? It was due yesterday.',
    }),
    finishInput: (outputs) => {
      const expected: Record<number, number> = {};
      for (const output of outputs as FanoutRunOutput[])
        for (const [topic, count] of Object.entries(output.published)) expected[Number(topic)] = (expected[Number(topic)] ?? 0) + count;
      return expected;
    },
  });
  const published = (measured.outputs as FanoutRunOutput[]).reduce((sum, output) => sum + Object.values(output.published).reduce((a, b) => a + b, 0), 0);
  const { counters } = measured;
  const delivered = counters.delivered ?? 0;
  const complete =
    delivered === (counters.expected_events ?? -1) &&
    (counters.incomplete_subscribers ?? 1) === 0 &&
    (counters.gaps ?? 1) === 0 &&
    (counters.duplicates ?? 1) === 0;
  return {
    subject: subject.name,
    variant: variantName(rate),
    figures: {
      publishes_per_s: Math.round(published / measured.durationS),
      delivered_per_s: Math.round(delivered / measured.durationS),
      server_cpu_us_per_event: cpuPer(measured.server, delivered),
      server_cores_busy: measured.server ? Math.round(measured.server.cores * 100) / 100 : null,
      all_delivered_in_order: complete ? 1 : 0,
      subscribers: counters.subscribers ?? 0,
    },
    latency: measured.latency,
    counters,
    server: measured.server,
    ...(measured.alongside ? { alongside: measured.alongside } : {}),
    notes: measured.notes,
  };
}

function fanoutTargets(all: RunFigures[], settings: Settings): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const fixed = settings.rates.find((rate): rate is number => rate !== 'open');
  if (fixed !== undefined) {
    const variant = variantName(fixed);
    const ours = findRun(all, 'gateway', variant);
    const uws = findRun(all, 'uws', variant);
    const label = `fan-out ${settings.subscribers} subscribers at ${fixed} publishes/s`;
    checks.push(
      checkTarget({
        name: `${label}: every event delivered in order`,
        target: 'delivered == expected, no gap, no duplicate',
        measured: ours?.counters.delivered,
        limit: ours?.counters.expected_events,
        kind: 'equal',
        unit: 'events',
      }),
      checkTarget({
        name: `${label}: incomplete subscribers`,
        target: '0',
        measured: ours?.counters.incomplete_subscribers,
        limit: 0,
        kind: 'equal',
        unit: 'subscribers',
      }),
      checkTarget({
        name: `${label}: server CPU per delivered event`,
        target: '<= 2x raw uWS',
        measured: ours?.figures.server_cpu_us_per_event,
        limit: uws?.figures.server_cpu_us_per_event == null ? null : 2 * uws.figures.server_cpu_us_per_event,
        kind: 'at most',
        unit: 'us',
        why: 'needs the uws baseline and a local gateway',
      }),
      checkTarget({
        name: `${label}: p99 publish-to-deliver`,
        target: '< 50 ms',
        measured: ours?.latency.delivery?.p99,
        limit: 50,
        kind: 'at most',
        unit: 'ms',
      }),
      // On two shared cores the absolute figure measures the machine; raw uWS in the same run is the fair bar.
      checkTarget({
        name: `${label}: p99 publish-to-deliver against raw uWS`,
        target: '<= 1.2x raw uWS p99',
        measured: ours?.latency.delivery?.p99,
        limit: uws?.latency.delivery?.p99 == null ? null : 1.2 * uws.latency.delivery.p99,
        kind: 'at most',
        unit: 'ms',
        why: 'needs the uws baseline',
      }),
    );
  }
  if (settings.rates.includes('open')) {
    const ours = findRun(all, 'gateway', 'open');
    const uws = findRun(all, 'uws', 'open');
    checks.push(
      checkTarget({
        name: 'fan-out max delivered events/s (open throttle)',
        target: ">= 0.5x raw uWS's",
        measured: ours?.figures.delivered_per_s,
        limit: uws?.figures.delivered_per_s == null ? null : uws.figures.delivered_per_s / 2,
        kind: 'at least',
        unit: 'events/s',
        why: 'needs the uws baseline',
      }),
    );
  }
  return checks;
}

export const fanoutScenario: Scenario = {
  name: 'fanout',
  title: 'Topic fan-out',
  async run(settings, log) {
    const finish = startReport(fanoutScenario, settings);
    const runs: RunFigures[] = [];
    const { subject, gateway } = await startGatewaySubject(settings, log);
    let conversationIds: string[];
    try {
      conversationIds = (await seedConversations(gateway, { agents: 1, conversations: settings.topics })).conversationIds;
      for (const rate of settings.rates) runs.push(await runFanout(subject, settings, log, rate, conversationIds));
    } finally {
      await subject.stop();
    }
    for (const name of baselineNames(settings)) {
      for (const rate of settings.rates)
        runs.push(
          await withSubject(
            () => startBaseline(name, 'publish'),
            (baseline) => runFanout(baseline, settings, log, rate, conversationIds),
          ),
        );
    }
    return finish({
      runs,
      ratioFigures: ['delivered_per_s', 'server_cpu_us_per_event'],
      primaryLatency: 'delivery',
      targets: (all) => fanoutTargets(all, settings),
      notes: [
        'Latency: publish-to-deliver, from `metadata.sent_at` (monotonic clock, shared by all processes of the machine) to arrival at the subscriber.',
        `Open throttle: publishers go as fast as the slowest subscriber allows, at most ${settings.lagWindow} events ahead on a topic (credit relayed through the coordinator every 25 ms), so the figure is a sustained rate, not a burst into buffers.`,
        'Server CPU per event: CPU of the server process(es) from the start of publishing until every subscriber has drained, divided by delivered events.',
        'Baselines publish outside the message handler (setImmediate batch), as the gateway does after a group commit.',
      ],
    });
  },
};
