import type { ApiKey, ApiKeyListInput, KEY_LIST_FIELDS, Page, SortOrder } from '../../../protocol/index.js';
import type { SqlDriver, SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, type ColumnMap, type ListInput } from '../query/filter.js';

interface ApiKeyRow {
  pk: number;
  id: string;
  name: string | null;
  key_hint: string;
  scopes: string[];
  created_at: Date;
  revoked_at: Date | null;
}

const KEY_COLUMNS = 'pk, id, name, key_hint, scopes, created_at, revoked_at';
const KEY_STATUS_SQL = "(case when revoked_at is null then 'active' else 'revoked' end)";
const KEY_LIST_COLUMNS: ColumnMap<typeof KEY_LIST_FIELDS> = {
  status: { column: KEY_STATUS_SQL, type: 'text' },
  name: { column: 'name', type: 'text' },
  created_at: { column: 'created_at', type: 'timestamptz' },
};
const KEY_DEFAULT_SORT: SortOrder = { field: 'created_at', descending: true };

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    hint: row.key_hint,
    scopes: row.scopes,
    status: row.revoked_at === null ? 'active' : 'revoked',
    created_at: iso(row.created_at),
    revoked_at: row.revoked_at === null ? null : iso(row.revoked_at),
  };
}

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
  rate_limit_per_minute: number | null;
  rate_limit_per_day: number | null;
}

/** Accounts and their API keys. Keys are stored as SHA-256 hashes; the secret is never kept. */
export class AccountRepo {
  constructor(private readonly db: SqlExecutor & Pick<SqlDriver, 'transaction'>) {}

  /**
   * Creates an account with its first key unless `when` no longer holds, as one transaction under
   * an advisory lock: nodes starting together on an empty database (all provisioning the same
   * STATEGATE_API_KEY, or each a development account) create it once, and leave no orphan account.
   * Returns false when there was nothing to do.
   */
  async provisionAccount(
    account: { id: string; name: string; plan: string },
    key: { id: string; hash: string; hint: string; scopes: string[] },
    when: 'key_unknown' | 'no_keys',
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.query(`select pg_advisory_xact_lock(hashtext('stategate.provision'))`);
      const [existing] =
        when === 'key_unknown' ? await tx.query('select 1 from api_keys where key_hash = $1', [key.hash]) : await tx.query('select 1 from api_keys limit 1');
      if (existing) return false;
      await tx.query('insert into accounts (id, name, plan) values ($1, $2, $3)', [account.id, account.name, account.plan]);
      await tx.query('insert into api_keys (id, account_id, key_hash, key_hint, name, scopes) values ($1, $2, $3, $4, null, $5)', [
        key.id,
        account.id,
        key.hash,
        key.hint,
        key.scopes,
      ]);
      return true;
    });
  }

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

  /** The first account created: the development account on a gateway started without a configured key. */
  async oldestAccount(): Promise<AccountRow | null> {
    const [row] = await this.db.query<AccountRow & { created_at: Date }>('select id, name, plan, created_at from accounts order by created_at, id limit 1');
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
    const [row] = await this.db.query<{
      id: string;
      account_id: string;
      scopes: string[];
      plan: string;
      revoked_at: Date | null;
      rate_limit_per_minute: number | null;
      rate_limit_per_day: number | null;
    }>(
      `select k.id, k.account_id, k.scopes, a.plan, k.revoked_at, a.rate_limit_per_minute, a.rate_limit_per_day
         from api_keys k join accounts a on a.id = k.account_id
        where k.key_hash = $1`,
      [hash],
    );
    if (!row) return null;
    return {
      id: row.id,
      account_id: row.account_id,
      scopes: row.scopes,
      plan: row.plan,
      revoked: row.revoked_at !== null,
      rate_limit_per_minute: row.rate_limit_per_minute,
      rate_limit_per_day: row.rate_limit_per_day,
    };
  }

  /** Returns the revoked key's hash so caches can drop it, or null when no such live key. */
  async revokeKey(accountId: string, keyId: string): Promise<string | null> {
    const [row] = await this.db.query<{ key_hash: string }>(
      'update api_keys set revoked_at = now() where id = $1 and account_id = $2 and revoked_at is null returning key_hash',
      [keyId, accountId],
    );
    return row?.key_hash ?? null;
  }

  /** Enterprise accounts: their own limits (null restores the plan's). */
  async setRateLimits(accountId: string, limits: { perMinute: number | null; perDay: number | null }): Promise<void> {
    await this.db.query('update accounts set rate_limit_per_minute = $2, rate_limit_per_day = $3 where id = $1', [accountId, limits.perMinute, limits.perDay]);
  }

  async getKey(accountId: string, keyId: string): Promise<ApiKey | null> {
    const [row] = await this.db.query<ApiKeyRow>(`select ${KEY_COLUMNS} from api_keys where id = $1 and account_id = $2`, [keyId, accountId]);
    return row ? toApiKey(row) : null;
  }

  async listKeys(accountId: string, input: ListInput<ApiKeyListInput>): Promise<Page<ApiKey>> {
    const query = withDefaultSort(input, KEY_DEFAULT_SORT);
    const params = new Params();
    const scope = `account_id = ${params.add(accountId)}`;
    const sql = keysetSql(KEY_LIST_COLUMNS, query, params);
    const rows = await this.db.query<ApiKeyRow & { sort_value: string }>(
      `select ${KEY_COLUMNS}, ${sql.sortSelect} from api_keys
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)} offset ${params.add(sql.offset)}`,
      params.values,
    );
    return keysetPage(rows, query, toApiKey);
  }

  async countKeys(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>('select count(*)::int as n from api_keys');
    return row?.n ?? 0;
  }
}
