import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../src/auth/provisioning.js';
import { loadConfig } from '../src/config.js';
import { newId } from '../src/kernel/ids.js';
import { MissingConversation } from '../src/store/repos/messages.js';
import { openStore, type Store } from '../src/store/store.js';
import { availableBackends, dropSchema, POSTGRES_URL, type Backend } from './helpers/backends.js';

const backends = await availableBackends();

async function openTestStore(backend: Backend): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig(
    backend === 'postgres' ? { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '4' } : { DATA_DIR: 'memory://' },
  );
  const store = await openStore(config);
  return {
    store,
    async cleanup() {
      await store.close();
      if (backend === 'postgres') {
        await dropSchema(schema);
      }
    },
  };
}

describe.each(backends)('store on %s', (backend) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let accountId: string;

  beforeAll(async () => {
    ({ store, cleanup } = await openTestStore(backend));
    accountId = (await createAccount(store, { name: 'store-test' })).accountId;
  });
  afterAll(() => cleanup());

  it('opens the configured backend', async () => {
    expect(store.kind).toBe(backend);
  });

  it('creates, reads, updates and deletes an agent', async () => {
    const created = await store.agents.create(accountId, newId('agent'), {
      name: 'Support Agent',
      role: 'Customer Success Specialist',
      capabilities: { can_create_tickets: true, can_issue_refunds: false },
      metadata: { language: 'en' },
    });
    expect(created).toMatchObject({ name: 'Support Agent', status: 'active', capabilities: { can_create_tickets: true, can_issue_refunds: false } });
    expect(await store.agents.get(accountId, created.id)).toEqual(created);

    const updated = await store.agents.update(accountId, { agent_id: created.id, role: null, status: 'inactive' });
    expect(updated).toMatchObject({ id: created.id, role: null, status: 'inactive', name: 'Support Agent' });
    expect(Date.parse(updated!.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.updated_at));

    expect(await store.agents.delete(accountId, created.id)).toBe(true);
    expect(await store.agents.get(accountId, created.id)).toBeNull();
    expect(await store.agents.delete(accountId, created.id)).toBe(false);
  });

  it('keeps accounts apart', async () => {
    const other = (await createAccount(store, { name: 'other' })).accountId;
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'Mine' });
    expect(await store.agents.get(other, agent.id)).toBeNull();
    expect(await store.agents.update(other, { agent_id: agent.id, name: 'Stolen' })).toBeNull();
    expect(await store.agents.delete(other, agent.id)).toBe(false);
    expect((await store.agents.list(other, { limit: 100 })).data).toEqual([]);
    expect(await store.conversations.create(other, newId('conversation'), { agent_id: agent.id, channel: 'web' })).toBeNull();
  });

  it('pages through agents newest first without gaps or repeats', async () => {
    const pager = (await createAccount(store, { name: 'pager' })).accountId;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await store.agents.create(pager, newId('agent'), { name: `a${i}` })).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await store.agents.list(pager, { limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.data.map((agent) => agent.id));
      if (!page.has_more) {
        expect(page.next_cursor).toBeNull();
        break;
      }
      cursor = page.next_cursor!;
    }
    expect(seen).toEqual([...ids].reverse());
  });

  it('writes concurrent messages in one group commit, in submission order, counted on the conversation', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'Writer' });
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'web' }))!;
    const contents = Array.from({ length: 250 }, (_, i) => `message ${i}`);
    const stored = await Promise.all(
      contents.map((content) => store.messages.create({ id: newId('message'), accountId, input: { conversation_id: conversation.id, content, role: 'user' } })),
    );
    expect(stored.map((s) => s.message.content)).toEqual(contents);
    expect(stored.every((s) => s.agentId === agent.id)).toBe(true);

    const listed: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.messages.list(accountId, { conversation_id: conversation.id, limit: 100, ...(cursor ? { cursor } : {}) });
      listed.push(...page.data.map((m) => m.content));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    expect(listed).toEqual(contents);
    expect((await store.conversations.get(accountId, conversation.id))!.message_count).toBe(250);
  });

  it('fails only the message whose conversation is missing, not its batch neighbours', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'Batch' });
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'web' }))!;
    const write = (conversationId: string, content: string) =>
      store.messages.create({ id: newId('message'), accountId, input: { conversation_id: conversationId, content, role: 'user' } });
    const results = await Promise.allSettled([write(conversation.id, 'a'), write('conv_missing', 'b'), write(conversation.id, 'c')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(MissingConversation);
    const page = await store.messages.list(accountId, { conversation_id: conversation.id, limit: 10 });
    expect(page.data.map((m) => m.content)).toEqual(['a', 'c']);
  });

  it('keeps conversations when their agent is deleted', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'Leaving' });
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'email' }))!;
    await store.agents.delete(accountId, agent.id);
    expect(await store.conversations.get(accountId, conversation.id)).toMatchObject({ id: conversation.id, agent_id: null, channel: 'email' });
  });

  it('reports the previous status of an updated conversation', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'Escalator' });
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'web' }))!;
    const result = await store.conversations.update(accountId, { conversation_id: conversation.id, status: 'escalated', satisfaction_score: 4 });
    expect(result?.before.status).toBe('open');
    expect(result?.after).toMatchObject({ status: 'escalated', satisfaction_score: 4 });
  });

  it('stores API keys hashed and resolves them by hash', async () => {
    const issued = await createAccount(store, { name: 'keys', scopes: ['agents:read'] });
    const { hashApiKey } = await import('../src/auth/keys.js');
    const record = await store.accounts.findKeyByHash(hashApiKey(issued.key));
    expect(record).toMatchObject({ account_id: issued.accountId, scopes: ['agents:read'], revoked: false });
    expect(await store.accounts.revokeKey(issued.accountId, issued.keyId)).toBe(hashApiKey(issued.key));
    expect((await store.accounts.findKeyByHash(hashApiKey(issued.key)))?.revoked).toBe(true);
  });
});
