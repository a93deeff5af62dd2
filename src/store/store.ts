import type { EventDraft, TopicEvent } from '../kernel/topic-event.js';
import type { SqlDriver, SqlExecutor } from './driver.js';
import { appendEvents, EventLog } from './repos/events.js';
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
import { OrderRepo } from './repos/orders.js';
import { ReturnRepo } from './repos/returns.js';
import { WebhookRepo } from './repos/webhooks.js';
import { WebhookDeliveryRepo } from './repos/webhook-deliveries.js';

/** Rows written to the embedded store between two statistics refreshes. */
const ANALYZE_AFTER_ROWS = 2_000;
const ANALYZE_SCALE_FACTOR = 0.2;

/** The repositories that take part in a write's transaction. */
export interface WriteRepos {
  readonly accounts: AccountRepo;
  readonly agents: AgentRepo;
  readonly conversations: ConversationRepo;
  readonly sessions: SessionRepo;
  readonly turns: TurnRepo;
  readonly orders: OrderRepo;
  readonly returns: ReturnRepo;
  readonly webhooks: WebhookRepo;
}

/** One transaction: its repositories, and the events it will commit with its changes. */
export interface StoreTx extends WriteRepos {
  /** Queued now, numbered and stored at the end of the transaction, in the order given. */
  emit(draft: EventDraft): void;
}

/** Message write streams on PostgreSQL (batches in flight at once, on separate connections). */
const MAX_WRITE_STREAMS = 4;

/** Deadlocks and serialization failures: the whole transaction is retried this many times. */
const TX_RETRIES = 3;

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
  readonly orders: OrderRepo;
  readonly returns: ReturnRepo;
  readonly webhooks: WebhookRepo;
  /** Makes the vectors of memories and queries; its space is the one the memory index serves. */
  readonly embedder: Embedder;
  readonly secrets: SecretRepo;
  /** Numbered events: the outbox nodes announce from and the window subscribers resume from. */
  readonly events: EventLog;
  /** Webhook deliveries: the queue workers claim from, and every attempt. */
  readonly webhookDeliveries: WebhookDeliveryRepo;
  /**
   * Runs `fn` in one transaction with the events it emits, which are numbered and stored last
   * (so the topics' rows are locked only briefly, always in one order). Resolves after commit
   * with `fn`'s result and the numbered events, for the caller to announce.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<{ result: T; events: TopicEvent[] }>;
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
  // Message batches: one stream on PGlite (one connection), several on PostgreSQL, each with one
  // batch in flight and a conversation always on the same stream, so that message order,
  // `created_at` order (paging) and the order of the message.created events agree per
  // conversation (see MessageRepo). A few connections of the pool stay free for everything else.
  const writeStreams = config.store.kind === 'postgres' ? Math.max(1, Math.min(MAX_WRITE_STREAMS, config.store.poolSize - 2)) : 1;
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
    // Only the table whose plans a burst of messages turns (the whole database takes five
    // times as long, on the one thread that also serves requests; the 30 s refresh covers it).
    driver.maintain?.(['messages']).catch(() => {});
  };
  const messages = new MessageRepo(driver, { maxBatch: config.writeBatchMax, streams: writeStreams, onWritten });
  const events = new EventLog(driver, { maxBatch: config.writeBatchMax });
  type Transactional = SqlExecutor & Pick<SqlDriver, 'transaction'>;
  const repos = (db: Transactional): WriteRepos => ({
    accounts: new AccountRepo(db),
    agents: new AgentRepo(db),
    conversations: new ConversationRepo(db),
    sessions: new SessionRepo(db),
    turns: new TurnRepo(db),
    orders: new OrderRepo(db),
    returns: new ReturnRepo(db),
    webhooks: new WebhookRepo(db),
  });
  return {
    kind: driver.kind,
    ...repos(driver),
    messages,
    memories: new MemoryRepo(driver, space),
    idempotency: new SqlIdempotencyStore(driver),
    context: new ContextRepo(driver, space),
    events,
    webhookDeliveries: new WebhookDeliveryRepo(driver),
    async transaction(fn) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await driver.transaction(async (db) => {
            // A repository's own transaction inside this one joins it.
            const joined: Transactional = { query: (sql, params, name) => db.query(sql, params, name), transaction: (inner) => inner(joined) };
            const drafts: EventDraft[] = [];
            const result = await fn({ ...repos(joined), emit: (draft) => drafts.push(draft) });
            return { result, events: await appendEvents(db, drafts) };
          });
        } catch (error) {
          if (attempt >= TX_RETRIES || !isRetryable(error)) throw error;
        }
      }
    },
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
      await events.flush();
      await driver.close();
    },
  };
}

/** 40P01 deadlock, 40001 serialization failure: nothing was committed, the whole transaction may run again. */
function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}
