import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import type { SqlDriver, SqlExecutor } from './driver.js';

const ANALYZE_INTERVAL_MS = 30_000;

/** Embedded PostgreSQL (WebAssembly) in this process; `memory://` keeps nothing on disk. */
export async function openPgliteDriver(options: { dataDir: string; schema: string }): Promise<SqlDriver> {
  const inMemory = options.dataDir.startsWith('memory://');
  let lock: DataDirLock | null = null;
  if (!inMemory) {
    mkdirSync(options.dataDir, { recursive: true });
    lock = lockDataDir(options.dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create({ ...(inMemory ? {} : { dataDir: options.dataDir }), extensions: { vector } });
  } catch (error) {
    lock?.release();
    throw error;
  }
  // In memory, zero-filling each new 16 MB WAL segment (to reserve its disk space) reserves
  // nothing and cost 7-10% of a message batch's CPU (the file system is JavaScript).
  if (inMemory) await db.exec('set wal_init_zero = off');
  if (options.schema !== 'public') {
    await db.exec(`create schema if not exists ${options.schema}; set search_path to ${options.schema}, public;`);
  }
  const executor = (target: Pick<PGlite, 'query'>): SqlExecutor => ({
    async query<T>(sql: string, params: unknown[] = []) {
      const result = await target.query<T>(sql, params);
      return result.rows;
    },
  });
  // PGlite runs no autovacuum, so nothing refreshes planner statistics: without them a list of
  // one conversation's messages is planned as a scan of every message. Analyze now and then.
  const analyze = setInterval(() => {
    db.exec('analyze').catch(() => {});
  }, ANALYZE_INTERVAL_MS);
  analyze.unref();
  return {
    kind: 'pglite',
    ...executor(db),
    async exec(sql) {
      await db.exec(sql);
    },
    transaction: (fn) => db.transaction((tx) => fn(executor(tx))),
    async maintain(tables) {
      await db.exec(tables && tables.length > 0 ? `analyze ${tables.join(', ')}` : 'analyze');
    },
    async close() {
      clearInterval(analyze);
      try {
        await db.close();
      } finally {
        lock?.release();
      }
    },
  };
}
