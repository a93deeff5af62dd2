import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, ServerFrame, SUBPROTOCOL, type EventFrame } from '../protocol/index.js';
import { availableBackends } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { collect } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

/** A raw `ws` client that records every frame, each checked against the ServerFrame schema. */
async function rawSocket(url: string, headers: Record<string, string>, protocols: string[] = []) {
  const ws = new WebSocket(url, protocols, { headers });
  const frames: unknown[] = [];
  const packr = new Packr({ useRecords: false });
  ws.on('message', (data: Buffer, isBinary) => {
    const frame = isBinary ? packr.unpack(data) : JSON.parse(data.toString());
    ServerFrame.parse(frame);
    frames.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (n: number) => {
    for (let i = 0; i < 100 && frames.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    return frames[n - 1] as Record<string, any>;
  };
  return { ws, frames, closed, next };
}

describe.each(backends)('WebSocket on %s', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway(backend, { WS_MAX_FRAME_BYTES: '4096', WS_MAX_SUBSCRIPTIONS: '3' });
  });
  afterAll(() => t.stop());

  it('greets with a welcome frame carrying limits', async () => {
    const socket = await t.connect();
    expect(socket.welcome).toMatchObject({
      type: 'welcome',
      protocol: 'stategate.v1',
      encoding: 'json',
      limits: { max_frame_bytes: 4096, max_subscriptions: 3 },
    });
    expect(socket.welcome.connection_id).toMatch(/^conn_/);
  });

  it('pushes a message posted over REST to every subscriber of the conversation', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Pusher' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const widget = await t.connect();
    const agentSide = await t.connect({ encoding: 'msgpack' });
    const agentTopic = `agent:${agent.id}`;
    expect(await widget.subscribe(topic)).toMatchObject({ topic, subscribed: true, seq: 1 });
    await agentSide.subscribe(agentTopic);
    const widgetEvents = collect(widget, topic, 2);
    const agentEvents = collect(agentSide, agentTopic, 2);

    const first = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'first' });
    const second = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'second', role: 'agent' });

    const received = await widgetEvents;
    expect(received.map((e) => e.event)).toEqual(['message.created', 'message.created']);
    expect(received.map((e) => (e.data as any).message)).toEqual([first, second]);
    expect(received.map((e) => e.seq)).toEqual([2, 3]);
    expect(received[0]!.epoch).toBe(received[1]!.epoch);
    expect((await agentEvents).map((e) => (e.data as any).message.id)).toEqual([first.id, second.id]);
  });

  it('announces conversation.started and conversation.escalated on the agent topic', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Watcher' });
    const socket = await t.connect();
    await socket.subscribe(`agent:${agent.id}`);
    const events = collect(socket, `agent:${agent.id}`, 2);
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    await t.rest.call('conversations.update', { conversation_id: conversation.id, status: 'escalated' });
    const [started, escalated] = await events;
    expect(started).toMatchObject({ event: 'conversation.started', data: { conversation: { id: conversation.id, status: 'open' } } });
    expect(escalated).toMatchObject({ event: 'conversation.escalated', data: { conversation: { id: conversation.id, status: 'escalated' } } });
  });

  it('gives the same result for the same operation over REST and WebSocket', async () => {
    const socket = await t.connect();
    const agent = await socket.call('agents.create', { name: 'Parity', capabilities: { can_process_returns: true } });
    expect(await t.rest.call('agents.get', { agent_id: agent.id })).toEqual(agent);
    expect(await socket.call('agents.get', { agent_id: agent.id })).toEqual(agent);
    expect(await socket.call('agents.list', { limit: 5 })).toEqual(await t.rest.call('agents.list', { limit: 5 }));
    const restError = await failureOf(t.rest.call('agents.get', { agent_id: 'agent_none' }));
    const wsError = await failureOf(socket.call('agents.get', { agent_id: 'agent_none' }));
    expect([wsError.code, wsError.type, wsError.details]).toEqual([restError.code, restError.type, restError.details]);
    const restInvalid = await failureOf(t.rest.call('agents.create', { name: '' }));
    const wsInvalid = await failureOf(socket.call('agents.create', { name: '' }));
    expect(wsInvalid.details).toEqual(restInvalid.details);
  });

  it('speaks MessagePack when the msgpack subprotocol is chosen', async () => {
    const raw = await rawSocket(t.gateway.wsUrl, { 'x-api-key': t.apiKey }, [SUBPROTOCOL.msgpack]);
    expect(raw.ws.protocol).toBe(SUBPROTOCOL.msgpack);
    expect(await raw.next(1)).toMatchObject({ type: 'welcome', encoding: 'msgpack' });
    raw.ws.send(new Packr({ useRecords: false }).pack({ type: 'call', id: 7, method: 'agents.create', params: { name: 'Packed' } }));
    expect(await raw.next(2)).toMatchObject({ type: 'result', id: 7, data: { name: 'Packed' } });
    raw.ws.close();
  });

  it('answers bad frames with error frames and keeps the connection', async () => {
    const raw = await rawSocket(t.gateway.wsUrl, { authorization: `Bearer ${t.apiKey}` });
    await raw.next(1);
    raw.ws.send('this is not json');
    expect(await raw.next(2)).toMatchObject({ type: 'error', error: { code: 'VALIDATION_ERROR', message: 'Frame is not valid JSON' } });
    raw.ws.send(Buffer.from([0xc1, 0xff, 0x00]));
    expect(await raw.next(3)).toMatchObject({ type: 'error', error: { code: 'VALIDATION_ERROR', message: 'Frame is not valid MessagePack' } });
    raw.ws.send(JSON.stringify({ type: 'teleport', id: 'x1' }));
    expect(await raw.next(4)).toMatchObject({ type: 'error', id: 'x1', error: { code: 'VALIDATION_ERROR', details: { type: 'teleport' } } });
    raw.ws.send(JSON.stringify({ type: 'call', id: 'x2', method: 'agents.fly', params: {} }));
    expect(await raw.next(5)).toMatchObject({ type: 'error', id: 'x2', error: { code: 'RESOURCE_NOT_FOUND', type: 'method_not_found' } });
    raw.ws.send(JSON.stringify({ type: 'call', id: 'x3' }));
    expect(await raw.next(6)).toMatchObject({ type: 'error', id: 'x3', error: { code: 'VALIDATION_ERROR' } });
    raw.ws.send(JSON.stringify({ type: 'ping', id: 'x4' }));
    expect(await raw.next(7)).toEqual({ type: 'pong', id: 'x4' });
    raw.ws.close();
  });

  it('closes with 1009 on a frame over the size limit', async () => {
    const socket = await t.connect();
    const closed = socket.closedPromise();
    socket.sendRaw(JSON.stringify({ type: 'ping', id: 'big', pad: 'x'.repeat(5000) }));
    expect((await closed).code).toBe(CloseCode.MESSAGE_TOO_BIG);
  });

  it('refuses the upgrade with 401 for a missing or wrong key', async () => {
    for (const headers of [{}, { 'x-api-key': 'sg_live_wrong' }]) {
      const ws = new WebSocket(t.gateway.wsUrl, { headers });
      const status = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => resolve(101));
      });
      expect(status).toBe(401);
    }
  });

  it('accepts the key as an api_key query parameter for clients that cannot set headers', async () => {
    const raw = await rawSocket(`${t.gateway.wsUrl}?api_key=${encodeURIComponent(t.apiKey)}`, {});
    expect(await raw.next(1)).toMatchObject({ type: 'welcome' });
    raw.ws.close();
  });

  it('refuses subscriptions to unknown topics, other accounts’ conversations, and past the limit', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Sub' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const other = await t.newAccount();
    const intruder = await t.connect({ apiKey: other.apiKey });
    await expect(intruder.subscribe(`conversation:${conversation.id}`)).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    await expect(intruder.subscribe('weather:today')).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });

    const socket = await t.connect();
    await socket.subscribe('account');
    await socket.subscribe(`agent:${agent.id}`);
    await socket.subscribe(`conversation:${conversation.id}`);
    await expect(socket.subscribe(`conversation:${conversation.id}`)).resolves.toMatchObject({ subscribed: true });
    const another = await t.rest.call('conversations.create', { agent_id: agent.id });
    await expect(socket.subscribe(`conversation:${another.id}`)).rejects.toMatchObject({ code: 'VALIDATION_ERROR', details: { max_subscriptions: 3 } });
  });

  it('stops delivering after unsubscribe', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Unsub' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const socket = await t.connect();
    const seen: EventFrame[] = [];
    await socket.subscribe(topic, (event) => {
      if (!event.ephemeral) seen.push(event);
    });
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'one' });
    await socket.ping();
    await socket.unsubscribe(topic);
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'two' });
    await socket.ping();
    expect(seen.map((e) => (e.data as any).message.content)).toEqual(['one']);
  });

  it('sends nothing of one account to the account topic of another', async () => {
    const other = await t.newAccount();
    const spy = await t.connect({ apiKey: other.apiKey });
    const seen: EventFrame[] = [];
    await spy.subscribe('account', (event) => seen.push(event));
    const mine = await t.connect();
    const mineEvents = collect(mine, 'account', 2);
    await mine.subscribe('account');
    await t.rest.call('agents.create', { name: 'quiet' }).then((agent) => t.rest.call('conversations.create', { agent_id: agent.id }));
    expect((await mineEvents).map((event) => event.event)).toEqual(['agent.created', 'conversation.started']);
    await spy.ping();
    expect(seen).toEqual([]);
  });
});
