import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';

/**
 * Where Redis is: one server (`redis://`, `rediss://`) or a Redis Cluster given by one or more
 * seed nodes (`redis+cluster://[user:password@]host:port[,host:port…]`, `rediss+cluster://` for TLS).
 */
export type RedisTarget =
  { kind: 'single'; url: string } | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean };

export class RedisUrlError extends Error {}

export function parseRedisTarget(url: string): RedisTarget {
  const cluster = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?$/.exec(url);
  if (cluster) {
    const [, scheme, auth, hosts] = cluster;
    const nodes = hosts!.split(',').map((entry) => {
      const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry.trim());
      if (!match) throw new RedisUrlError(`Redis cluster node "${entry}" is not host:port`);
      return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
    });
    const [user, password] = auth ? splitAuth(auth) : [undefined, undefined];
    return {
      kind: 'cluster',
      nodes,
      tls: scheme === 'rediss',
      ...(user ? { username: user } : {}),
      ...(password ? { password } : {}),
    };
  }
  if (/^rediss?:\/\//.test(url)) return { kind: 'single', url };
  throw new RedisUrlError('REDIS_URL must start with redis://, rediss://, redis+cluster:// or rediss+cluster://');
}

function splitAuth(auth: string): [string | undefined, string | undefined] {
  const colon = auth.indexOf(':');
  if (colon < 0) return [undefined, decodeURIComponent(auth)];
  const user = decodeURIComponent(auth.slice(0, colon));
  return [user || undefined, decodeURIComponent(auth.slice(colon + 1))];
}

export interface RedisClientOptions {
  /** A command without an answer after this long fails instead of hanging (half-open sockets). */
  commandTimeoutMs: number;
  /** Shown by CLIENT LIST, to tell nodes and roles apart. */
  connectionName: string;
}

/**
 * Options for connections that must fail fast while Redis is away: no offline queue (a command
 * sent while disconnected is refused at once), no automatic resend of a command that may have run
 * (a publish must never be applied twice), and reconnection attempts every second at most.
 */
function failFastOptions(options: RedisClientOptions): RedisOptions {
  return {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(1000, options.commandTimeoutMs),
    retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    connectionName: options.connectionName,
    lazyConnect: true,
  };
}

/**
 * A client for commands (scripts, reads). Connects lazily: call `connect()` and await it.
 * On a cluster it also carries the sharded subscribers (one subscriber connection per primary,
 * used through SSUBSCRIBE), since those live beside the command connections anyway.
 */
export function createRedisClient(target: RedisTarget, options: RedisClientOptions): Redis | Cluster {
  if (target.kind === 'single') return new Redis(target.url, failFastOptions(options));
  return new Cluster(target.nodes, { ...clusterOptions(target, options), shardedSubscribers: true });
}

/**
 * For one server: a dedicated connection in subscriber mode, which ioredis resubscribes after
 * every reconnection. (A cluster subscribes through its command client, see createRedisClient.)
 */
export function createSubscriberClient(target: Extract<RedisTarget, { kind: 'single' }>, options: RedisClientOptions): Redis {
  return new Redis(target.url, { ...failFastOptions(options), autoResubscribe: true });
}

function clusterOptions(target: Extract<RedisTarget, { kind: 'cluster' }>, options: RedisClientOptions): ClusterOptions {
  const redisOptions: RedisOptions = {
    ...failFastOptions(options),
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
  return {
    redisOptions,
    enableOfflineQueue: false,
    lazyConnect: true,
    // Cluster-level retries (MOVED, ASK, CLUSTERDOWN) stay short: a write waits at most this long.
    maxRedirections: 4,
    retryDelayOnClusterDown: 100,
    retryDelayOnFailover: 100,
    clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    slotsRefreshTimeout: Math.max(1000, options.commandTimeoutMs),
  };
}

/**
 * Logs a client's connection trouble through pino, once when it starts and once when it ends.
 * Without an 'error' listener ioredis prints every failed reconnection raw on stderr.
 */
export function watchRedis(client: Redis | Cluster, log: Logger, role: string): void {
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) log.warn({ err: { message: error.message }, role }, 'redis connection error');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info({ role }, 'redis connection restored');
    down = false;
  });
}

/** Whether a client can take commands right now. */
export function isReady(client: Redis | Cluster): boolean {
  return client.status === 'ready';
}
