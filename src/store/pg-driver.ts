import pg from 'pg';
import type { SqlDriver, SqlExecutor } from './driver.js';

// int8 (counts, identity keys) as JavaScript numbers: every value we store fits in 2^53.
pg.types.setTypeParser(20, (value) => Number(value));

/** A PostgreSQL server through a pg connection pool. */
export async function openPgDriver(options: { url: string; schema: string; poolSize: number }): Promise<SqlDriver> {
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
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  await pool.query('select 1');

  const executor = (target: pg.Pool | pg.PoolClient): SqlExecutor => ({
    async query<T>(sql: string, params: unknown[] = []) {
      const result = await target.query(sql, params);
      return result.rows as T[];
    },
  });
  return {
    kind: 'postgres',
    ...executor(pool),
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn(executor(client));
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
