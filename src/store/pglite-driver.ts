import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import type { SqlDriver, SqlExecutor } from './driver.js';

/** Embedded PostgreSQL (WebAssembly) in this process; `memory://` keeps nothing on disk. */
export async function openPgliteDriver(options: { dataDir: string; schema: string }): Promise<SqlDriver> {
  const inMemory = options.dataDir.startsWith('memory://');
  if (!inMemory) mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create({ ...(inMemory ? {} : { dataDir: options.dataDir }), extensions: { vector } });
  if (options.schema !== 'public') {
    await db.exec(`create schema if not exists ${options.schema}; set search_path to ${options.schema}, public;`);
  }
  const executor = (target: Pick<PGlite, 'query'>): SqlExecutor => ({
    async query<T>(sql: string, params: unknown[] = []) {
      const result = await target.query<T>(sql, params);
      return result.rows;
    },
  });
  return {
    kind: 'pglite',
    ...executor(db),
    async exec(sql) {
      await db.exec(sql);
    },
    transaction: (fn) => db.transaction((tx) => fn(executor(tx))),
    close: () => db.close(),
  };
}
