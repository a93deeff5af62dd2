import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * The PostgreSQL and Redis a multi-process gateway shares (the scale scenario): made ready,
 * watched (their processes' CPU is measured beside the gateway's), and cleaned after each run.
 */
export const BENCH_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/stategate_bench';
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

/** A URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]+@/, '//$1:***@');
}

/** Creates the database when it is missing, and pgvector in it (the gateway's schema needs it). */
export async function ensureDatabase(url: string, log: (line: string) => void): Promise<void> {
  const problem = (error: unknown) =>
    new Error(`PostgreSQL at ${redact(url)} (--database-url): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (error) {
    // 3D000: the database does not exist (the server is there).
    if ((error as { code?: unknown }).code !== '3D000') throw problem(error);
    await createDatabase(url).catch((cause: unknown) => {
      throw problem(cause);
    });
    log(`created the database ${databaseName(url)} at ${redact(url)}`);
    return ensureDatabase(url, log);
  }
  try {
    await client.query('create extension if not exists vector');
  } catch (error) {
    throw problem(error);
  } finally {
    await client.end().catch(() => {});
  }
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

async function createDatabase(url: string): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    await client.query(`create database "${databaseName(url).replace(/"/g, '""')}"`);
  } catch (error) {
    // 42P04: created meanwhile by someone else.
    if ((error as { code?: unknown }).code !== '42P04') throw error;
  } finally {
    await client.end();
  }
}

/** Drops one run's schema over a connection of its own. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const watch = await PostgresWatch.open(url);
  try {
    await watch.dropSchema(schema);
  } finally {
    await watch.close();
  }
}

/** One connection to the database for the whole scenario: backends to measure, schemas to drop. */
export class PostgresWatch {
  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<PostgresWatch> {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    await client.connect();
    return new PostgresWatch(client);
  }

  /**
   * Server processes serving this database's clients (the gateways' pools), not this watcher.
   * Other clients of the same database would count too: the scale scenario has one of its own.
   */
  async backendPids(): Promise<number[]> {
    const { rows } = await this.client.query<{ pid: number }>(
      "select pid from pg_stat_activity where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()",
    );
    return rows.map((row) => row.pid);
  }

  async dropSchema(schema: string): Promise<void> {
    if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`not a schema name: ${schema}`);
    await this.client.query(`drop schema if exists ${schema} cascade`);
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

/** The Redis the gateways share: its process (when it runs on this machine) and a run's keys. */
export class RedisWatch {
  private constructor(
    private readonly client: Redis,
    /** Null when Redis runs elsewhere (another host, a container's own process ids). */
    readonly pid: number | null,
  ) {}

  static async open(url: string): Promise<RedisWatch> {
    const client = new Redis(url, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      const info = await client.info('server');
      const pid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? NaN);
      return new RedisWatch(client, Number.isInteger(pid) && isRedisProcess(pid) ? pid : null);
    } catch (error) {
      client.disconnect();
      throw new Error(`Redis at ${redact(url)} (--redis-url): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /** Deletes a run's keys (the gateway keeps event logs and counters under its prefix). */
  async deleteKeys(prefix: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.client.unlink(...keys);
    } while (cursor !== '0');
  }

  close(): void {
    this.client.disconnect();
  }
}

/** The pid Redis reports is ours to read only if /proc shows a redis-server under it. */
function isRedisProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis');
  } catch {
    return false;
  }
}
