import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../protocol/index.js';
import { createAccount } from '../src/auth/provisioning.js';
import { loadConfig } from '../src/config.js';
import { newId } from '../src/kernel/ids.js';
import type { TopicEvent } from '../src/kernel/topic-event.js';
import { topicKey } from '../src/realtime/topics.js';
import type { CommittedMessage } from '../src/store/repos/messages.js';
import { openStore, type Store } from '../src/store/store.js';
import { availableBackends, dropSchema, POSTGRES_URL, type Backend } from './helpers/backends.js';

/**
 * The message write path under concurrency: several batches in flight (several write streams on
 * PostgreSQL, and a second node on the same database), small batches so that there are many.
 * Whatever the interleaving, per conversation the paging order, the `created_at` order and the
 * event seq order agree, every message has one event per topic, and seqs have no gap.
 */
const backends = await availableBackends();

async function openNode(backend: Backend, schema: string): Promise<Store> {
  const config = loadConfig(
    backend === 'postgres'
      ? { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '8', WRITE_BATCH_MAX: '16' }
      : { DATA_DIR: 'memory://', WRITE_BATCH_MAX: '16' },
  );
  return openStore(config);
}

describe.each(backends)('message writes on %s', (backend) => {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  let store: Store;
  let accountId: string;

  beforeAll(async () => {
    store = await openNode(backend, schema);
    accountId = (await createAccount(store, { name: 'writes-test' })).accountId;
  });
  afterAll(async () => {
    await store.close();
    if (backend === 'postgres') await dropSchema(schema);
  });

  /** Conversations of two agents, and one whose agent was deleted (it has none). */
  async function conversations(count: number): Promise<{ id: string; agentId: string | null }[]> {
    const agents = [await store.agents.create(accountId, newId('agent'), { name: 'A' }), await store.agents.create(accountId, newId('agent'), { name: 'B' })];
    const leaving = await store.agents.create(accountId, newId('agent'), { name: 'Leaving' });
    const created: { id: string; agentId: string | null }[] = [];
    for (let i = 0; i < count; i++) {
      const agentId = count > 1 && i === count - 1 ? leaving.id : agents[i % 2]!.id;
      const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agentId, channel: 'web' }))!;
      created.push({ id: conversation.id, agentId: agentId === leaving.id ? null : agentId });
    }
    await store.agents.delete(accountId, leaving.id);
    return created;
  }

  /** A message with its event on the conversation, its agent (if any) and the account topic. */
  function write(target: Store, conversationId: string, content: string, extra?: Record<string, unknown>): Promise<CommittedMessage> {
    return target.messages.create({
      id: newId('message'),
      accountId,
      input: { conversation_id: conversationId, role: 'user', content, metadata: { n: content, nested: { b: 2, a: [1, 'x'] } } },
      announce: (agentId) => ({
        id: newId('event'),
        event: 'message.created',
        topics: [
          topicKey(accountId, `conversation:${conversationId}`),
          ...(agentId ? [topicKey(accountId, `agent:${agentId}`)] : []),
          topicKey(accountId, 'account'),
        ],
        ...(extra ? { extra } : {}),
      }),
    });
  }

  async function listAll(conversationId: string): Promise<Message[]> {
    const listed: Message[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.messages.list(accountId, { conversation_id: conversationId, limit: 37, ...(cursor ? { cursor } : {}) });
      listed.push(...page.data);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return listed;
  }

  async function logOf(topic: string): Promise<TopicEvent[]> {
    const position = await store.events.position(topic);
    const read = await store.events.history(topic, 0, position.epoch, 100_000);
    expect(read.recovered).toBe(true);
    return read.events;
  }

  /** Per conversation: paging order == created_at order == conversation-topic seq order; replay == live. */
  async function expectAgreement(conversationId: string, live: CommittedMessage[]): Promise<Message[]> {
    const listed = await listAll(conversationId);
    expect(listed.map((m) => m.id).sort()).toEqual(live.map((c) => c.message.id).sort());
    const createdAt = listed.map((m) => m.created_at);
    expect([...createdAt].sort()).toEqual(createdAt);
    const log = await logOf(topicKey(accountId, `conversation:${conversationId}`));
    expect(log.map((event) => event.seq)).toEqual(log.map((_, i) => i + 1));
    expect(log.map((event) => (event.data as { message: Message }).message.id)).toEqual(listed.map((m) => m.id));
    // The event as replayed from the log is the event as it went out live.
    const liveById = new Map(live.flatMap((c) => c.events).map((event) => [`${event.topic} ${event.seq}`, event]));
    for (const event of log) {
      const sent = liveById.get(`${event.topic} ${event.seq}`);
      expect(sent).toBeDefined();
      expect(event.id).toBe(sent!.id);
      expect(event.data).toEqual(sent!.data);
    }
    // And what the message API answers is what the event carried.
    expect(log.map((event) => (event.data as { message: Message }).message)).toEqual(listed);
    expect((await store.conversations.get(accountId, conversationId))!.message_count).toBe(listed.length);
    return listed;
  }

  it('keeps each conversation in submission order across many concurrent batches, one event per topic, seqs gap-free', async () => {
    const targets = await conversations(7);
    const submitted = new Map(targets.map((t) => [t.id, [] as string[]]));
    const pending: Promise<CommittedMessage>[] = [];
    for (let i = 0; i < 700; i++) {
      const target = targets[(i * 5 + (i >> 3)) % targets.length]!;
      const content = `m${i}`;
      submitted.get(target.id)!.push(content);
      pending.push(write(store, target.id, content, i % 3 === 0 ? { stream_id: `s${i}` } : undefined));
    }
    const committed = await Promise.all(pending);
    for (const c of committed) {
      const target = targets.find((t) => t.id === c.message.conversation_id)!;
      expect(c.agentId).toBe(target.agentId);
      expect(c.events.map((event) => event.topic)).toEqual([
        topicKey(accountId, `conversation:${target.id}`),
        ...(target.agentId ? [topicKey(accountId, `agent:${target.agentId}`)] : []),
        topicKey(accountId, 'account'),
      ]);
    }
    for (const target of targets) {
      const live = committed.filter((c) => c.message.conversation_id === target.id);
      const listed = await expectAgreement(target.id, live);
      expect(listed.map((m) => m.content)).toEqual(submitted.get(target.id));
    }
    // The shared topics: every message once, no gap, and each conversation's messages in order.
    for (const topic of [topicKey(accountId, 'account'), ...new Set(targets.flatMap((t) => (t.agentId ? [topicKey(accountId, `agent:${t.agentId}`)] : [])))]) {
      const log = await logOf(topic);
      expect(log.map((event) => event.seq)).toEqual(log.map((_, i) => i + 1));
      const ids = log.map((event) => (event.data as { message: Message }).message.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const target of targets) {
        const mine = log.filter((event) => (event.data as { message: Message }).message.conversation_id === target.id);
        expect(mine.map((event) => (event.data as { message: Message }).message.content)).toEqual(
          topic.endsWith('/account') || topic.endsWith(`agent:${target.agentId}`) ? submitted.get(target.id) : [],
        );
      }
    }
  });

  it('writes a bad row alone and keeps its neighbours, still in submission order', async () => {
    const [target] = await conversations(1);
    // PostgreSQL text cannot hold NUL: this one row fails its statement, whatever its batch.
    const contents = Array.from({ length: 40 }, (_, i) => (i === 17 ? 'bad \u0000 row' : `ok ${i}`));
    const results = await Promise.allSettled(contents.map((content) => write(store, target!.id, content)));
    expect(results.map((r) => r.status)).toEqual(contents.map((_, i) => (i === 17 ? 'rejected' : 'fulfilled')));
    const live = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const listed = await expectAgreement(target!.id, live);
    expect(listed.map((m) => m.content)).toEqual(contents.filter((_, i) => i !== 17));
  });

  it.runIf(backend === 'postgres')('agrees per conversation when two nodes write the same conversations at once', async () => {
    const other = await openNode(backend, schema);
    try {
      const targets = await conversations(4);
      const submitted = new Map<Store, Map<string, string[]>>([
        [store, new Map(targets.map((t) => [t.id, []]))],
        [other, new Map(targets.map((t) => [t.id, []]))],
      ]);
      const pending: Promise<CommittedMessage>[] = [];
      for (let i = 0; i < 800; i++) {
        const node = i % 2 === 0 ? store : other;
        const target = targets[(i >> 1) % targets.length]!;
        submitted
          .get(node)!
          .get(target.id)!
          .push(`n${i % 2} m${i}`);
        pending.push(write(node, target.id, `n${i % 2} m${i}`));
      }
      const committed = await Promise.all(pending);
      for (const target of targets) {
        const listed = await expectAgreement(
          target.id,
          committed.filter((c) => c.message.conversation_id === target.id),
        );
        // Each node's own writes keep their submission order within the conversation.
        for (const node of [store, other]) {
          const own = submitted.get(node)!.get(target.id)!;
          expect(listed.map((m) => m.content).filter((content) => own.includes(content))).toEqual(own);
        }
      }
      const account = await logOf(topicKey(accountId, 'account'));
      expect(account.map((event) => event.seq)).toEqual(account.map((_, i) => i + 1));
    } finally {
      await other.close();
    }
  });
});
