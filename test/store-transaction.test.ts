import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../src/auth/provisioning.js';
import { loadConfig } from '../src/config.js';
import { newId } from '../src/kernel/ids.js';
import { openStore, type Store, type StoreTx } from '../src/store/store.js';
import { availableBackends, dropSchema, POSTGRES_URL } from './helpers/backends.js';

const backends = await availableBackends();

/** Resolves for both parties once both have arrived. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++arrived === parties) open();
    return opened;
  };
}

// A deadlock needs two connections: PostgreSQL only (PGlite is one connection, so it cannot deadlock).
describe.runIf(backends.includes('postgres'))('Store.transaction on postgres', () => {
  let store: Store;
  let schema: string;
  let accountId: string;

  beforeAll(async () => {
    schema = `t_${randomBytes(6).toString('hex')}`;
    store = await openStore(loadConfig({ DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '4' }));
    accountId = (await createAccount(store, { name: 'tx-test' })).accountId;
  });
  afterAll(async () => {
    await store.close();
    await dropSchema(schema);
  });

  it('retries the deadlock victim as a whole: both commit once, and the failed attempt leaves no event behind', async () => {
    const first = await store.agents.create(accountId, newId('agent'), { name: 'first' });
    const second = await store.agents.create(accountId, newId('agent'), { name: 'second' });
    const topic = `${accountId}/agent:${first.id}`;
    const bothHoldOneLock = barrier(2);
    const attempts = { forward: 0, backward: 0 };

    // Two writers taking the same two rows in opposite orders: PostgreSQL aborts one with 40P01.
    const writer = (name: 'forward' | 'backward', order: [string, string]) => async (tx: StoreTx) => {
      const attempt = ++attempts[name];
      await tx.agents.update(accountId, { agent_id: order[0], name: `${name}-${attempt}` });
      if (attempt === 1) await bothHoldOneLock();
      await tx.agents.update(accountId, { agent_id: order[1], name: `${name}-${attempt}` });
      tx.emit({ id: newId('event'), topics: [topic], event: 'test.written', data: { name, attempt } });
      return attempt;
    };
    const [forward, backward] = await Promise.all([
      store.transaction(writer('forward', [first.id, second.id])),
      store.transaction(writer('backward', [second.id, first.id])),
    ]);

    // Exactly one of them ran twice.
    expect([forward.result, backward.result].sort()).toEqual([1, 2]);
    expect(attempts.forward + attempts.backward).toBe(3);
    // The retry committed after the survivor, so its writes are the last on both rows.
    const retried = forward.result === 2 ? 'forward' : 'backward';
    expect((await store.agents.get(accountId, first.id))!.name).toBe(`${retried}-2`);
    expect((await store.agents.get(accountId, second.id))!.name).toBe(`${retried}-2`);
    // One event per commit, gap-free, the survivor's first; nothing from the aborted attempt.
    const logged = (await store.events.recent(topic, 10)).sort((a, b) => a.seq - b.seq);
    expect(logged.map((event) => [event.seq, event.data])).toEqual([
      [1, { name: retried === 'forward' ? 'backward' : 'forward', attempt: 1 }],
      [2, { name: retried, attempt: 2 }],
    ]);
  }, 30_000);
});
