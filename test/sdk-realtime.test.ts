import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Encoding } from '../protocol/codec.js';
import {
  StateSetClient,
  type ConnectionState,
  type RealtimeClient,
  type RealtimeEvent,
  type RealtimeOptions,
  type ResubscribedInfo,
  type StateDetail,
  type WebSocketConstructor,
} from '../protocol/sdk/index.js';
import { sleep, until } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * The realtime SDK (`client.realtime()`) against a real gateway: connection states, resume after
 * a dropped connection with every event once and in order, `recovered: false` when history is
 * gone, the offline queue, token streaming, both encodings, and giving up after a policy close.
 */
let t: TestGateway;
const opened: RealtimeClient[] = [];

beforeAll(async () => {
  t = await startTestGateway('pglite');
});

afterAll(async () => {
  await Promise.all(opened.map((rt) => rt.close()));
  await t?.stop();
});

const sdk = (apiKey = t.apiKey) => new StateSetClient({ apiKey, baseURL: t.gateway.url });

function realtime(options: RealtimeOptions = {}, apiKey = t.apiKey): RealtimeClient {
  const rt = sdk(apiKey).realtime({ WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initialMs: 20, maxMs: 200 }, ...options });
  opened.push(rt);
  return rt;
}

function states(rt: RealtimeClient): { seen: ConnectionState[]; details: (StateDetail | undefined)[] } {
  const log = { seen: [] as ConnectionState[], details: [] as (StateDetail | undefined)[] };
  rt.on('state', (state, detail) => {
    log.seen.push(state);
    log.details.push(detail);
  });
  return log;
}

async function conversation(): Promise<string> {
  const agent = await t.rest.call('agents.create', { name: 'Realtime SDK' });
  return (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
}

const contentOf = (event: RealtimeEvent) => (event.event === 'message.created' ? event.data.message.content : null);

/** A gate the token function waits on: the client stays offline until it opens. */
function gate() {
  let open: () => void = () => {};
  let promise = Promise.resolve();
  return {
    close() {
      promise = new Promise<void>((resolve) => (open = resolve));
    },
    open: () => open(),
    wait: () => promise,
  };
}

describe.each<Encoding>(['json', 'msgpack'])('realtime SDK (%s)', (codec) => {
  it('goes connecting → connected → disconnected → connecting → connected, and resumes a dropped connection exactly once, in order', async () => {
    const conv = await conversation();
    // The token function waits on a gate, so the outage lasts until the test ends it.
    const offline = gate();
    let tokensAsked = 0;
    const rt = realtime({ codec, token: () => offline.wait().then(() => (tokensAsked++, t.apiKey)) });
    const log = states(rt);
    expect(rt.state).toBe('disconnected');
    await rt.connect();
    expect(rt.state).toBe('connected');

    const events: RealtimeEvent[] = [];
    const resubscribed: ResubscribedInfo[] = [];
    const sub = await rt.conversation(conv, {
      onEvent: (event) => {
        if (event.event === 'message.created') events.push(event);
      },
      onResubscribed: (info) => resubscribed.push(info),
    });
    expect(sub.result).toMatchObject({ topic: `conversation:${conv}`, subscribed: true });
    await t.rest.call('messages.create', { conversation_id: conv, content: 'before' });
    await until(() => events.length === 1, 5000, 'the first message');

    offline.close();
    rt.drop();
    await until(() => rt.state === 'connecting', 5000, 'the reconnect attempt');
    // Written by another client while this one is away.
    for (let i = 0; i < 5; i++) await t.rest.call('messages.create', { conversation_id: conv, content: `during ${i}` });
    offline.open();
    await until(() => rt.state === 'connected' && resubscribed.length === 1, 5000, 'the reconnect');
    await t.rest.call('messages.create', { conversation_id: conv, content: 'after' });
    await until(() => events.length === 7, 5000, 'every message');
    await sleep(100); // a duplicate would have arrived by now

    expect(events.map(contentOf)).toEqual(['before', 'during 0', 'during 1', 'during 2', 'during 3', 'during 4', 'after']);
    const seqs = events.map((event) => event.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    expect(resubscribed).toEqual([expect.objectContaining({ recovered: true, replayed: 5, epoch: events[0]!.epoch })]);
    expect(tokensAsked).toBe(2);
    expect(log.seen).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
    expect(log.details[2]).toMatchObject({ code: 1006 });
    expect(log.details[3]).toMatchObject({ attempt: 1 });
    await sub.unsubscribe();
  });
});
