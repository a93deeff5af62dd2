import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { bootstrapKey } from '../../src/auth/provisioning.js';
import { generateApiKey, hashApiKey } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/store/store.js';
import { availableBackends, dropSchema, POSTGRES_URL } from '../helpers/backends.js';

/**
 * Issue 16, defect 5: nodes started together with STATEGATE_API_KEY on an empty database crashed
 * on api_keys_key_hash_key (2 of 3) and left orphan accounts. Provisioning is now one transaction
 * under an advisory lock: exactly one node creates the account, the others find it.
 */
const backends = await availableBackends();

async function accounts(store: Store): Promise<{ name: string; keys: number }[]> {
  // Through a repo-level query: the test reads the same tables the gateway writes.
  const db = (store.accounts as unknown as { db: { query<T>(sql: string): Promise<T[]> } }).db;
  return db.query<{ name: string; keys: number }>(
    'select a.name, (select count(*)::int from api_keys k where k.account_id = a.id) as keys from accounts a order by a.created_at',
  );
}

describe.each(backends)('provisioning on %s (defect 5)', (backend) => {
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });

  /** Three "nodes" on one empty database: three stores (three pools) on PostgreSQL, one PGlite shared. */
  async function nodes(): Promise<Store[]> {
    if (backend === 'pglite') {
      const store = await openStore(loadConfig({ DATA_DIR: 'memory://' }));
      return [store, store, store];
    }
    const schema = `t_${randomBytes(6).toString('hex')}`;
    schemas.push(schema);
    const config = loadConfig({ DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '2' });
    return Promise.all([openStore(config), openStore(config), openStore(config)]);
  }

  async function close(stores: Store[]): Promise<void> {
    for (const store of new Set(stores)) await store.close();
  }

  it('creates the configured key once when nodes start together, with no orphan account', async () => {
    const stores = await nodes();
    try {
      const key = generateApiKey();
      for (let round = 0; round < 3; round++) {
        const outcomes = await Promise.allSettled(stores.map((store) => bootstrapKey(store, key)));
        expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
        const created = outcomes.filter((outcome) => outcome.status === 'fulfilled' && outcome.value !== null);
        expect(created).toHaveLength(round === 0 ? 1 : 0);
      }
      expect(await accounts(stores[0]!)).toEqual([{ name: 'configured', keys: 1 }]);
      expect((await stores[1]!.accounts.findKeyByHash(hashApiKey(key)))?.scopes).toEqual(['*']);
    } finally {
      await close(stores);
    }
  });

  it('creates one development account when nodes start together with no key configured', async () => {
    const stores = await nodes();
    try {
      const outcomes = await Promise.all(stores.map((store) => bootstrapKey(store, undefined)));
      expect(outcomes.filter((issued) => issued !== null)).toHaveLength(1);
      expect(await accounts(stores[0]!)).toEqual([{ name: 'development', keys: 1 }]);
    } finally {
      await close(stores);
    }
  });
});
