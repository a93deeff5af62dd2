/**
 * Context-call latency with a full session: 10,000 memories and 1,000 turns.
 *
 *   npx tsx loadtest/context-bench.ts [--backend pglite|postgres] [--memories 10000] [--turns 1000] [--calls 500]
 *
 * Calls go through the operations layer (`Operations.invoke`, the entry point REST and WebSocket
 * both use: permission check, input validation, embedding the query, the one SQL statement), in
 * process and without HTTP, so the numbers are the store's and the embedder's, not the network's.
 * Writes loadtest/results/context-<backend>.json and .md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import pg from 'pg';
import { startGateway } from '../src/app.js';
import { createAccount } from '../src/auth/provisioning.js';
import { loadConfig } from '../src/config.js';
import { newId } from '../src/kernel/ids.js';
import { ContextRepo } from '../src/store/repos/context.js';
import type { Store } from '../src/store/store.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'pglite' },
    memories: { type: 'string', default: '10000' },
    turns: { type: 'string', default: '1000' },
    calls: { type: 'string', default: '500' },
  },
});
const backend = args.backend === 'postgres' ? 'postgres' : 'pglite';
const MEMORIES = Number(args.memories);
const TURNS = Number(args.turns);
const CALLS = Number(args.calls);
const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stategate_test';

/** Deterministic text: the same run fills the same memories every time. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(42);
const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
const SUBJECTS = ['the customer', 'the user', 'their manager', 'the account owner', 'the buyer', 'the guest'];
const VERBS = ['prefers', 'asked about', 'complained about', 'wants', 'mentioned', 'cancelled', 'ordered', 'returned', 'booked', 'forgot'];
const OBJECTS = [
  'express shipping',
  'a window seat',
  'the annual plan',
  'vegetarian meals',
  'invoice copies',
  'a standing desk',
  'oat milk',
  'the refund',
  'two-factor login',
  'weekend delivery',
  'a hotel upgrade',
  'the warranty',
  'paper receipts',
  'a phone callback',
  'Spanish support',
  'gift wrapping',
  'the loyalty points',
  'dark mode',
  'the blue jacket',
  'a late checkout',
];
const PLACES = [
  'in Berlin',
  'in Lisbon',
  'at the Reno warehouse',
  'in Singapore',
  'for the Porto trip',
  'on the website',
  'by email',
  'last Tuesday',
  'in March',
  'for order 4821',
];
const sentence = () => `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)} ${pick(PLACES)}`;

async function main(): Promise<void> {
  const schema = `bench_${Date.now().toString(36)}`;
  const config = loadConfig({
    PORT: '0',
    LOG_LEVEL: 'silent',
    PRINT_BOOTSTRAP_KEY: 'false',
    ...(backend === 'postgres' ? { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '8' } : { DATA_DIR: 'memory://' }),
  });
  // The whole gateway in process; calls go through its operation table, without HTTP.
  const gateway = await startGateway(config);
  const store = gateway.store;
  const issued = await createAccount(store, { name: 'bench', plan: 'enterprise' });
  const principal = { accountId: issued.accountId, keyId: issued.keyId, plan: 'enterprise', scopes: ['*'], subject: issued.keyId };
  const call = (name: string, input: unknown) => gateway.operations.invoke(name, input, { principal, requestId: 'req_bench', transport: 'rest' });

  try {
    const session = (await call('sessions.create', { agent_id: 'bench-agent', ttl_seconds: 3600 })) as { id: string };
    const fillStarted = performance.now();
    // Bulk load, index after: growing the HNSW graph row by row would take most of the time
    // budget on PGlite. The last INCREMENTAL memories go through memories.create, timed below.
    const INCREMENTAL = Math.min(200, MEMORIES);
    await store.memories.withIndexDeferred(async () => {
      for (let done = 0; done < MEMORIES - INCREMENTAL; done += 500) {
        const texts = Array.from({ length: Math.min(500, MEMORIES - INCREMENTAL - done) }, sentence);
        const vectors = await store.embedder.embed(texts);
        const batch = texts.map((content, i) => ({
          id: newId('memory'),
          content,
          metadata: { n: done + i },
          vector: vectors[i]!,
          source: 'embedder' as const,
        }));
        await store.memories.createMany(issued.accountId, session.id, batch);
      }
    });
    const createHistogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    for (let i = 0; i < INCREMENTAL; i++) {
      const t0 = performance.now();
      await call('memories.create', { session_id: session.id, content: sentence() });
      createHistogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
    const memoriesSeconds = (performance.now() - fillStarted) / 1000;
    const turnsStarted = performance.now();
    for (let i = 0; i < TURNS; i++) await call('turns.create', { session_id: session.id, input: sentence(), output: sentence() });
    const turnsSeconds = (performance.now() - turnsStarted) / 1000;
    process.stderr.write(`filled ${MEMORIES} memories in ${memoriesSeconds.toFixed(1)} s, ${TURNS} turns in ${turnsSeconds.toFixed(1)} s\n`);

    const measure = async (withQuery: boolean) => {
      const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
      for (let i = 0; i < 30; i++) await call('sessions.context', { session_id: session.id, ...(withQuery ? { query: sentence() } : {}) });
      let returned = 0;
      const started = performance.now();
      for (let i = 0; i < CALLS; i++) {
        const input = { session_id: session.id, memory_limit: 5, turn_limit: 10, ...(withQuery ? { query: `what did ${sentence()}?` } : {}) };
        const t0 = performance.now();
        const context = (await call('sessions.context', input)) as { memories: unknown[]; recent_turns: unknown[] };
        histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
        returned += context.memories.length === 5 && context.recent_turns.length === 10 ? 1 : 0;
      }
      const seconds = (performance.now() - started) / 1000;
      const ms = (p: number) => Math.round(histogram.getValueAtPercentile(p) / 10) / 100;
      return {
        calls: CALLS,
        complete_answers: returned,
        p50_ms: ms(50),
        p90_ms: ms(90),
        p99_ms: ms(99),
        max_ms: ms(100),
        calls_per_second: Math.round(CALLS / seconds),
      };
    };
    const semantic = await measure(true);
    const recent = await measure(false);

    const plan = await explain(store, session.id, issued.accountId);
    const result = {
      benchmark: 'sessions.context',
      backend,
      layer: 'Operations.invoke in process (no HTTP)',
      embedder: store.embedder.id,
      session: { memories: MEMORIES, turns: TURNS },
      fill_seconds: { memories: round(memoriesSeconds), turns: round(turnsSeconds) },
      fill_method:
        'memories: bulk insert (500 per statement) with the HNSW index built after, then 200 through memories.create; turns: turns.create one by one',
      memories_create_into_full_index: {
        calls: createHistogram.totalCount,
        p50_ms: Math.round(createHistogram.getValueAtPercentile(50) / 10) / 100,
        p99_ms: Math.round(createHistogram.getValueAtPercentile(99) / 10) / 100,
      },
      with_query: semantic,
      without_query: recent,
      memory_plan_uses_hnsw: plan.some((line) => /session_memories_hnsw/.test(line)),
      memory_plan: plan,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
      date: new Date().toISOString(),
    };
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(new URL(`./results/context-${backend}.json`, import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(new URL(`./results/context-${backend}.md`, import.meta.url), markdown(result));
    process.stdout.write(markdown(result));
  } finally {
    await gateway.stop();
    if (backend === 'postgres') {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    }
  }
}

const round = (value: number) => Math.round(value * 10) / 10;

/** EXPLAIN of the exact context statement, to show whether the HNSW index serves the memory search. */
async function explain(store: Store, sessionId: string, accountId: string): Promise<string[]> {
  const [queryVector] = await store.embedder.embed(['what did the customer prefer for shipping']);
  const params = ContextRepo.similarityParams(accountId, { sessionId, queryVector: queryVector!, memoryLimit: 5, turnLimit: 10 });
  const rows = await store.context.db.query<Record<string, string>>(`explain ${store.context.bySimilarity}`, params);
  // Vectors make plan lines very long; keep the shape.
  return rows.map((row) => Object.values(row)[0]!.replace(/'\[[^\]]*\]'/g, "'[...]'"));
}

