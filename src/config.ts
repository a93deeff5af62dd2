import { availableParallelism } from 'node:os';
import { z } from 'zod';

/**
 * Every setting, its environment variable and its default, in one place. `npm start` with no
 * environment runs a complete gateway on an embedded PGlite in ./data and an in-process bus.
 */
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');

const EnvSchema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /**
   * Worker processes serving the one port (SO_REUSEPORT): one per core to use. Above 1 the
   * workers are separate processes, so they need what several nodes need: PostgreSQL and Redis.
   * `auto`: one per core this process may use.
   */
  WORKERS: z
    .union([z.literal('auto').transform(() => Math.min(64, availableParallelism())), z.coerce.number().int().min(1).max(64)], {
      error: 'must be a number of processes from 1 to 64, or auto (one per core)',
    })
    .default(1),
  /** postgres://… switches the store from the embedded PGlite to a PostgreSQL server. */
  DATABASE_URL: z.string().url().optional(),
  /** Where the embedded PGlite keeps its files; `memory://` keeps nothing. */
  DATA_DIR: z.string().default('./data'),
  /** PostgreSQL schema for all tables (tests use one per run). */
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default('public'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  /** redis://… (one server) or redis+cluster://host:port,host:port (a Redis Cluster): the shared bus. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?(\+cluster)?:\/\//, 'must start with redis://, rediss://, redis+cluster:// or rediss+cluster://')
    .optional(),
  /** Prepended to every Redis key and channel, so deployments can share one Redis. */
  REDIS_KEY_PREFIX: z.string().max(64).default('stategate:'),
  /** A Redis command unanswered for this long fails (503) instead of hanging. */
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Creates (or keeps) an account with this API key at start-up: for containers and scripts. */
  STATEGATE_API_KEY: z.string().min(16).optional(),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  WS_MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  WS_MAX_SUBSCRIPTIONS: z.coerce.number().int().min(1).default(100),
  /** Inbound frames per second per connection (bursts of twice that are allowed). */
  WS_MAX_FRAMES_PER_SECOND: z.coerce.number().int().min(1).default(500),
  /** Server pings this often; a peer silent for twice as long is dropped. */
  WS_HEARTBEAT_MS: z.coerce.number().int().min(1000).default(30_000),
  /** Bytes buffered for one slow connection before it is closed (it can resume). */
  WS_MAX_BACKPRESSURE_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .default(4 * 1024 * 1024),
  /** Sockets are told this long before their credentials (a client token) expire, so that they can refresh in place. */
  WS_EXPIRY_NOTICE_MS: z.coerce.number().int().min(0).default(60_000),
  /** Resume: most events replayed to one subscriber (further behind: recovered false, refetch). */
  HISTORY_MAX_EVENTS: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  /** Resume: how long the event log keeps an event. */
  HISTORY_TTL_SECONDS: z.coerce.number().int().min(1).default(600),
  /** How often a node compares the topics it follows with the event log (to catch what the bus lost). */
  EVENT_RECONCILE_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** A stream with no delta for this long is stored as incomplete. */
  STREAM_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** On SIGTERM, WebSockets are closed this many at a time, this far apart, so clients do not reconnect in one herd. */
  DRAIN_BATCH_SIZE: z.coerce.number().int().min(1).default(500),
  DRAIN_INTERVAL_MS: z.coerce.number().int().min(0).default(100),
  /** Group commit: most rows one statement writes (per-batch costs, such as each conversation's counter, amortize up to about 1,000). */
  WRITE_BATCH_MAX: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** How long a cached API key is trusted before it is looked up again. */
  KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).default(60_000),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /** Per-key rate limits by plan (off only for benchmarks or behind a trusted proxy that limits). */
  RATE_LIMITS_ENABLED: bool.default(true),
  /** Honour Idempotency-Key on POST operations. */
  IDEMPOTENCY_ENABLED: bool.default(true),
  /** GraphQL at /graphql: schema introspection (__schema, __type) allowed. */
  GRAPHQL_INTROSPECTION: bool.default(true),
  /** GraphQL: deepest selection nesting accepted. */
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(2).max(64).default(8),
  /** GraphQL: highest estimated cost (fields times the list sizes they multiply by) accepted. */
  GRAPHQL_MAX_COST: z.coerce.number().int().min(1).default(20_000),
  /** GraphQL: most aliases in one document. */
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(30),
  /** Print the bootstrap key on first start (off in tests). */
  PRINT_BOOTSTRAP_KEY: bool.default(true),
  /**
   * The chat widget's demo endpoint, POST /v1/demo/widget: anyone may get a client token for a new
   * conversation with the demo agent. Unset: on in development on the embedded PGlite store, off
   * when NODE_ENV=production or with DATABASE_URL. `true` turns it on anywhere.
   */
  DEMO_WIDGET: bool.optional(),
  /** OpenAI-compatible embeddings API base URL; unset uses the built-in lexical embedder. */
  EMBEDDINGS_URL: z.string().url().optional(),
  EMBEDDINGS_API_KEY: z.string().optional(),
  EMBEDDINGS_MODEL: z.string().min(1).default('text-embedding-3-small'),
  /** Vector length (fixed: the HNSW index needs it). Default 1024 built in, 1536 over HTTP. */
  EMBEDDINGS_DIMENSIONS: z.coerce.number().int().min(1).max(2000).optional(),
  EMBEDDINGS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** How often expired sessions are deleted, and how many per statement. */
  SESSION_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  SESSION_SWEEP_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Deliver webhooks from this node (every node can; they share the work). */
  WEBHOOKS_ENABLED: bool.default(true),
  /** Allow webhook URLs on loopback, private and link-local addresses (tests, private networks). */
  WEBHOOKS_ALLOW_PRIVATE: bool.default(false),
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  WEBHOOK_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /** One attempt's whole time (connect, send, first bytes of the answer). */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  WEBHOOK_MAX_RESPONSE_BYTES: z.coerce.number().int().min(0).max(65_536).default(1024),
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).default(5000),
  WEBHOOK_RETRY_MAX_MS: z.coerce
    .number()
    .int()
    .min(1)
    .default(12 * 3600 * 1000),
  /** How long a delivery is retried (about three days), from its first attempt. */
  WEBHOOK_RETRY_WINDOW_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(3 * 86_400),
  /** An endpoint failing every delivery for this long is disabled with a reason. */
  WEBHOOK_DISABLE_AFTER_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(5 * 86_400),
});

