import pg from 'pg';
import { UnavailableFailure } from '../kernel/errors.js';
import type { Logger } from '../logger.js';
import type { SqlDriver, SqlExecutor } from './driver.js';
import { isOutage, OutageTracker } from './outage.js';

// int8 (counts, identity keys) as JavaScript numbers: every value we store fits in 2^53.
pg.types.setTypeParser(20, (value) => Number(value));

const CONNECT_TIMEOUT_MS = 10_000;

/** A PostgreSQL server through a pg connection pool. */
export async function openPgDriver(options: { url: string; schema: string; poolSize: number; log?: Logger | undefined }): Promise<SqlDriver> {
  if (options.schema !== 'public') {
    const admin = new pg.Client({ connectionString: options.url });
    await admin.connect();
    try {
      // `if not exists` is not safe against a concurrent create: nodes starting together serialise here.
      await admin.query('begin');
      await admin.query(`select pg_advisory_xact_lock(hashtext('stategate.schema'))`);
      await admin.query(`create schema if not exists ${options.schema}`);
      await admin.query('commit');
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    // Iterative HNSW scans keep searching past ef_search when a filter (one session) drops rows.
    options: `-c search_path=${options.schema},public -c hnsw.iterative_scan=relaxed_order`,
    // A server that does not answer at all (a network partition) fails the request instead of hanging it.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  await pool.query('select 1');

  // While PostgreSQL is down every call answers 503 with a retry hint; logged once per outage.
  const outage = new OutageTracker(options.log);
  const executor = (target: pg.Pool | pg.PoolClient): SqlExecutor => ({
    query: <T>(sql: string, params: unknown[] = [], name?: string) =>
      outage.run(async () => (await target.query(name === undefined ? { text: sql, values: params } : { name, text: sql, values: params })).rows as T[]),
  });
  return {
    kind: 'postgres',
    ...executor(pool),
    async exec(sql) {
      await outage.run(() => pool.query(sql));
    },
    async transaction(fn) {
      const client = await outage.run(() => pool.connect());
      let broken: Error | undefined;
      // The pool listens for errors only on idle clients: a connection cut while this one is
      // checked out (between two statements) must not crash the process; the next query fails.
      const onError = (error: Error) => {
        broken = error;
      };
      client.on('error', onError);
      try {
        await client.query('begin');
        const result = await fn(executor(client));
        await client.query('commit');
        return result;
      } catch (error) {
        // A connection that died is destroyed, not handed to the next request.
        if (isOutage(error) || error instanceof UnavailableFailure) broken = error as Error;
        await client.query('rollback').catch(() => {});
        throw outage.failed(error);
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
