/**
 * Scale-out benchmark: fan-out throughput and write-to-deliver latency with 1, 2 and 3 gateway
 * processes sharing one Redis and one PostgreSQL, against 1 process on the in-process bus.
 *
 *   npx tsx loadtest/scaleout-bench.ts [--seconds 8] [--rate 50] [--topics 10] [--subscribers 20]
 *
 * Each run: `topics` conversations, `subscribers` WebSocket subscribers per conversation spread
 * round-robin over the nodes, and REST writes (messages.create) at a fixed total `rate`, spread
 * over the nodes and conversations. Latency is measured in this process, from sending the write
 * to each subscriber receiving its event (so it includes the group commit). Every process shares
 * the same cores: the figures show the cost of the Redis hop and of more processes, not capacity.
 * Writes results to loadtest/results/scaleout.{json,md}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { GatewayNodes } from '../test/helpers/nodes.js';
import { deleteKeys } from '../test/helpers/redis.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rate: { type: 'string', default: '50' },
    topics: { type: 'string', default: '10' },
    subscribers: { type: 'string', default: '20' },
    redis: { type: 'string', default: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const topicCount = Number(values.topics);
const subscribersPerTopic = Number(values.subscribers);
const redisUrl = values.redis!;

interface RunResult {
  name: string;
  loadAverageAfter?: number;
  nodes: number;
  bus: 'local' | 'redis';
  writes: number;
  failedWrites: number;
  expectedDeliveries: number;
  deliveries: number;
  missing: number;
  duplicates: number;
  deliveriesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

async function run(name: string, nodeCount: number, bus: 'local' | 'redis'): Promise<RunResult> {
  const nodes = await GatewayNodes.start({
    count: nodeCount,
    redisUrl: bus === 'redis' ? redisUrl : undefined,
    env: { LOG_LEVEL: 'error', RATE_LIMITS_ENABLED: 'false', WS_MAX_FRAMES_PER_SECOND: '1000000' },
  });
  try {
    const rest = nodes.rest(0);
    const agent = await rest.call('agents.create', { name: 'bench' });
    const conversations = await Promise.all(Array.from({ length: topicCount }, () => rest.call('conversations.create', { agent_id: agent.id })));

    const sentAt = new Map<string, number>();
    const received = new Map<string, number>(); // content -> deliveries
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    let duplicates = 0;
    let socketIndex = 0;
    for (const conversation of conversations) {
      for (let s = 0; s < subscribersPerTopic; s++) {
        const socket = await nodes.connect(socketIndex++ % nodeCount);
        const seen = new Set<number>();
        await socket.subscribe(`conversation:${conversation.id}`, (frame) => {
          const now = performance.now();
          // Presence signals share the topic; only messages are measured.
          if (frame.ephemeral || frame.event !== 'message.created') return;
          if (seen.has(frame.seq)) duplicates++;
          seen.add(frame.seq);
          const content = (frame.data as { message: { content: string } }).message.content;
          const sent = sentAt.get(content);
          if (sent !== undefined) histogram.recordValue(Math.max(1, Math.round((now - sent) * 1000)));
          received.set(content, (received.get(content) ?? 0) + 1);
        });
      }
    }

    // Fixed-rate writers, round-robin over nodes and topics: every 10 ms tick sends what the
    // schedule owes by then, so a late timer catches up instead of lowering the rate.
    const writers = Array.from({ length: nodeCount }, (_, i) => nodes.rest(i));
    let writes = 0;
    let failedWrites = 0;
    const inFlight = new Set<Promise<void>>();
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (performance.now() - started >= seconds * 1000) {
          clearInterval(timer);
          resolve();
          return;
        }
        const owed = Math.floor(((performance.now() - started) / 1000) * rate) - writes;
        for (let i = 0; i < owed; i++) {
          const n = writes++;
          const content = `bench ${n}`;
          const conversation = conversations[n % topicCount]!;
          sentAt.set(content, performance.now());
          const write = writers[n % nodeCount]!.call('messages.create', { conversation_id: conversation.id, content })
            .then(
              () => {},
              () => void failedWrites++,
            )
            .finally(() => inFlight.delete(write));
          inFlight.add(write);
        }
      }, 10);
    });
    await Promise.all(inFlight);
    const expectedDeliveries = (writes - failedWrites) * subscribersPerTopic;
    const deadline = Date.now() + 10_000;
    const total = () => [...received.values()].reduce((a, b) => a + b, 0);
    while (total() < expectedDeliveries && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const elapsed = (performance.now() - started) / 1000;
    const deliveries = total();
    const ms = (percentile: number) => Math.round(histogram.getValueAtPercentile(percentile) / 10) / 100;
    return {
      name,
      nodes: nodeCount,
      bus,
      writes,
      failedWrites,
      expectedDeliveries,
      deliveries,
      missing: Math.max(0, expectedDeliveries - deliveries),
      duplicates,
      deliveriesPerSecond: Math.round(deliveries / elapsed),
      latencyMs: { p50: ms(50), p90: ms(90), p99: ms(99), max: Math.round(histogram.maxValue / 10) / 100 },
    };
  } finally {
    await nodes.stop();
  }
}

const runs: RunResult[] = [];
for (const [name, count, bus] of [
  ['1 node, local bus', 1, 'local'],
  ['1 node, Redis', 1, 'redis'],
  ['2 nodes, Redis', 2, 'redis'],
  ['3 nodes, Redis', 3, 'redis'],
] as const) {
  process.stderr.write(`running: ${name} (load average ${loadavg()[0]!.toFixed(1)})\n`);
  const result = { ...(await run(name, count, bus)), loadAverageAfter: Math.round(loadavg()[0]! * 10) / 10 };
  process.stderr.write(`  ${JSON.stringify(result)}\n`);
  runs.push(result);
}
await deleteKeys(redisUrl, 'sgtest:').catch(() => {});

const baseline = runs[0]!;
const report = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    note: 'all gateway processes, Redis, PostgreSQL and this client share the same cores',
  },
  settings: { seconds, writesPerSecond: rate, topics: topicCount, subscribersPerTopic, sockets: topicCount * subscribersPerTopic },
  runs: runs.map((r) => ({
    ...r,
    p50VsLocal: Math.round((r.latencyMs.p50 / baseline.latencyMs.p50) * 100) / 100,
    p99VsLocal: Math.round((r.latencyMs.p99 / baseline.latencyMs.p99) * 100) / 100,
  })),
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/scaleout.json', import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
const rows = report.runs.map(
  (r) =>
    `| ${r.name} | ${r.writes} | ${r.deliveries} / ${r.expectedDeliveries} | ${r.duplicates} | ${r.deliveriesPerSecond} | ${r.latencyMs.p50} | ${r.latencyMs.p90} | ${r.latencyMs.p99} | ${r.latencyMs.max} | ${r.p50VsLocal}× / ${r.p99VsLocal}× | ${r.loadAverageAfter} |`,
);
writeFileSync(
  new URL('./results/scaleout.md', import.meta.url),
  `# Scale-out: fan-out through Redis

\`npx tsx loadtest/scaleout-bench.ts\` on ${report.machine.cpus} × ${report.machine.model}, Node ${report.machine.node}, ${report.date.slice(0, 10)}.
${topicCount} conversations × ${subscribersPerTopic} WebSocket subscribers (${report.settings.sockets} sockets, spread round-robin over the nodes),
REST writes (messages.create) at ${rate}/s for ${seconds} s spread over nodes and conversations. Latency: from sending the write
to a subscriber receiving its event, measured in the client (includes the group commit).

| run | writes | delivered / expected | duplicates | deliveries/s | p50 ms | p90 ms | p99 ms | max ms | p50 / p99 vs local | load avg after |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

All processes (gateways, Redis, PostgreSQL, this client) share the same ${report.machine.cpus} cores, so more nodes add
contention rather than capacity here: read the ratios as the cost of the Redis hop (1 node local → 1 node Redis) and of
spreading the same sockets over more processes, not as a capacity curve. The machine was shared with other
jobs while this ran (load average in the last column, on ${report.machine.cpus} cores): latencies are noisy, rerun before comparing.
`,
);
process.stderr.write('wrote loadtest/results/scaleout.json and scaleout.md\n');
