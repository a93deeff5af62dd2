import type { SqlDriver } from './driver.js';
import { migrate } from './migrations/index.js';
import { openPgDriver } from './pg-driver.js';
import { openPgliteDriver } from './pglite-driver.js';
import { AccountRepo } from './repos/accounts.js';
import { AgentRepo } from './repos/agents.js';
import { ConversationRepo } from './repos/conversations.js';
import { MessageRepo } from './repos/messages.js';
import { SecretRepo } from './repos/secrets.js';
import type { Config } from '../config.js';

/** Everything durable, behind one object; the backend is chosen by configuration. */
export interface Store {
  readonly kind: SqlDriver['kind'];
  readonly accounts: AccountRepo;
  readonly agents: AgentRepo;
  readonly conversations: ConversationRepo;
  readonly messages: MessageRepo;
  readonly secrets: SecretRepo;
  /** Cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  /** Waits for buffered writes, then closes connections. */
  close(): Promise<void>;
}

export async function openStore(config: Pick<Config, 'store' | 'writeBatchMax'>): Promise<Store> {
  const driver =
    config.store.kind === 'postgres'
      ? await openPgDriver({ url: config.store.url, schema: config.store.schema, poolSize: config.store.poolSize })
      : await openPgliteDriver({ dataDir: config.store.dataDir, schema: config.store.schema });
  try {
    await migrate(driver);
  } catch (error) {
    await driver.close();
    throw error;
  }
  // PGlite is one connection: one batch at a time. A pool can write a few batches side by side.
  const maxInFlight = config.store.kind === 'postgres' ? Math.max(1, Math.floor(config.store.poolSize / 2)) : 1;
  const messages = new MessageRepo(driver, { maxBatch: config.writeBatchMax, maxInFlight });
  return {
    kind: driver.kind,
    accounts: new AccountRepo(driver),
    agents: new AgentRepo(driver),
    conversations: new ConversationRepo(driver),
    messages,
    secrets: new SecretRepo(driver),
    async ping() {
      await driver.query('select 1');
    },
    async close() {
      await messages.flush();
      await driver.close();
    },
  };
}
