import { randomBytes } from 'node:crypto';
import { createAccount } from '../../src/auth/provisioning.js';
import { loadConfig } from '../../src/config.js';
import { newId } from '../../src/kernel/ids.js';
import { openStore } from '../../src/store/store.js';
import { encodeHistogram, newHistogram, record } from '../lib/histogram.js';
import { nowUs } from '../lib/clock.js';

/**
 * The ceiling for REST reads: the same store (PGlite in memory, or PostgreSQL with
 * --database-url) selecting one agent by id in a loop, with no HTTP, auth or envelope around it.
 * Run as a child process: `bare-select.ts <durationMs> <concurrency>`; answers over IPC.
 */
const durationMs = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 1);
const databaseUrl = process.env.BARE_SELECT_DATABASE_URL;

async function main(): Promise<void> {
  const schema = `load_${randomBytes(4).toString('hex')}`;
  const store = await openStore(loadConfig(databaseUrl ? { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema } : { DATA_DIR: 'memory://' }));
  try {
    const account = await createAccount(store, { name: 'bare select' });
    const agent = await store.agents.create(account.accountId, newId('agent'), { name: 'load agent' });
    // Warm-up, unmeasured: JIT and the store's caches, as the gateway gets in its own warm-up.
    for (let index = 0; index < 500; index++) await store.agents.get(account.accountId, agent.id);
    const latency = newHistogram();
    let selects = 0;
    let misses = 0;
    const started = nowUs();
    const deadline = Date.now() + durationMs;
    // PGlite is one connection: one loop. A PostgreSQL pool gets `concurrency` loops side by side.
    const loops = Array.from({ length: databaseUrl ? concurrency : 1 }, async () => {
      while (Date.now() < deadline) {
        const before = nowUs();
        const row = await store.agents.get(account.accountId, agent.id);
        record(latency, nowUs() - before);
        if (row) selects++;
        else misses++;
      }
    });
    await Promise.all(loops);
    const elapsedMs = (nowUs() - started) / 1000;
    process.send?.({ type: 'result', selects, misses, elapsedMs, latency: encodeHistogram(latency), store: store.kind });
  } finally {
    if (databaseUrl) await dropSchema(databaseUrl, schema);
    await store.close();
  }
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`drop schema if exists ${schema} cascade`);
  await client.end();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.send?.({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  },
);