/** Environment variables the gateway reads, all as strings. */
export type Env = { [K in keyof z.input<typeof EnvSchema>]?: string };

export interface Config {
  host: string;
  port: number;
  /** Worker processes on the one port (1: this process serves, no supervisor). */
  workers: number;
  store: { kind: 'postgres'; url: string; schema: string; poolSize: number } | { kind: 'pglite'; dataDir: string; schema: string };
  redisUrl: string | undefined;
  redis: { keyPrefix: string; commandTimeoutMs: number };
  logLevel: z.infer<typeof EnvSchema>['LOG_LEVEL'];
  bootstrapApiKey: string | undefined;
  printBootstrapKey: boolean;
  http: { maxBodyBytes: number };
  ws: {
    maxFrameBytes: number;
    maxSubscriptions: number;
    maxFramesPerSecond: number;
    heartbeatMs: number;
    maxBackpressureBytes: number;
    expiryNoticeMs: number;
  };
  history: { maxEvents: number; ttlMs: number; reconcileMs: number };
  streamIdleTimeoutMs: number;
  drain: { batchSize: number; intervalMs: number };
  writeBatchMax: number;
  keyCacheTtlMs: number;
  shutdownGraceMs: number;
  rateLimits: boolean;
  idempotency: boolean;
  graphql: { introspection: boolean; maxDepth: number; maxCost: number; maxAliases: number };
  embeddings: EmbeddingsConfig;
  sessionSweep: { intervalMs: number; batchSize: number };
  webhooks: WebhookSettings;
  /** POST /v1/demo/widget answers (else 404). */
  demoWidget: boolean;
}

/** Which embedder computes vectors: the built-in lexical one, or an OpenAI-compatible HTTP API. */
export type EmbeddingsConfig =
  { kind: 'lexical'; dimensions: number } | { kind: 'http'; url: string; apiKey: string | undefined; model: string; dimensions: number; timeoutMs: number };

/**
 * When to try a webhook again: exponential backoff from `baseMs`, capped at `maxMs`, until
 * `windowMs` after the schedule started (`webhooks/schedule.ts` computes the delays).
 */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  windowMs: number;
}

