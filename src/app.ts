import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { MAX_STREAM_CHARS, type Agent } from '../protocol/index.js';
import { ClientTokens } from './auth/client-tokens.js';
import { KeyResolver } from './auth/key-resolver.js';
import { bootstrapKey, type IssuedKey } from './auth/provisioning.js';
import { openRevocations } from './auth/revocations.js';
import { openBus, type Bus } from './bus/index.js';
import { openSharedReadCache } from './cache/shared-read-cache.js';
import type { Config } from './config.js';
import { DemoWidget } from './demo/widget.js';
import { newId } from './kernel/ids.js';
import { Operations } from './pipeline/operations.js';
import { Core } from './gateway-core.js';
import { createRateLimiter, type RateLimiter } from './limits/index.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { handlers } from './operations/index.js';
import { Events } from './realtime/events.js';
import { PresenceRegistry } from './realtime/presence.js';
import { MemoryPresenceStore } from './realtime/presence-store.js';
import { RedisPresenceStore } from './realtime/redis-presence-store.js';
import { buildRealtime, type Realtime } from './realtime/services.js';
import { StreamRegistry } from './realtime/streams.js';
import { createRedisClient, parseRedisTarget, watchRedis } from './redis/connection.js';
import { SessionSweeper } from './sessions/sweeper.js';
import { openStore, type Store } from './store/store.js';
import { Server } from './transport/server.js';
import { uws } from './transport/uws.js';
import { webhookServices } from './webhooks/services.js';
import { WebhookWorker } from './webhooks/worker.js';
import type { WorkerLink } from './workers/supervisor-link.js';

/** The composition root: builds store, bus, operations and transports from one Config. */
export interface Gateway {
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  readonly store: Store;
  readonly bus: Bus;
  readonly log: Logger;
  /** Deletes expired sessions in the background. */
  readonly sweeper: SessionSweeper;
  /** Key created at this start (first start, or a configured key not yet known), else null. */
  readonly bootstrap: IssuedKey | null;
  readonly server: Server;
  /** The operation table, for embedding the gateway in process (benchmarks, tools). */
  readonly operations: Operations;
  /** Drains and stops; safe to call more than once. */
  stop(): Promise<void>;
}

/** How often expired idempotency records are deleted. */
const IDEMPOTENCY_SWEEP_MS = 15 * 60 * 1000;

export interface GatewayOptions {
  log?: Logger;
  /** Shares rate-limit counters between nodes; without it they live in this process. */
  redis?: Redis;
  /** Set when this process is one of WORKERS processes on a shared port, under a supervisor. */
  worker?: WorkerLink;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.log ?? createLogger(config.logLevel);
  log.info(
    { uws: uws.detail, native: uws.native },
    uws.native ? 'uWebSockets.js native binary loaded' : 'uWebSockets.js is NOT native: performance is degraded',
  );

  // Sources are read at scrape time; the server and feeds exist by then.
  let server: Server | null = null;
  let realtime: Realtime | null = null;
  const metrics = new Metrics({ connections: () => server?.connections ?? 0, followedStreams: () => realtime?.feeds.followed ?? 0 });
  options.worker?.shareMetrics(() => metrics.snapshot());
  const store = await openStore(config, { log, onBatchWritten: (rows) => metrics.writeBatchRows.observe(rows) });
  const bus = await openBus({ redisUrl: config.redisUrl, redis: config.redis, nodeName: `${hostname()}:${process.pid}`, log });
  const bootstrap = await bootstrapKey(store, config.bootstrapApiKey);
  const keys = new KeyResolver(store.accounts, { ttlMs: config.keyCacheTtlMs });
  const tokens = await ClientTokens.open(store);
  const events = new Events(store, bus, log, (ephemeral, count) => metrics.eventsPublished.inc({ ephemeral: String(ephemeral) }, count));
  const streams = new StreamRegistry({ store, events, log, idleTimeoutMs: config.streamIdleTimeoutMs, maxChars: MAX_STREAM_CHARS });
  // With REDIS_URL, shared state beside the bus (rate-limit counters, presence) goes through one
  // more connection of its own.
  const stateRedis = config.redisUrl ? await connectStateRedis(config, log) : undefined;
  const presence = new PresenceRegistry(
    stateRedis
      ? new RedisPresenceStore(stateRedis, { prefix: config.redis.keyPrefix, nodeId: `${hostname()}:${process.pid}:${newId('connection').slice(5)}` })
      : new MemoryPresenceStore(),
    events,
    (error) => log.warn({ err: error }, 'presence not updated'),
  );
  const limiterRedis = options.redis ?? (config.rateLimits ? stateRedis : undefined);
  const limiter: RateLimiter | null = config.rateLimits
    ? createRateLimiter({
        redis: limiterRedis,
        prefix: `${config.redis.keyPrefix}rl:`,
        onFallback: (failing, error) =>
          failing ? log.warn({ err: error }, 'Redis rate limiter unreachable: counting on this node') : log.info('Redis rate limiter back'),
      })
    : null;
  // A revocation reaches every node through the bus: each forgets the key at once and closes the
  // connections opened with it. Writes evict cached reads on every node the same way.
  const credentials = await openRevocations(bus, keys, { log, disconnect: (keyId) => server?.disconnectKey(keyId) });
  const agentCache = await openSharedReadCache<Agent>(bus, { max: 10_000, ttlMs: 30_000, log });
  // Delivery: feeds follow topics on the bus and fill from the event log; subscribers resume from it.
  realtime = buildRealtime({ store, bus, streams, presence, log, history: config.history, maxSubscriptions: config.ws.maxSubscriptions });
  const { feeds, delivery } = realtime;

