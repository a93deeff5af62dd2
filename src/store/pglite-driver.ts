import { mkdirSync } from 'node:fs';
import { parse, PGlite, protocol } from '@electric-sql/pglite';
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
  const named = preparedStatements(db);
  const executor = (target: Pick<PGlite, 'query'>, inTransaction: boolean): SqlExecutor => ({
    async query<T>(sql: string, params: unknown[] = [], name?: string) {
      if (name !== undefined) return named.query<T>(name, sql, params, inTransaction);
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
    ...executor(db, false),
    async exec(sql) {
      await db.exec(sql);
    },
    transaction: (fn) => db.transaction((tx) => fn(executor(tx, true))),
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

/**
 * Named prepared statements, which PGlite's `query` does not offer (it parses an unnamed statement,
 * so PostgreSQL plans it, every time: 2-4 ms for the message batch's statement against about 1 ms
 * to run it). Spoken in the wire protocol through PGlite's own serializers and result parser,
 * under the same locks its `query` takes (the transaction lock unless inside one, then the query lock).
 */
function preparedStatements(db: PGlite) {
  const { serialize } = protocol;
  /** Parameter type oids of each statement prepared on this connection. */
  const prepared = new Map<string, number[]>();
  const send = async (...messages: Uint8Array[]) => {
    const joined = new Uint8Array(messages.reduce((length, message) => length + message.length, 0));
    let offset = 0;
    for (const message of messages) {
      joined.set(message, offset);
      offset += message.length;
    }
    return (await db.execProtocol(joined)).messages;
  };
  const run = async <T>(name: string, sql: string, params: unknown[]): Promise<T[]> => {
    let types = prepared.get(name);
    if (!types) {
      types = parse.parseDescribeStatementResults(await send(serialize.parse({ name, text: sql }), serialize.describe({ type: 'S', name }), serialize.sync()));
      prepared.set(name, types);
    }
    const serializers = db.serializers as Record<number, ((value: unknown) => string) | undefined>;
    const values = params.map((value, index) => {
      if (value === null || value === undefined) return null;
      const serializer = serializers[types[index]!];
      return serializer ? serializer(value) : String(value);
    });
    const messages = await send(serialize.bind({ statement: name, values }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync());
    return parse.parseResults(messages, db.parsers)[0]!.rows as T[];
  };
  return {
    query<T>(name: string, sql: string, params: unknown[], inTransaction: boolean): Promise<T[]> {
      return inTransaction
        ? db._runExclusiveQuery(() => run<T>(name, sql, params))
        : db._runExclusiveTransaction(() => db._runExclusiveQuery(() => run<T>(name, sql, params)));
    },
  };
}