function markdown(r: {
  memories_create_into_full_index: { p50_ms: number; p99_ms: number };
  backend: string;
  layer: string;
  embedder: string;
  session: { memories: number; turns: number };
  fill_seconds: { memories: number; turns: number };
  with_query: Record<string, number>;
  without_query: Record<string, number>;
  memory_plan_uses_hnsw: boolean;
  machine: { cpus: number; node: string };
  date: string;
}): string {
  const row = (name: string, m: Record<string, number>) =>
    `| ${name} | ${m.calls} | ${m.p50_ms} | ${m.p90_ms} | ${m.p99_ms} | ${m.max_ms} | ${m.calls_per_second} |`;
  return `## sessions.context on ${r.backend}

${r.session.memories} memories and ${r.session.turns} turns in one session; memory_limit 5, turn_limit 10; ${r.layer}; embedder ${r.embedder}; ${r.machine.cpus} CPUs, Node ${r.machine.node}; ${r.date}.
Filled in ${r.fill_seconds.memories} s (memories: bulk, index built after) + ${r.fill_seconds.turns} s (turns). Memory search plan uses the HNSW index: ${r.memory_plan_uses_hnsw ? 'yes' : 'no'}.
memories.create into the full index: p50 ${r.memories_create_into_full_index.p50_ms} ms, p99 ${r.memories_create_into_full_index.p99_ms} ms.

| call | n | p50 ms | p90 ms | p99 ms | max ms | calls/s |
|---|---|---|---|---|---|---|
${row('with query (semantic)', r.with_query)}
${row('without query (recent)', r.without_query)}
`;
}

await main();
