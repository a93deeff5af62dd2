import pg from 'pg';

/**
 * The store backends a suite runs against. PGlite always; PostgreSQL when TEST_DATABASE_URL (or
 * DATABASE_URL) points at a reachable server. Under CI=true a missing server is a failure, not a skip.
 */
export type Backend = 'pglite' | 'postgres';

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stategate_test';

let probe: Promise<string | null> | null = null;

/** Null when reachable with pgvector, else why not. */
export function postgresProblem(): Promise<string | null> {
  probe ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      const { rows } = await client.query("select 1 from pg_available_extensions where name = 'vector'");
      if (rows.length === 0) return `PostgreSQL at ${redact(POSTGRES_URL)} has no pgvector extension`;
      return null;
    } catch (error) {
      return `PostgreSQL at ${redact(POSTGRES_URL)} is unreachable: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probe;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}

/** Backends to run, decided before suites are declared (top-level await in the test file). */
export async function availableBackends(): Promise<Backend[]> {
  const problem = await postgresProblem();
  if (!problem) return ['pglite', 'postgres'];
  if (process.env.CI === 'true') throw new Error(`CI=true requires a real PostgreSQL: ${problem}`);
  process.stderr.write(`\n[stategate tests] SKIPPING the PostgreSQL backend: ${problem}\n  Start PostgreSQL with pgvector (bash .ci/services.sh) to run it.\n\n`);
  return ['pglite'];
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
