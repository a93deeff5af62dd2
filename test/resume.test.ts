import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubscribeResult } from '../protocol/index.js';
import { recorder, sleep } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('resume', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite', { HISTORY_MAX_EVENTS: '50' });
  });
  afterAll(() => t.stop());

  async function conversation() {
    const agent = await t.rest.call('agents.create', { name: 'Resumer' });
    const conv = await t.rest.call('conversations.create', { agent_id: agent.id });
    return { conv, topic: `conversation:${conv.id}` };
  }
  const post = (conversationId: string, content: string) => t.rest.call('messages.create', { conversation_id: conversationId, content });

  it('replays exactly the missed events after a reconnect, then continues live', async () => {
    const { conv, topic } = await conversation();
    const first = await t.connect();
    const before = recorder(first, topic);
    await first.subscribe(topic);
    for (let i = 0; i < 3; i++) await post(conv.id, `before ${i}`);
    await before.waitFor((events) => events.length === 3);
    const last = before.events.at(-1)!;
    await first.close();

    for (let i = 0; i < 4; i++) await post(conv.id, `missed ${i}`);
    const second = await t.connect();
    const after = recorder(second, topic);
    const result = (await second.subscribe(topic, undefined, { since: last.seq, epoch: last.epoch })) as SubscribeResult;
    expect(result).toMatchObject({ recovered: true, replayed: 4, seq: last.seq + 4, epoch: last.epoch });
    await post(conv.id, 'live');
    await after.waitFor((events) => events.length === 5);
    expect(after.events.map((e) => (e.data as { message: { content: string } }).message.content)).toEqual([
      'missed 0',
      'missed 1',
      'missed 2',
      'missed 3',
      'live',
    ]);
    expect(after.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5].map((n) => last.seq + n));
  });

  it('has no gap and no repeat at the seam while events keep arriving during the replay', async () => {
    const { conv, topic } = await conversation();
    const writer = await t.connect();
    const first = await t.connect();
    const firstEvents = recorder(first, topic);
    await first.subscribe(topic);
    await post(conv.id, 'm0');
    await firstEvents.waitFor((events) => events.length === 1);
    const resumeFrom = firstEvents.events[0]!;
    await first.close();

    // A steady stream of writes, while a second client resumes in the middle of it.
    let writing = true;
    let written = 1;
    const writes = (async () => {
      while (writing) {
        await writer.call('messages.create', { conversation_id: conv.id, content: `m${written++}` });
      }
    })();
    await sleep(30);
    const second = await t.connect();
    const secondEvents = recorder(second, topic);
    await second.subscribe(topic, undefined, { since: resumeFrom.seq, epoch: resumeFrom.epoch });
    await sleep(60);
    writing = false;
    await writes;
    const total = written;
    await secondEvents.waitFor((events) => events.length === total - 1);
    await second.ping();
    const contents = secondEvents.events.map((e) => (e.data as { message: { content: string } }).message.content);
    expect(contents).toEqual(Array.from({ length: total - 1 }, (_, i) => `m${i + 1}`));
  });

  it('says recovered: false, replaying nothing, when history no longer covers the position', async () => {
    const { conv, topic } = await conversation();
    const first = await t.connect();
    const got = recorder(first, topic);
    await first.subscribe(topic);
    await post(conv.id, 'one');
    await got.waitFor((events) => events.length === 1);
    const position = got.events[0]!;
    await first.close();
    for (let i = 0; i < 60; i++) await post(conv.id, `flood ${i}`);

    const second = await t.connect();
    const after = recorder(second, topic);
    const result = (await second.subscribe(topic, undefined, { since: position.seq, epoch: position.epoch })) as SubscribeResult;
    expect(result).toMatchObject({ recovered: false, replayed: 0, seq: position.seq + 60 });
    await post(conv.id, 'next');
    await after.waitFor((events) => events.length === 1);
    expect(after.events[0]!.seq).toBe(position.seq + 61);
  });

  it('says recovered: false for an unknown epoch', async () => {
    const { topic } = await conversation();
    const socket = await t.connect();
    const result = (await socket.subscribe(topic, undefined, { since: 1, epoch: 'not-an-epoch' })) as SubscribeResult;
    expect(result.recovered).toBe(false);
  });

  it('refuses since without epoch', async () => {
    const { topic } = await conversation();
    const socket = await t.connect();
    socket.sendRaw(JSON.stringify({ type: 'subscribe', id: 'r1', topic, since: 3 }));
    const error = await new Promise((resolve) => socket.onError(resolve));
    expect(error).toMatchObject({ id: 'r1', error: { code: 'VALIDATION_ERROR' } });
  });

  it('replays missed stream deltas after a forced disconnect mid-stream', async () => {
    const { conv, topic } = await conversation();
    const agent = await t.connect();
    const viewer = await t.connect();
    const seen = recorder(viewer, topic);
    await viewer.subscribe(topic);
    const { stream_id } = await agent.call('streams.start', { conversation_id: conv.id });
    await agent.call('streams.append', { stream_id, delta: 'a' });
    await seen.waitFor((events) => events.length === 2);
    const last = seen.events.at(-1)!;
    viewer.terminate();
    for (const delta of ['b', 'c', 'd']) await agent.call('streams.append', { stream_id, delta });
    const back = await t.connect();
    const resumed = recorder(back, topic);
    const result = await back.subscribe(topic, undefined, { since: last.seq, epoch: last.epoch });
    // The replay carries the missed deltas; a snapshot would only repeat text the client has.
    expect(result).toMatchObject({ recovered: true, replayed: 3, streams: [] });
    await agent.call('streams.end', { stream_id });
    await resumed.waitFor((events) => events.some((e) => e.event === 'message.created'));
    const deltas = resumed.named('message.delta').map((e) => (e.data as { delta: string }).delta);
    expect(deltas).toEqual(['b', 'c', 'd']);
    expect([...seen.named('message.delta'), ...resumed.named('message.delta')].map((e) => (e.data as { delta: string }).delta).join('')).toBe('abcd');
  });
});