  // Webhooks: every node delivers from the event log; the queue in the database shares the work.
  const webhookWorker = new WebhookWorker(store.webhookDeliveries, config.webhooks, log.child({ component: 'webhooks' }), metrics.registry);
  events.onCommitted((committed) => webhookWorker.eventsCommitted(committed));
  const operations = new Operations(handlers, {
    caches: { agents: agentCache },
    observe: ({ operation, transport, outcome, seconds }) => metrics.observeOperation(operation, transport, outcome, seconds),
    store,
    events,
    realtime: { streams, presence, tokens, delivery, authorizeTopic: realtime.authorize },
    webhooks: webhookServices(store.webhookDeliveries, config.webhooks, () => webhookWorker.poke()),
    log,
    checkOutput: process.env.NODE_ENV !== 'production',
    credentials,
    limiter,
    idempotency: config.idempotency ? store.idempotency : null,
  });
  const idempotencySweep = setInterval(() => {
    store.idempotency.sweep().then(
      (deleted) => log.debug({ deleted }, 'expired idempotency keys deleted'),
      (error: unknown) => log.warn({ err: error }, 'idempotency sweep failed'),
    );
  }, IDEMPOTENCY_SWEEP_MS);
  idempotencySweep.unref();
  // The event log keeps the resume window; older events are trimmed (by every node: the delete is idempotent).
  const eventTrim = setInterval(
    () => {
      store.events.trim(new Date(Date.now() - config.history.ttlMs)).then(
        (deleted) => log.debug({ deleted }, 'old events trimmed from the event log'),
        (error: unknown) => log.warn({ err: error }, 'event log trim failed'),
      );
    },
    Math.min(60_000, Math.max(1000, config.history.ttlMs / 10)),
  );
  eventTrim.unref();
  const sweeper = new SessionSweeper({ events, log, ...config.sessionSweep });
  sweeper.start();
  webhookWorker.start();

  const core = new Core({ operations, keys, tokens, streams, delivery, feeds, store, bus, metrics, worker: options.worker ?? null });

  server = new Server(core, {
    host: config.host,
    port: config.port,
    maxBodyBytes: config.http.maxBodyBytes,
    ws: config.ws,
    graphql: config.graphql,
    drain: config.drain,
    demoWidget: config.demoWidget
      ? new DemoWidget({ store, operations, limiter, configuredKey: config.bootstrapApiKey, verifyToken: (token) => tokens.verify(token) })
      : null,
    log,
    sharedPort: options.worker !== undefined,
  });
  const port = await server.listen();
  const displayHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  log.info({ port, host: config.host, store: store.kind, bus: bus.kind }, 'stategate listening');

  let stopping: Promise<void> | null = null;
  return {
    port,
    url: `http://${displayHost}:${port}`,
    wsUrl: `ws://${displayHost}:${port}/v1/ws`,
    store,
    bus,
    log,
    bootstrap,
    server,
    sweeper,
    operations,
    stop() {
      stopping ??= (async () => {
        core.draining = true;
        clearInterval(idempotencySweep);
        clearInterval(eventTrim);
        await server.close(config.shutdownGraceMs);
        await sweeper.stop();
        await webhookWorker.stop();
        await streams.drain();
        realtime.stop();
        await limiter?.close();
        await presence.close();
        stateRedis?.disconnect();
        await store.close();
        await bus.close();
        log.info('stategate stopped');
      })();
      return stopping;
    },
  };
}

async function connectStateRedis(config: Config, log: Logger): Promise<Redis> {
  const client = createRedisClient(parseRedisTarget(config.redisUrl!), {
    commandTimeoutMs: config.redis.commandTimeoutMs,
    connectionName: `stategate-state-${hostname()}-${process.pid}`,
  });
  watchRedis(client, log, 'state');
  // Not reachable yet is fine: the limiter counts locally until it is, presence catches up.
  await client.connect().catch(() => {});
  return client as Redis;
}
