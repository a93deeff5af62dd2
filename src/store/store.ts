import type { SqlDriver } from './driver.js';
import { migrate } from './migrations/index.js';
import { openPgDriver } from './pg-driver.js';
import { openPgliteDriver } from './pglite-driver.js';
import { AccountRepo } from './repos/accounts.js';
import { AgentRepo } from './repos/agents.js';
import { ConversationRepo } from './repos/conversations.js';
import { SqlIdempotencyStore, type IdempotencyStore } from './repos/idempotency.js';
import { MessageRepo } from './repos/messages.js';
import { ContextRepo } from './repos/context.js';
import { MemoryRepo } from './repos/memories.js';
import { SessionRepo } from './repos/sessions.js';
import { TurnRepo } from './repos/turns.js';
import { VectorSpace } from './vectors.js';
import { createEmbedder, type Embedder } from '../embeddings/index.js';
import { SecretRepo } from './repos/secrets.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

/** Rows written to the embedded store between two statistics refreshes. */
const ANALYZE_AFTER_ROWS = 2_000;
const ANALYZE_SCALE_FACTOR = 0.2;

/** Everything durable, behind one object; the backend is chosen by configuration. */
export interface Store {
  readonly kind: SqlDriver['kind'];
  readonly accounts: AccountRepo;
  readonly agents: AgentRepo;
  readonly conversations: ConversationRepo;
  readonly messages: MessageRepo;
  readonly idempotency: IdempotencyStore;
  readonly sessions: SessionRepo;
  readonly turns: TurnRepo;
  readonly memories: MemoryRepo;
  readonly context: ContextRepo;
  /** Makes the vectors of memories and queries; its space is the one the memory index serves. */
  readonly embedder: Embedder;
  readonly secrets: SecretRepo;
  /** Refreshes planner statistics now (the embedded store also does it every 30 s). */
  maintain(): Promise<void>;
  /** Cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  /** Waits for buffered writes, then closes connections. */
  close(): Promise<void>;
}

export async function openStore(
  config: Pick<Config, 'store' | 'writeBatchMax'> & Partial<Pick<Config, 'embeddings'>>,
  hooks: { onBatchWritten?: (rows: number) => void; log?: Logger } = {},
): Promise<Store> {
  const embedder = createEmbedder(config.embeddings);
  const space = new VectorSpace(embedder);
  const driver =
    config.store.kind === 'postgres'
      ? await openPgDriver({ url: config.store.url, schema: config.store.schema, poolSize: config.store.poolSize, log: hooks.log })
      : await openPgliteDriver({ dataDir: config.store.dataDir, schema: config.store.schema });
  try {
    await migrate(driver);
    await space.ensureIndex(driver);
    // PGlite is one connection: set once what pg sets per connection (see pg-driver).
    if (driver.kind === 'pglite') await driver.exec('set hnsw.iterative_scan = relaxed_order');
  } catch (error) {
    await driver.close();
    throw error;
  }
  // One message batch at a time, on every backend: batches then commit in the order their rows
  // were numbered, so message order, `created_at` order (paging) and the order of the
  // message.created events all agree. Under load the next batch simply grows while one is in flight.
  const maxInFlight = 1;
  // PGlite has no autovacuum: after a burst of writes, refresh statistics so that reads keep
  // their index plans (a list of one conversation turns into a scan of all messages otherwise).
  // Like autovacuum's analyze threshold: a fixed number of rows plus a fraction of the table.
  let writtenSinceAnalyze = 0;
  let writtenTotal = 0;
  const onWritten = (rows: number) => {
    hooks.onBatchWritten?.(rows);
    if (driver.kind !== 'pglite') return;
    writtenSinceAnalyze += rows;
    writtenTotal += rows;
    if (writtenSinceAnalyze < ANALYZE_AFTER_ROWS + ANALYZE_SCALE_FACTOR * writtenTotal) return;
    writtenSinceAnalyze = 0;
    driver.maintain?.().catch(() => {});
  };
  const messages = new MessageRepo(driver, { maxBatch: config.writeBatchMax, maxInFlight, onWritten });
  return {
    kind: driver.kind,
    accounts: new AccountRepo(driver),
    agents: new AgentRepo(driver),
    conversations: new ConversationRepo(driver),
    messages,
    idempotency: new SqlIdempotencyStore(driver),
    sessions: new SessionRepo(driver),
    turns: new TurnRepo(driver),
    memories: new MemoryRepo(driver, space),
    context: new ContextRepo(driver, space),
    embedder,
    secrets: new SecretRepo(driver),
    async maintain() {
      await driver.maintain?.();
    },
    async ping() {
      await driver.query('select 1');
    },
    async close() {
      await messages.flush();
      await driver.close();
    },
  };
}
