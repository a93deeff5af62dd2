/**
 * The SQL seam: one interface, one implementation per backend (PGlite embedded, PostgreSQL via pg).
 * Everything above it is written once in plain PostgreSQL SQL.
 */
export interface SqlExecutor {
  /**
   * One parameterised statement; rows as plain objects. A `name` makes it a prepared statement,
   * parsed once per connection (for hot statements whose planning costs more than running them).
   */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], name?: string): Promise<T[]>;
}

export interface SqlDriver extends SqlExecutor {
  readonly kind: 'pglite' | 'postgres';
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Refreshes planner statistics where the server does not (PGlite has no autovacuum): of these tables, or all. */
  maintain?(tables?: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
