import type { SqlDriver } from '../driver.js';
import { foundation } from './001_foundation.js';
import { conventions } from './003_conventions.js';
import { sessions } from './002_sessions.js';
import { realtime } from './004_realtime.js';
import { eventLog } from './005_event_log.js';
import { compat } from './006_compat.js';
import { commerceWebhooks } from './007_commerce_webhooks.js';
import type { Migration } from './migration.js';

/**
 * Schema migrations, applied in order once each, under an advisory lock so that several gateway
 * nodes starting together do not race. One file per migration; list it here.
 */
export const MIGRATIONS: Migration[] = [foundation, sessions, conventions, realtime, eventLog, compat, commerceWebhooks];

export async function migrate(driver: SqlDriver): Promise<number[]> {
  return driver.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(hashtext('stategate.migrate'))`);
    // pgvector lives in public so that every schema (one per test run) shares it. Under the lock:
    // `if not exists` does not protect against nodes creating it at the same moment.
    await tx.query('create extension if not exists vector with schema public');
    await tx.query(`create table if not exists schema_migrations (id integer primary key, name text not null, applied_at timestamptz not null default now())`);
    const done = new Set((await tx.query<{ id: number }>('select id from schema_migrations')).map((row) => row.id));
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.id)) continue;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query('insert into schema_migrations (id, name) values ($1, $2)', [migration.id, migration.name]);
      applied.push(migration.id);
    }
    return applied;
  });
}

/** Migrations hold no functions or quoted semicolons, so splitting on `;` is exact. */
function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}