export interface WebhookSettings {
  /** Background delivery on this node. */
  enabled: boolean;
  allowPrivate: boolean;
  /** Deliveries in flight at once on this node. */
  concurrency: number;
  pollMs: number;
  timeoutMs: number;
  maxResponseBytes: number;
  retry: RetryPolicy;
  /** An endpoint whose every delivery failed for this long is disabled with a reason. */
  disableAfterMs: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable (`DATABASE_URL=` in a compose file) means unset, not an invalid value.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const workerProblems = e.WORKERS > 1 ? workersProblems(e, present.WORKERS === 'auto' ? `WORKERS=auto (${e.WORKERS} cores)` : `WORKERS=${e.WORKERS}`) : [];
  if (workerProblems.length > 0) throw new ConfigError(`Invalid configuration:\n${workerProblems.map((line) => `  ${line}`).join('\n')}`);
  return {
    host: e.HOST,
    port: e.PORT,
    workers: e.WORKERS,
    store: e.DATABASE_URL
      ? { kind: 'postgres', url: e.DATABASE_URL, schema: e.DATABASE_SCHEMA, poolSize: e.DATABASE_POOL_SIZE }
      : { kind: 'pglite', dataDir: e.DATA_DIR, schema: e.DATABASE_SCHEMA },
    redisUrl: e.REDIS_URL,
    redis: { keyPrefix: e.REDIS_KEY_PREFIX, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS },
    logLevel: e.LOG_LEVEL,
    bootstrapApiKey: e.STATEGATE_API_KEY,
    printBootstrapKey: e.PRINT_BOOTSTRAP_KEY,
    http: { maxBodyBytes: e.MAX_BODY_BYTES },
    ws: {
      maxFrameBytes: e.WS_MAX_FRAME_BYTES,
      maxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
      maxFramesPerSecond: e.WS_MAX_FRAMES_PER_SECOND,
      heartbeatMs: e.WS_HEARTBEAT_MS,
      maxBackpressureBytes: e.WS_MAX_BACKPRESSURE_BYTES,
      expiryNoticeMs: e.WS_EXPIRY_NOTICE_MS,
    },
    history: { maxEvents: e.HISTORY_MAX_EVENTS, ttlMs: e.HISTORY_TTL_SECONDS * 1000, reconcileMs: e.EVENT_RECONCILE_MS },
    streamIdleTimeoutMs: e.STREAM_IDLE_TIMEOUT_MS,
    drain: { batchSize: e.DRAIN_BATCH_SIZE, intervalMs: e.DRAIN_INTERVAL_MS },
    writeBatchMax: e.WRITE_BATCH_MAX,
    keyCacheTtlMs: e.KEY_CACHE_TTL_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    rateLimits: e.RATE_LIMITS_ENABLED,
    idempotency: e.IDEMPOTENCY_ENABLED,
    graphql: { introspection: e.GRAPHQL_INTROSPECTION, maxDepth: e.GRAPHQL_MAX_DEPTH, maxCost: e.GRAPHQL_MAX_COST, maxAliases: e.GRAPHQL_MAX_ALIASES },
    embeddings: e.EMBEDDINGS_URL
      ? {
          kind: 'http',
          url: e.EMBEDDINGS_URL,
          apiKey: e.EMBEDDINGS_API_KEY,
          model: e.EMBEDDINGS_MODEL,
          dimensions: e.EMBEDDINGS_DIMENSIONS ?? 1536,
          timeoutMs: e.EMBEDDINGS_TIMEOUT_MS,
        }
      : { kind: 'lexical', dimensions: e.EMBEDDINGS_DIMENSIONS ?? 1024 },
    sessionSweep: { intervalMs: e.SESSION_SWEEP_INTERVAL_MS, batchSize: e.SESSION_SWEEP_BATCH },
    webhooks: {
      enabled: e.WEBHOOKS_ENABLED,
      allowPrivate: e.WEBHOOKS_ALLOW_PRIVATE,
      concurrency: e.WEBHOOK_CONCURRENCY,
      pollMs: e.WEBHOOK_POLL_MS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      maxResponseBytes: e.WEBHOOK_MAX_RESPONSE_BYTES,
      retry: { baseMs: e.WEBHOOK_RETRY_BASE_MS, maxMs: e.WEBHOOK_RETRY_MAX_MS, windowMs: e.WEBHOOK_RETRY_WINDOW_SECONDS * 1000 },
      disableAfterMs: e.WEBHOOK_DISABLE_AFTER_SECONDS * 1000,
    },
    demoWidget: e.DEMO_WIDGET ?? (env.NODE_ENV !== 'production' && !e.DATABASE_URL),
  };
}

/** What WORKERS > 1 needs: each worker is a process of its own, sharing what separate nodes share. */
function workersProblems(e: z.infer<typeof EnvSchema>, workers: string): string[] {
  const problems: string[] = [];
  if (!e.DATABASE_URL) problems.push(`DATABASE_URL: ${workers} needs PostgreSQL (the embedded PGlite is one process's database)`);
  if (!e.REDIS_URL) problems.push(`REDIS_URL: ${workers} needs Redis (the in-process bus reaches only its own process's subscribers)`);
  if (e.PORT === 0) problems.push(`PORT: ${workers} needs a fixed port (with 0 every worker would listen on a different free port)`);
  return problems;
}
