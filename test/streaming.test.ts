import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message, SubscribeResult } from '../protocol/index.js';
import { recorder, sleep } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('token streaming', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite', { STREAM_IDLE_TIMEOUT_MS: '400' });
  });
  afterAll(() => t.stop());

  async function conversation() {
    const agent = await t.rest.call('agents.create', { name: 'Streamer' });
    return t.rest.call('conversations.create', { agent_id: agent.id });
  }

  it('delivers deltas in order to every subscriber, then one message.created stored once', async () => {
    const conv = await conversation();
    const topic = `conversation:${conv.id}`;
    const viewers = await Promise.all([t.connect(), t.connect({ encoding: 'msgpack' }), t.connect()]);
    const records = viewers.map((viewer) => recorder(viewer, topic));
    for (const viewer of viewers) await viewer.subscribe(topic);

    const agent = await t.connect();
    const tokens = Array.from({ length: 60 }, (_, i) => `tok${i} `);
    const started = await agent.call('streams.start', { conversation_id: conv.id });
    expect(started).toMatchObject({ conversation_id: conv.id, role: 'agent' });
    // Sent without waiting for each answer, as an agent streaming a model's output would.
    const appended = await Promise.all(tokens.map((delta) => agent.call('streams.append', { stream_id: started.stream_id, delta })));
    expect(appended.map((a) => a.index)).toEqual(tokens.map((_, i) => i));
    const message = await agent.call('streams.end', { stream_id: started.stream_id });
    expect(message.content).toBe(tokens.join(''));
    expect(message.metadata).toMatchObject({ stream_id: started.stream_id });

    for (const record of records) {
      await record.waitFor((events) => events.some((e) => e.event === 'message.created'));
      // Presence signals of the other viewers share the topic; the stream is the numbered events.
      const numbered = record.events.filter((e) => !e.ephemeral);
      const names = numbered.map((e) => e.event);
      expect(names[0]).toBe('message.stream_started');
      expect(names.at(-1)).toBe('message.created');
      const deltas = record.named('message.delta').map((e) => e.data as { index: number; delta: string });
      expect(deltas.map((d) => d.index)).toEqual(tokens.map((_, i) => i));
      expect(deltas.map((d) => d.delta).join('')).toBe(message.content);
      expect((record.named('message.created')[0]!.data as { message: Message }).message).toEqual(message);
      const seqs = numbered.map((e) => e.seq);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    }
    const stored = await t.rest.call('messages.list', { conversation_id: conv.id });
    expect(stored.data).toEqual([message]);
    await expect(agent.call('streams.end', { stream_id: started.stream_id })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND', type: 'stream_not_found' });
  });

  it('streams on the conversation and agent topics; the account topic gets only the stored message', async () => {
    const conv = await conversation();
    const viewer = await t.connect();
    const onConversation = recorder(viewer, `conversation:${conv.id}`);
    const onAgent = recorder(viewer, `agent:${conv.agent_id}`);
    const onAccount = recorder(viewer, 'account');
    await viewer.subscribe(`conversation:${conv.id}`);
    await viewer.subscribe(`agent:${conv.agent_id}`);
    await viewer.subscribe('account');
    const agent = await t.connect();
    const { stream_id } = await agent.call('streams.start', { conversation_id: conv.id });
    for (const delta of ['a', 'b', 'c']) await agent.call('streams.append', { stream_id, delta });
    const message = await agent.call('streams.end', { stream_id });
    const streamed = ['message.stream_started', 'message.delta', 'message.delta', 'message.delta', 'message.created'];
    for (const record of [onConversation, onAgent]) {
      await record.waitFor((events) => events.some((e) => e.event === 'message.created'));
      expect(record.events.filter((e) => !e.ephemeral).map((e) => e.event)).toEqual(streamed);
    }
    await onAccount.waitFor((events) => events.some((e) => e.event === 'message.created'));
    await sleep(50);
    expect(onAccount.events.map((e) => e.event)).toEqual(['message.created']);
    expect((onAccount.events[0]!.data as { message: Message }).message).toEqual(message);
  });

  it('gives a subscriber joining mid-stream the text so far, then the live deltas', async () => {
    const conv = await conversation();
    const topic = `conversation:${conv.id}`;
    const agent = await t.connect();
    const { stream_id } = await agent.call('streams.start', { conversation_id: conv.id });
    for (const delta of ['Hello', ', ', 'wor']) await agent.call('streams.append', { stream_id, delta });

    const late = await t.connect();
    const record = recorder(late, topic);
    const joined = (await late.subscribe(topic)) as SubscribeResult;
    expect(joined.streams).toEqual([expect.objectContaining({ stream_id, text: 'Hello, wor', index: 2 })]);
    await agent.call('streams.append', { stream_id, delta: 'ld' });
    const message = await agent.call('streams.end', { stream_id });
    await record.waitFor((events) => events.some((e) => e.event === 'message.created'));
    const snapshot = joined.streams![0]!;
    const later = record
      .named('message.delta')
      .map((e) => e.data as { index: number; delta: string })
      .filter((d) => d.index > snapshot.index);
    expect(snapshot.text + later.map((d) => d.delta).join('')).toBe('Hello, world');
    expect(message.content).toBe('Hello, world');
  });

  it('stores a stream as incomplete when its sender disconnects', async () => {
    const conv = await conversation();
    const topic = `conversation:${conv.id}`;
    const viewer = await t.connect();
    const record = recorder(viewer, topic);
    await viewer.subscribe(topic);
    const agent = await t.connect();
    const { stream_id } = await agent.call('streams.start', { conversation_id: conv.id });
    await agent.call('streams.append', { stream_id, delta: 'partial ans' });
    await agent.close();
    const [created] = await record.waitFor((events) => events.some((e) => e.event === 'message.created')).then(() => record.named('message.created'));
    expect(created!.data).toMatchObject({ stream_id, incomplete: true, reason: 'sender_disconnected', message: { content: 'partial ans' } });
    const stored = await t.rest.call('messages.list', { conversation_id: conv.id });
    expect(stored.data).toHaveLength(1);
    expect(stored.data[0]!.metadata).toMatchObject({ stream_id, incomplete: true, incomplete_reason: 'sender_disconnected' });
  });

  it('stores a silent stream as incomplete after the idle timeout', async () => {
    const conv = await conversation();
    const agent = await t.connect();
    const { stream_id } = await agent.call('streams.start', { conversation_id: conv.id });
    await agent.call('streams.append', { stream_id, delta: 'then silence' });
    await sleep(1600);
    const stored = await t.rest.call('messages.list', { conversation_id: conv.id });
    expect(stored.data.map((m) => [m.content, m.metadata.incomplete_reason])).toEqual([['then silence', 'timeout']]);
    await expect(agent.call('streams.append', { stream_id, delta: 'too late' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  });

  it('runs many streams at once on one connection without mixing them', async () => {
    const convs = await Promise.all([conversation(), conversation(), conversation()]);
    const agent = await t.connect();
    const streams = await Promise.all(convs.map((c) => agent.call('streams.start', { conversation_id: c.id })));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => streams.map((s, n) => agent.call('streams.append', { stream_id: s.stream_id, delta: `${n}:${i};` }))).flat(),
    );
    const messages = await Promise.all(streams.map((s) => agent.call('streams.end', { stream_id: s.stream_id })));
    messages.forEach((m, n) => expect(m.content).toBe(Array.from({ length: 20 }, (_, i) => `${n}:${i};`).join('')));
  });

  it('refuses a stream into a conversation that does not exist, or of another account', async () => {
    const agent = await t.connect();
    await expect(agent.call('streams.start', { conversation_id: 'conv_nope' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    const conv = await conversation();
    const { stream_id } = await agent.call('streams.start', { conversation_id: conv.id });
    const other = await t.newAccount();
    const intruder = await t.connect({ apiKey: other.apiKey });
    await expect(intruder.call('streams.append', { stream_id, delta: 'x' })).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  });
});
