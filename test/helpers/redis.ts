import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/**
 * Redis for the tests: the shared server at TEST_REDIS_URL (probed once), and private
 * redis-server processes on loopback that a test may stop and restart (fault tests, clusters).
 * Under CI=true a missing Redis is a failure, elsewhere the Redis suites are skipped with a message.
 */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';

let probe: Promise<string | null> | null = null;

/** Null when the shared Redis answers PING, else why not. */
export function redisProblem(): Promise<string | null> {
  probe ??= (async () => {
    const client = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return null;
    } catch (error) {
      return `Redis at ${REDIS_URL} is unreachable: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      client.disconnect();
    }
  })();
  return probe;
}

/** Whether the Redis suites run: true, false after a printed skip notice, or throws under CI. */
export async function redisAvailable(what: string): Promise<boolean> {
  const problem = await redisProblem();
  if (!problem) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true requires Redis for ${what}: ${problem}`);
  process.stderr.write(`\n[stategate tests] SKIPPING ${what}: ${problem}\n  Start Redis (bash .ci/services.sh) to run it.\n\n`);
  return false;
}

/** A unique key prefix, so runs sharing one Redis never see each other's topics. */
export function uniquePrefix(label: string): string {
  return `sgtest:${label}:${process.pid}:${Date.now().toString(36)}:`;
}

/** Deletes a test run's keys from a single Redis server (counters would otherwise live a day). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** A TCP port free on loopback right now (and, when asked, port + offset too). */
export async function freePort(alsoFreeAtOffset?: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (alsoFreeAtOffset === undefined) return port;
    if (
      port + alsoFreeAtOffset < 65536 &&
      (await listenOnce(port + alsoFreeAtOffset).then(
        () => true,
        () => false,
      ))
    )
      return port;
  }
  throw new Error('no free port pair found');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : port));
    });
  });
}

/** One redis-server process on loopback, keeping nothing on disk; can be stopped and started again. */
export class RedisProcess {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'sg-redis-'));

  constructor(
    readonly port: number,
    private readonly extraArgs: string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 5000): Promise<void> {
    if (this.child) return;
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extraArgs];
    const child = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (this.child === child) this.child = null;
    });
    await waitForPing(this.port, timeoutMs);
  }

  /** Stops the server; with `hard`, by SIGKILL (an abrupt crash rather than a shutdown). */
  async stop(options: { hard?: boolean } = {}): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(options.hard ? 'SIGKILL' : 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    this.child = null;
  }

  async destroy(): Promise<void> {
    await this.stop({ hard: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (error) {
      lastError = error;
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not start in ${timeoutMs} ms: ${String(lastError)}`);
}

// Never leave a server behind, even when a suite dies half-way.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * A connected client for tests that use Redis directly, or null (with a message) when it is
 * unreachable outside CI; under CI=true that is a failure.
 */
export async function connectTestRedis(): Promise<Redis | null> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    const problem = `Redis at ${REDIS_URL} is unreachable: ${error instanceof Error ? error.message : String(error)}`;
    if (process.env.CI === 'true') throw new Error(`CI=true requires Redis: ${problem}`, { cause: error });
    process.stderr.write(`\n[stategate tests] SKIPPING the Redis cases: ${problem}\n  Start Redis (bash .ci/services.sh) to run them.\n\n`);
    return null;
  }
}
