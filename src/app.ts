import type { Redis } from 'ioredis';
import { contracts, MAX_STREAM_CHARS, OPERATION_NAMES, parseTopic, type Agent, type OperationName } from '../protocol/index.js';
import { ReadCache } from './cache/read-cache.js';
import { ClientTokens, looksLikeToken } from './auth/client-tokens.js';
import { KeyResolver } from './auth/key-resolver.js';
import { bootstrapKey, type IssuedKey } from './auth/provisioning.js';
import { hostname } from 'node:os';
import { createRedisClient, parseRedisTarget, watchRedis } from './redis/connection.js';
import { announcingBus, openBus, requireBus, type Bus } from './bus/index.js';
import { openSystemChannel } from './bus/system-channel.js';
import type { Config } from './config.js';
import { ApiFailure } from './core/errors.js';
import { newId } from './core/ids.js';
import { Operations } from './core/operations.js';
import { resolveApiVersion } from './core/versioning.js';
import { createRateLimiter, type RateLimiter } from './limits/index.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { handlers } from './operations/index.js';
import { PresenceRegistry } from './realtime/presence.js';
import { MemoryPresenceStore } from './realtime/presence-store.js';
import { RedisPresenceStore } from './realtime/redis-presence-store.js';
import { EventPublisher } from './realtime/publisher.js';
import { snapshotsFromEvents } from './realtime/stream-snapshots.js';
import { StreamRegistry } from './realtime/streams.js';
import { authorizeTopic } from './realtime/subscriptions.js';
import { SessionSweeper } from './sessions/sweeper.js';
import { openStore, type Store } from './store/store.js';
import type { GatewayCore, RouteSpec } from './transport/core.js';
import { Server } from './transport/server.js';
import { uws } from './transport/uws.js';

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

/** Bus topic on which nodes tell each other about revoked keys (no account topic can look like it). */
const REVOCATIONS_TOPIC = '_system/credentials';

/** Bus topic on which nodes tell each other to drop cached reads. */
const CACHE_TOPIC = '_system/cache';

/** How often expired idempotency records are deleted. */
const IDEMPOTENCY_SWEEP_MS = 15 * 60 * 1000;

export interface GatewayOptions {
  log?: Logger;
  /** Shares rate-limit counters between nodes; without it they live in this process. */
  redis?: Redis;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const log = options.log ?? createLogger(config.logLevel);
  log.info({ uws: uws.detail, native: uws.native }, uws.native ? 'uWebSockets.js native binary loaded' : 'uWebSockets.js is NOT native: performance is degraded');

