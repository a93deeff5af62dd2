import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureOf } from '../helpers/failure.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Issue 16, defect 4 (the store side): a stream whose message the store refuses was retried every
 * second forever, answered 500 on each end, and stayed in new subscribers' snapshots. Now it is
 * dropped after a bounded number of attempts. (NULs in deltas are refused up front: validation.test.ts.)
 */
describe('a stream the store cannot take (defect 4)', () => {
  let t: TestGateway;
  let conversationId: string;
  let attempts: Map<string, number>;

  beforeAll(async () => {
    t = await startTestGateway('pglite', { STREAM_IDLE_TIMEOUT_MS: '200' });
    conversationId = (await t.rest.call('conversations.create', { agent_id: (await t.rest.call('agents.create', { name: 'Streamer' })).id })).id;
    // The store refuses every streamed message (as it did one holding a NUL), and counts the attempts.
    attempts = new Map();
    const messages = t.gateway.store.messages;
    const create = messages.create.bind(messages);
    messages.create = (input) => {
      const streamId = (input.input.metadata as { stream_id?: string } | undefined)?.stream_id;
      if (!streamId) return create(input);
      attempts.set(streamId, (attempts.get(streamId) ?? 0) + 1);
      return Promise.reject(new Error('refused by the store'));
    };
  });
  afterAll(() => t.stop());

  it('answers streams.end with an error a bounded number of times, then no longer knows the stream', async () => {
    const socket = await t.connect();
    const viewer = await t.connect();
    const seen: string[] = [];
    await viewer.subscribe(`conversation:${conversationId}`, (frame) => {
      if (!frame.ephemeral) seen.push(frame.event);
    });
    const { stream_id } = await socket.call('streams.start', { conversation_id: conversationId });
    await socket.call('streams.append', { stream_id, delta: 'never stored' });
    for (let i = 0; i < 3; i++) expect((await failureOf(socket.call('streams.end', { stream_id }))).code).toBe('INTERNAL_ERROR');
    expect((await failureOf(socket.call('streams.end', { stream_id }))).code).toBe('RESOURCE_NOT_FOUND');
    expect(attempts.get(stream_id)).toBe(3);
    // Viewers are told that no message will follow, and a newcomer's snapshot no longer shows it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual(['message.stream_started', 'message.delta', 'message.stream_failed']);
    const newcomer = await t.connect();
    const joined = await newcomer.subscribe(`conversation:${conversationId}`);
    expect(joined.streams?.map((snapshot) => snapshot.stream_id)).not.toContain(stream_id);
  });

  it('stops retrying an idle stream after a bounded number of attempts', async () => {
    const sender = await t.connect();
    const { stream_id } = await sender.call('streams.start', { conversation_id: conversationId });
    await sender.call('streams.append', { stream_id, delta: 'goes idle' });
    // Idle after 200 ms, swept every 200 ms: ten sweeps' worth of time.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(attempts.get(stream_id)).toBe(3);
  });
});
