import type { SqlExecutor } from '../driver.js';

/** What `begin` found for a key: it is ours to run now, or it belongs to an earlier request. */
export type IdempotencyClaim =
  { kind: 'started' } | { kind: 'replay'; status: number; response: string } | { kind: 'running' } | { kind: 'mismatch'; operation: string };

export interface IdempotencyStore {
  /** Claims the key for this request, unless an unexpired record of it exists. */
  begin(input: { accountId: string; key: string; operation: string; fingerprint: string; ttlMs: number; lockMs: number }): Promise<IdempotencyClaim>;
  /** Stores the finished response, to be replayed until the record expires. */
  complete(accountId: string, key: string, status: number, response: string): Promise<void>;
  /** Forgets a claim whose outcome should not be replayed (validation or server errors). */
  release(accountId: string, key: string): Promise<void>;
  /** Deletes expired records; returns how many. */
  sweep(): Promise<number>;
}

/**
 * Idempotency records in PostgreSQL, so they survive a restart and are shared by every node.
 * The claim is one INSERT … ON CONFLICT: of two concurrent requests with one key, exactly one
 * inserts (or takes over an expired record, or one whose runner died holding the lock).
 */
export class SqlIdempotencyStore implements IdempotencyStore {
  constructor(private readonly db: SqlExecutor) {}

  async begin(input: { accountId: string; key: string; operation: string; fingerprint: string; ttlMs: number; lockMs: number }): Promise<IdempotencyClaim> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.db.query(
        `insert into idempotency_keys (account_id, key, operation, fingerprint, locked_until, expires_at)
         values ($1, $2, $3, $4, now() + $5 * interval '1 millisecond', now() + $6 * interval '1 millisecond')
         on conflict (account_id, key) do update
            set operation = excluded.operation, fingerprint = excluded.fingerprint, state = 'running',
                status = null, response = null, created_at = now(),
                locked_until = excluded.locked_until, expires_at = excluded.expires_at
          where idempotency_keys.expires_at <= now()
             or (idempotency_keys.state = 'running' and idempotency_keys.locked_until <= now())
         returning 1`,
        [input.accountId, input.key, input.operation, input.fingerprint, input.lockMs, input.ttlMs],
      );
      if (claimed.length > 0) return { kind: 'started' };
      const [row] = await this.db.query<{ operation: string; fingerprint: string; state: string; status: number | null; response: string | null }>(
        'select operation, fingerprint, state, status, response from idempotency_keys where account_id = $1 and key = $2',
        [input.accountId, input.key],
      );
      // Released between the two statements: claim again.
      if (!row) continue;
      if (row.operation !== input.operation || row.fingerprint !== input.fingerprint) return { kind: 'mismatch', operation: row.operation };
      if (row.state === 'done' && row.status !== null && row.response !== null) return { kind: 'replay', status: row.status, response: row.response };
      return { kind: 'running' };
    }
    return { kind: 'running' };
  }

  async complete(accountId: string, key: string, status: number, response: string): Promise<void> {
    await this.db.query(`update idempotency_keys set state = 'done', status = $3, response = $4 where account_id = $1 and key = $2`, [
      accountId,
      key,
      status,
      response,
    ]);
  }

  async release(accountId: string, key: string): Promise<void> {
    await this.db.query(`delete from idempotency_keys where account_id = $1 and key = $2 and state = 'running'`, [accountId, key]);
  }

  async sweep(): Promise<number> {
    const rows = await this.db.query('delete from idempotency_keys where expires_at <= now() returning 1');
    return rows.length;
  }
}