  // Sources are read at scrape time; the server exists by then.
  let server: Server | null = null;
  const metrics = new Metrics({ connections: () => server?.connections ?? 0, followedStreams: () => server?.followedStreams ?? 0 });
  const store = await openStore(config, { log, onBatchWritten: (rows) => metrics.writeBatchRows.observe(rows) });
  const bus = await openBus({
    redisUrl: config.redisUrl,
    history: config.history,
    redis: config.redis,
    nodeName: `${hostname()}:${process.pid}`,
    log,
  });
  const bootstrap = await bootstrapKey(store, config.bootstrapApiKey);
  const keys = new KeyResolver(store.accounts, { ttlMs: config.keyCacheTtlMs });
  const tokens = await ClientTokens.open(store);
  const events = new EventPublisher(announcingBus(bus), (ephemeral, count) => metrics.eventsPublished.inc({ ephemeral: String(ephemeral) }, count));
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
  // With REDIS_URL, rate-limit counters are shared by every node through a connection of their own.
  const limiterRedis = options.redis ?? (config.rateLimits ? stateRedis : undefined);
  const limiter: RateLimiter | null = config.rateLimits
    ? createRateLimiter({
        redis: limiterRedis,
        prefix: `${config.redis.keyPrefix}rl:`,
        onFallback: (failing, error) =>
          failing ? log.warn({ err: error }, 'Redis rate limiter unreachable: counting on this node') : log.info('Redis rate limiter back'),
      })
    : null;
  // Writes announce their change on the bus: while it is down they are refused before committing.
  // (tokens.create announces nothing.)
  const writes = new Set(
    OPERATION_NAMES.filter((name) => contracts[name].http.method !== 'GET' && name !== 'tokens.create'),
  );
  // A revocation reaches every node through the bus: each forgets the key at once and closes the
  // WebSocket connections opened with it. Writes evict cached reads on every node the same way.
  const revoked = await openSystemChannel<{ key_id: string; key_hash: string }>(bus, {
    topic: REVOCATIONS_TOPIC,
    log,
    onMessage: ({ key_id, key_hash }) => {
      keys.revoke(key_id, key_hash);
      server?.disconnectKey(key_id);
    },
  });
  const credentials = {
    isRevoked: (keyId: string) => keys.isRevoked(keyId),
    revoke(keyId: string, hash: string) {
      keys.revoke(keyId, hash);
      server?.disconnectKey(keyId);
      revoked({ key_id: keyId, key_hash: hash });
    },
  };
  let agentCache: ReadCache<Agent> | null = null;
  const evicted = await openSystemChannel<{ key: string }>(bus, { topic: CACHE_TOPIC, log, onMessage: ({ key }) => agentCache?.evict(key) });
  agentCache = new ReadCache<Agent>({ max: 10_000, ttlMs: 30_000 }, (key) => evicted({ key }));
  const operations = new Operations(handlers, {
    caches: { agents: agentCache },
    observe: ({ operation, transport, outcome, seconds }) => {
      metrics.operations.inc({ operation, transport, outcome });
      metrics.operationSeconds.observe({ transport }, seconds);
    },
    admit: (name) => {
      if (writes.has(name as OperationName)) requireBus(bus);
    },
    store,
    events,
    realtime: { streams, presence, tokens, authorizeTopic: (principal, topic) => authorizeTopic(store, principal, topic) },
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
  let draining = false;
  const sweeper = new SessionSweeper({ sessions: store.sessions, events, log, ...config.sessionSweep });
  sweeper.start();

  const routes: RouteSpec[] = OPERATION_NAMES.map((name) => {
    const { method, path, status } = contracts[name].http;
    return { name, method, path, status: status ?? 200 };
  });

  const core: GatewayCore = {
    routes,
    async authenticate(credential) {
      if (credential && looksLikeToken(credential)) {
        const principal = await tokens.verify(credential);
        if (!principal) throw new ApiFailure('INVALID_API_KEY', 'Client token is invalid or expired', { suggestion: 'Mint a new token with tokens.create' });
        return principal;
      }
      const principal = credential ? await keys.resolve(credential) : null;
      if (!principal) {
        throw new ApiFailure('INVALID_API_KEY', credential ? 'API key is invalid or revoked' : 'API key is missing', {
          suggestion: 'Send the key as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
        });
      }
      return principal;
    },
    invoke: (name, input, origin) => operations.invoke(name, input, origin),
    execute: (name, input, origin) => operations.execute(name, input, origin),
    resolveApiVersion,
    connectionClosed: (connectionId) => streams.connectionClosed(connectionId),
    presence(principal, topic, joined) {
      // Presence is about who is in a conversation or session, not who follows an agent or the account.
      const kind = parseTopic(topic)?.kind;
      if (kind !== 'conversation' && kind !== 'session') return;
      if (joined) presence.join(principal.accountId, topic, principal.subject);
      else presence.leave(principal.accountId, topic, principal.subject);
    },
    async streamSnapshots(principal, topic, key) {
      const parsed = parseTopic(topic);
      if (parsed?.kind !== 'conversation') return [];
      // This node's own streams from its registry; others' rebuilt from the topic's window.
      const local = streams.snapshots(principal.accountId, parsed.id);
      const owned = new Set(local.map((snapshot) => snapshot.stream_id));
      const elsewhere = snapshotsFromEvents(await bus.recent(key)).filter((snapshot) => !owned.has(snapshot.stream_id));
      return [...local, ...elsewhere];
    },
    authorizeTopic: (principal, topic) => authorizeTopic(store, principal, topic),
    follow: (key, listener) => bus.subscribe(key, listener),
    position: (key) => bus.position(key),
    history: (key, since, epoch) => bus.history(key, since, epoch),
    async readiness() {
      const busHealth = bus.health();
      const checks: Record<string, string> = { store: 'ok', bus: busHealth.ok ? bus.kind : busHealth.detail, uws: uws.native ? 'native' : 'fallback' };
      if (draining) return { ready: false, checks: { ...checks, state: 'draining' } };
      try {
        await store.ping();
      } catch {
        return { ready: false, checks: { ...checks, store: 'unreachable' } };
      }
      return { ready: busHealth.ok, checks };
    },
    metrics: () => metrics.text(),
    newRequestId: () => newId('request'),
    newConnectionId: () => newId('connection'),
  };

  server = new Server(core, {
    host: config.host,
    port: config.port,
    maxBodyBytes: config.http.maxBodyBytes,
    ws: config.ws,
    drain: config.drain,
    log,
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
        draining = true;
        clearInterval(idempotencySweep);
        await server.close(config.shutdownGraceMs);
        await sweeper.stop();
        await streams.drain();
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
