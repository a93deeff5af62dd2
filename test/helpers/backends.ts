import pg from 'pg';

/**
 * The store backends a suite runs against. PGlite always; PostgreSQL when TEST_DATABASE_URL (or
 * DATABASE_URL) points at a reachable server. Under CI=true a missing server is a failure, not a skip.
 */
export type Backend = 'pglite' | 'postgres';

export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/stategate_test';

let probe: Promise<string | null> | null = null;

/** Null when reachable with pgvector, else why not. A missing test database is created. */
export function postgresProblem(): Promise<string | null> {
  probe ??= (async () => {
    try {
      if ((await checkServer()) === 'no_database') {
        await createDatabase();
        if ((await checkServer()) === 'no_database') return `PostgreSQL at ${redact(POSTGRES_URL)} has no test database and it could not be created`;
      }
      return null;
    } catch (error) {
      return `PostgreSQL at ${redact(POSTGRES_URL)} ${error instanceof Error ? error.message : String(error)}`;
    }
  })();
  return probe;
}

/** Resolves when usable; 'no_database' when the server runs without the test database; throws why not otherwise. */
async function checkServer(): Promise<'ok' | 'no_database'> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (error) {
    // 3D000: invalid_catalog_name, the database does not exist.
    if ((error as { code?: unknown }).code === '3D000') return 'no_database';
    throw new Error(`is unreachable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  try {
    const { rows } = await client.query("select 1 from pg_available_extensions where name = 'vector'");
    if (rows.length === 0) throw new Error('has no pgvector extension');
    return 'ok';
  } finally {
    await client.end().catch(() => {});
  }
}

async function createDatabase(): Promise<void> {
  const url = new URL(POSTGRES_URL);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
  await admin.connect();
  try {
    await admin.query(`create database "${name.replace(/"/g, '""')}"`);
    process.stderr.write(`\n[stategate tests] created the test database ${name} at ${redact(POSTGRES_URL)}\n`);
  } catch (error) {
    // 42P04: another test worker created it first.
    if ((error as { code?: unknown }).code !== '42P04') throw error;
  } finally {
    await admin.end();
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
}

/** Backends to run, decided before suites are declared (top-level await in the test file). */
export async function availableBackends(): Promise<Backend[]> {
  const problem = await postgresProblem();
  if (!problem) return ['pglite', 'postgres'];
  if (process.env.CI === 'true') throw new Error(`CI=true requires a real PostgreSQL: ${problem}`);
  process.stderr.write(
    `\n[stategate tests] SKIPPING the PostgreSQL backend: ${problem}\n` +
      `  To run it: \`bash .ci/services.sh\` (installs and starts PostgreSQL with pgvector and Redis on Debian and creates stategate_test),\n` +
      `  or point TEST_DATABASE_URL at a PostgreSQL with pgvector; the test database is created when the server is reachable.\n\n`,
  );
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
