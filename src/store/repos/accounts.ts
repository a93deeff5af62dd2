import type { SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';

export interface AccountRow {
  id: string;
  name: string;
  plan: string;
  created_at: string;
}

export interface ApiKeyRecord {
  id: string;
  account_id: string;
  scopes: string[];
  plan: string;
  revoked: boolean;
}

/** Accounts and their API keys. Keys are stored as SHA-256 hashes; the secret is never kept. */
export class AccountRepo {
  constructor(private readonly db: SqlExecutor) {}

  async createAccount(input: { id: string; name: string; plan: string }): Promise<AccountRow> {
    const [row] = await this.db.query<AccountRow & { created_at: Date }>(
      'insert into accounts (id, name, plan) values ($1, $2, $3) returning id, name, plan, created_at',
      [input.id, input.name, input.plan],
    );
    return { ...row!, created_at: iso(row!.created_at) };
  }

  async getAccount(id: string): Promise<AccountRow | null> {
    const [row] = await this.db.query<AccountRow & { created_at: Date }>('select id, name, plan, created_at from accounts where id = $1', [id]);
    return row ? { ...row, created_at: iso(row.created_at) } : null;
  }

  async insertKey(input: { id: string; accountId: string; hash: string; hint: string; name: string | null; scopes: string[] }): Promise<void> {
    await this.db.query('insert into api_keys (id, account_id, key_hash, key_hint, name, scopes) values ($1, $2, $3, $4, $5, $6)', [
      input.id,
      input.accountId,
      input.hash,
      input.hint,
      input.name,
      input.scopes,
    ]);
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | null> {
    const [row] = await this.db.query<{ id: string; account_id: string; scopes: string[]; plan: string; revoked_at: Date | null }>(
      `select k.id, k.account_id, k.scopes, a.plan, k.revoked_at
         from api_keys k join accounts a on a.id = k.account_id
        where k.key_hash = $1`,
      [hash],
    );
    if (!row) return null;
    return { id: row.id, account_id: row.account_id, scopes: row.scopes, plan: row.plan, revoked: row.revoked_at !== null };
  }

  /** Returns the revoked key's hash so caches can drop it, or null when no such live key. */
  async revokeKey(accountId: string, keyId: string): Promise<string | null> {
    const [row] = await this.db.query<{ key_hash: string }>(
      'update api_keys set revoked_at = now() where id = $1 and account_id = $2 and revoked_at is null returning key_hash',
      [keyId, accountId],
    );
    return row?.key_hash ?? null;
  }

  async countKeys(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>('select count(*)::int as n from api_keys');
    return row?.n ?? 0;
  }
}
