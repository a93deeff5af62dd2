import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/index.js';
import { recorder, sleep } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('connection limits', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite', { WS_MAX_BACKPRESSURE_BYTES: '65536', WS_MAX_FRAMES_PER_SECOND: '20', WS_MAX_FRAME_BYTES: '65536' });
  });
  afterAll(() => t.stop());

  it('closes a slow consumer without slowing a fast one, and the fast one misses nothing', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Flood' });
    const conv = await t.rest.call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conv.id}`;

    // The slow consumer: a raw client that stops reading from its socket.
    const slow = new WebSocket(t.gateway.wsUrl, { headers: { 'x-api-key': t.apiKey } });
    await new Promise((resolve) => slow.once('message', resolve));
    slow.send(JSON.stringify({ type: 'subscribe', id: 1, topic }));
    await new Promise((resolve) => slow.once('message', resolve));
    const slowClosed = new Promise<number>((resolve) => slow.once('close', (code) => resolve(code)));
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();

    const fast = await t.connect();
    const seen = recorder(fast, topic);
    await fast.subscribe(topic);
    const before = t.gateway.server.connections;
    const content = 'x'.repeat(20_000);
    const count = 600; // about 12 MB: past the kernel's socket buffers and the slow socket's 64 KiB
    for (let i = 0; i < count; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => t.rest.call('messages.create', { conversation_id: conv.id, content: `${i + j}:${content}` })));
    }
    await seen.waitFor((events) => events.length === count, 30_000);
    const seqs = seen.events.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    // The server dropped the slow socket (its side is gone even though the client is not reading).
    for (let i = 0; i < 100 && t.gateway.server.connections >= before; i++) await sleep(50);
    expect(t.gateway.server.connections).toBe(before - 1);
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    const code = await Promise.race([slowClosed, sleep(5000).then(() => -1)]);
    expect([CloseCode.SLOW_CONSUMER, 1006]).toContain(code);
  });

  it('closes a connection that sends more frames per second than allowed with 4008', async () => {
    const socket = await t.connect();
    expect(socket.welcome.limits.max_frames_per_second).toBe(20);
    const closed = socket.closedPromise();
    for (let i = 0; i < 100; i++) socket.sendRaw(JSON.stringify({ type: 'ping', id: i }));
    expect((await closed).code).toBe(CloseCode.TOO_MANY_FRAMES);
  });

  it('lets a connection that stays under the frame rate live', async () => {
    const socket = await t.connect();
    for (let i = 0; i < 15; i++) await socket.ping();
    expect(socket.isOpen).toBe(true);
  });
});

describe('draining', () => {
  it('closes every connection with 1001 in staggered batches on stop', async () => {
    const t = await startTestGateway('pglite', { DRAIN_BATCH_SIZE: '2', DRAIN_INTERVAL_MS: '150' });
    const sockets = await Promise.all(Array.from({ length: 6 }, () => t.connect()));
    const closes = sockets.map((socket) => socket.closedPromise().then((closed) => ({ ...closed, at: Date.now() })));
    const started = Date.now();
    await t.gateway.stop();
    const results = await Promise.all(closes);
    expect(results.every((r) => r.code === CloseCode.GOING_AWAY)).toBe(true);
    const spread = Math.max(...results.map((r) => r.at)) - Math.min(...results.map((r) => r.at));
    expect(spread).toBeGreaterThanOrEqual(250);
    expect(Math.max(...results.map((r) => r.at)) - started).toBeLessThan(10_000);
    await t.stop();
  });
});
