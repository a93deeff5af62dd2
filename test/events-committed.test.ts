import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAccount } from '../src/auth/provisioning.js';
import type { Bus } from '../src/bus/index.js';
import { loadConfig } from '../src/config.js';
import { newId } from '../src/kernel/ids.js';
import type { TopicEvent } from '../src/kernel/topic-event.js';
import { createLogger } from '../src/logger.js';
import { Events } from '../src/realtime/events.js';
import { topicKey } from '../src/realtime/topics.js';
import { MissingConversation } from '../src/store/repos/messages.js';
import { openStore, type Store } from '../src/store/store.js';
import { availableBackends, dropSchema, POSTGRES_URL } from './helpers/backends.js';

const backends = await availableBackends();

/** Every copy's identity: the same event told twice shows up twice. */
const keys = (events: readonly TopicEvent[]) => events.map((event) => `${event.topic} ${event.seq} ${event.id}`);

describe.each(backends)('Events: the committed hook on %s', (backend) => {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  let store: Store;
  let events: Events;
  let accountId: string;
  /** What the listener was told, one entry per call. */
  let told: TopicEvent[][];
  /** What the bus was handed, one entry per publish. */
  let published: TopicEvent[][];

  beforeAll(async () => {
    store = await openStore(
      loadConfig(backend === 'postgres' ? { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '4' } : { DATA_DIR: 'memory://' }),
    );
    accountId = (await createAccount(store, { name: 'committed-test' })).accountId;
    const bus = { publish: async (batch: readonly TopicEvent[]) => void published.push([...batch]) } as unknown as Bus;
    events = new Events(store, bus, createLogger('silent'));
    events.onCommitted((committed) => told.push([...committed]));
  });
  beforeEach(() => {
    told = [];
    published = [];
  });
  afterAll(async () => {
    await store.close();
    if (backend === 'postgres') await dropSchema(schema);
  });

  it('fires exactly once per committed write, with its events, as the bus gets them', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'A' });
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'web' }))!;

    // A message: one call with its event on the conversation, agent and account topics.
    const message = await events.commitMessage(accountId, { conversation_id: conversation.id, role: 'user', content: 'hi' });
    expect(told).toHaveLength(1);
    expect(told[0]!.map((event) => event.topic).sort()).toEqual(
      [topicKey(accountId, `conversation:${conversation.id}`), topicKey(accountId, `agent:${agent.id}`), topicKey(accountId, 'account')].sort(),
    );
    expect(told[0]!.every((event) => event.event === 'message.created' && (event.data as { message: { id: string } }).message.id === message.id)).toBe(true);
    expect(new Set(told[0]!.map((event) => event.id)).size).toBe(1);
    expect(told[0]!.every((event) => event.seq > 0)).toBe(true);

    // Messages that share a group commit: still one call per write.
    told = [];
    const together = await Promise.all(
      ['a', 'b', 'c'].map((content) => events.commitMessage(accountId, { conversation_id: conversation.id, role: 'user', content })),
    );
    expect(told).toHaveLength(3);
    expect(told.map((events) => (events[0]!.data as { message: { id: string } }).message.id).sort()).toEqual(together.map((m) => m.id).sort());

    // A transaction with two events: one call with both (each on its topics).
    told = [];
    await events.write(accountId, async (tx, emit) => {
      const session = await tx.sessions.create(accountId, newId('session'), { agent_id: 'support', initial_state: {}, ttl_seconds: 60 });
      emit([], 'session.expired', { session_id: session.id, ttl_expires_at: new Date().toISOString() });
      emit([], 'session.expired', { session_id: session.id, ttl_expires_at: new Date().toISOString() });
    });
    expect(told).toHaveLength(1);
    expect(told[0]).toHaveLength(2);
    expect(new Set(told[0]!.map((event) => event.id)).size).toBe(2);

    // An event on its own.
    told = [];
    const [emitted] = await events.emit(accountId, [], 'session.expired', { session_id: 'sess_x', ttl_expires_at: new Date().toISOString() });
    expect(told).toEqual([[emitted]]);

    // A transaction that emits nothing committed no event: nothing to tell.
    told = [];
    await events.transaction(async (tx) => tx.agents.get(accountId, agent.id));
    expect(told).toEqual([]);

    // Every write above reached the bus once, as the listener was told.
    await new Promise((resolve) => setImmediate(resolve));
    const all = published.flat();
    expect(new Set(keys(all)).size).toBe(all.length);
    expect(all.length).toBe(3 + 9 + 2 + 1);
  });

  it('does not fire for a write that failed or rolled back', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'B' });
    const topic = topicKey(accountId, `agent:${agent.id}`);
    const before = await store.events.position(topic);

    // Rolled back after emitting: no event in the log, none told, none published.
    await expect(
      events.write(accountId, async (_tx, emit) => {
        emit([`agent:${agent.id}`], 'session.expired', { session_id: 'sess_y', ttl_expires_at: new Date().toISOString() });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await store.events.position(topic)).toEqual(before);

    // A message with nowhere to go.
    await expect(events.commitMessage(accountId, { conversation_id: 'conv_missing', role: 'user', content: 'lost' })).rejects.toBeInstanceOf(
      MissingConversation,
    );

    // A failed message next to one that commits in the same batch: only the committed one is told.
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'web' }))!;
    const [lost, kept] = await Promise.allSettled([
      events.commitMessage(accountId, { conversation_id: 'conv_missing', role: 'user', content: 'lost' }),
      events.commitMessage(accountId, { conversation_id: conversation.id, role: 'user', content: 'kept' }),
    ]);
    expect(lost.status).toBe('rejected');
    expect(kept.status).toBe('fulfilled');
    expect(told).toHaveLength(1);
    expect((told[0]![0]!.data as { message: { id: string } }).message.id).toBe((kept as PromiseFulfilledResult<{ id: string }>).value.id);
    await new Promise((resolve) => setImmediate(resolve));
    expect(published).toEqual(told);
  });

  it('keeps the write and the other listeners when a listener throws; a stopped listener is told nothing', async () => {
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'C' });
    const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: 'web' }))!;
    const stopThrowing = events.onCommitted(() => {
      throw new Error('listener bug');
    });
    const later: number[] = [];
    const stopLater = events.onCommitted((committed) => later.push(committed.length));
    const message = await events.commitMessage(accountId, { conversation_id: conversation.id, role: 'user', content: 'still stored' });
    expect(await store.messages.get(accountId, message.id)).toEqual(message);
    expect(told).toHaveLength(1);
    expect(later).toEqual([3]);
    stopThrowing();
    stopLater();
    await events.commitMessage(accountId, { conversation_id: conversation.id, role: 'user', content: 'again' });
    expect(told).toHaveLength(2);
    expect(later).toEqual([3]);
  });
});

/** Files under `dir`, recursively, ending in .ts. */
async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts')).map((entry) => join(entry.parentPath, entry.name));
}

describe('one commit-and-announce path', () => {
  it('writes numbered events only through Events: no other source stores a message, appends to the log or opens an event transaction', async () => {
    const writers = /\.messages\.create\(|\.events\.append\(|\bstore\.transaction\(/;
    const offenders: string[] = [];
    for (const file of await sources('src')) {
      if (file === join('src', 'realtime', 'events.ts')) continue;
      const text = await readFile(file, 'utf8');
      text.split('\n').forEach((line, index) => {
        if (writers.test(line)) offenders.push(`${file}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
