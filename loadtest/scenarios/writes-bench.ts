/**
 * Micro-benchmark of the message batch writer alone (no WebSocket, no load generator): batches of
 * `--batch` messages over `--conversations` conversations of one agent, `--batches` of them, with
 * the time of each statement the writer sends, the writer process's CPU per message and, on
 * PostgreSQL, the backends' CPU per message (from /proc; wall times are noisy on a shared machine).
 * For profiling the write path:
 *   npx tsx loadtest/scenarios/writes-bench.ts [--database-url URL] [--batch 500] [--batches 40] [--streams N]
 * EXPLAIN=1 prints the plan of one batch statement (EXPLAIN ANALYZE, rolled back); BENCH_DDL runs
 * SQL after the store opens (try a setting or a dropped index); BENCH_ANALYZE=1 times `analyze`.
 * Runs on its own schema of the given database (dropped after) or an in-memory PGlite.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openStore } from '../../src/store/store.js';
import { topicKey } from '../../src/realtime/topics.js';
import type { SqlDriver } from '../../src/store/driver.js';
import { MessageRepo } from '../../src/store/repos/messages.js';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    batch: { type: 'string', default: '500' },
    batches: { type: 'string', default: '40' },
    conversations: { type: 'string', default: '50' },
    streams: { type: 'string' },
  },
});
const batch = Number(values.batch);
const batches = Number(values.batches);
const conversationCount = Number(values.conversations);
const schema = `writes_bench_${process.pid}`;
const url = values['database-url'];

const store = await openStore({
  store: url ? { kind: 'postgres', url, schema, poolSize: 10 } : { kind: 'pglite', dataDir: 'memory://', schema: 'public' },
  writeBatchMax: batch,
});
// Statement timings, by the statement's first words.
const timings = new Map<string, { n: number; ms: number }>();
const driver = (store as unknown as { messages: { db: SqlDriver } }).messages.db;
// --streams N: a message writer with N write streams instead of the store's choice.
const messages = values.streams ? new MessageRepo(driver, { maxBatch: batch, streams: Number(values.streams) }) : store.messages;
const wrap = <T extends { query: SqlDriver['query'] }>(target: T): T => {
  const query = target.query.bind(target);
  target.query = (async (sql: string, params?: unknown[], name?: string) => {
    if (explain && sql.trim().startsWith('with input')) {
      explain = false;
      await query('savepoint explain');
      const plan = await query(`explain (analyze, costs off) ${sql}`, params);
      console.log(plan.map((row) => Object.values(row as object)[0]).join('\n'));
      await query('rollback to savepoint explain');
    }
    const started = performance.now();
    try {
      return await query(sql, params, name);
    } finally {
      const key = sql.trim().replace(/\s+/g, ' ').slice(0, 60);
      const entry = timings.get(key) ?? { n: 0, ms: 0 };
      entry.n++;
      entry.ms += performance.now() - started;
      timings.set(key, entry);
    }
  }) as T['query'];
  return target;
};
const transaction = driver.transaction.bind(driver);
driver.transaction = (fn) => transaction((tx) => fn(wrap({ query: tx.query.bind(tx) })));

if (process.env.BENCH_DDL) await driver.exec(process.env.BENCH_DDL);
const account = 'acct_bench';
await driver.query(`insert into accounts (id, name) values ($1, 'bench') on conflict do nothing`, [account]);
await driver.query(`insert into agents (id, account_id, name) values ('agent_bench', $1, 'a') on conflict do nothing`, [account]);
const conversations = Array.from({ length: conversationCount }, (_, i) => `conv_bench_${i}`);
await driver.query(
  `insert into conversations (id, account_id, agent_id, channel) select c, $1, 'agent_bench', 'web' from unnest($2::text[]) c on conflict do nothing`,
  [account, conversations],
);

let n = 0;
let explain = false;
const one = () => {
  const conversation = conversations[n++ % conversations.length]!;
  return messages.create({
    id: `msg_${process.pid}_${n}`,
    accountId: account,
    input: { conversation_id: conversation, role: 'user', content: 'I need help with my order', metadata: { source: 'loadtest' } },
    announce: (agentId) => ({
      id: `evt_${process.pid}_${n}`,
      topics: [topicKey(account, `conversation:${conversation}`), ...(agentId ? [topicKey(account, `agent:${agentId}`)] : []), topicKey(account, 'account')],
      event: 'message.created',
    }),
  });
};
// warm-up
await Promise.all(Array.from({ length: batch }, one));
timings.clear();
explain = Boolean(process.env.EXPLAIN);
// PostgreSQL's CPU: the backends connected to this database (the machine is shared, so wall time is noisy).
const backendCpuMs = async (): Promise<number> => {
  if (!url) return 0;
  const rows = await driver.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()');
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
};
const pgBefore = await backendCpuMs();
const cpu = process.cpuUsage();
const started = performance.now();
await Promise.all(Array.from({ length: batch * batches }, one));
const elapsed = performance.now() - started;
const used = process.cpuUsage(cpu);
console.log(
  `${url ? 'postgres' : 'pglite'}: ${batch * batches} messages in ${elapsed.toFixed(0)} ms = ${Math.round((batch * batches) / (elapsed / 1000))}/s; ` +
    `process CPU ${(((used.user + used.system) / 1000 / (batch * batches)) * 1000).toFixed(1)} us/message`,
);
if (url) console.log(`  PostgreSQL backends' CPU ${((((await backendCpuMs()) - pgBefore) * 1000) / (batch * batches)).toFixed(1)} us/message`);
for (const [sql, t] of timings) console.log(`  ${(t.ms / t.n).toFixed(2).padStart(8)} ms x ${String(t.n).padStart(4)}  ${sql}`);
if (process.env.BENCH_ANALYZE) {
  const at = performance.now();
  await driver.maintain?.();
  console.log(`  analyze: ${(performance.now() - at).toFixed(0)} ms`);
  for (const table of ['messages', 'event_log', 'conversations', 'topic_positions']) {
    const started = performance.now();
    await driver.exec(`analyze ${table}`);
    console.log(`  analyze ${table}: ${(performance.now() - started).toFixed(0)} ms`);
  }
}
if (url) await driver.query(`drop schema ${schema} cascade`);
await store.close();
