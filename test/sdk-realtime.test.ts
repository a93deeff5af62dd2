import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Encoding } from '../protocol/codec.js';
import {
  StateSetClient,
  StateSetError,
  type ConnectionState,
  type RealtimeClient,
  type RealtimeEvent,
  type RealtimeOptions,
  type ResubscribedInfo,
  type StateDetail,
  type WebSocketConstructor,
} from '../clients/sdk/index.js';
import { RestClient } from '../clients/client.js';
import { startGateway, type Gateway } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { buildSdk } from '../scripts/build-sdk.js';
import { dropSchema, POSTGRES_URL, postgresProblem } from './helpers/backends.js';
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

/** Follows a conversation: the contents of its messages as they arrive, and every resubscription. */
async function followContents(rt: RealtimeClient, conv: string): Promise<{ events: string[]; resubscribed: ResubscribedInfo[] }> {
  const events: string[] = [];
  const resubscribed: ResubscribedInfo[] = [];
  await rt.conversation(conv, {
    onEvent: (event) => {
      const content = contentOf(event);
      if (content !== null) events.push(content);
    },
    onResubscribed: (info) => resubscribed.push(info),
  });
  return { events, resubscribed };
}

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

  it('streams a reply (startStream/append/end and streamReply): another subscriber sees the deltas in order, then one stored message', async () => {
    const conv = await conversation();
    const agentSide = realtime({ codec });
    const watcher = realtime({ codec: codec === 'json' ? 'msgpack' : 'json' });
    const seen: RealtimeEvent[] = [];
    await watcher.conversation(conv, { onEvent: (event) => seen.push(event) });

    const stream = await agentSide.startStream({ conversation_id: conv });
    expect(stream.streamId).toBe(stream.started.stream_id);
    for (const token of ['Hel', 'lo', ', world']) await stream.append(token);
    const stored = await stream.end();
    expect(stored).toMatchObject({ content: 'Hello, world', role: 'agent', conversation_id: conv });

    async function* tokens() {
      for (const token of ['Second ', '', 'reply']) {
        await sleep(5);
        yield token;
      }
    }
    const second = await agentSide.streamReply({ conversation_id: conv }, tokens());
    expect(second.content).toBe('Second reply');

    await until(() => seen.filter((event) => event.event === 'message.created').length === 2, 5000, 'both stored messages');
    await sleep(100);
    const numbered = seen.filter((event) => !event.ephemeral);
    expect(numbered.map((event) => event.event)).toEqual([
      'message.stream_started',
      'message.delta',
      'message.delta',
      'message.delta',
      'message.created',
      'message.stream_started',
      'message.delta',
      'message.delta',
      'message.created',
    ]);
    const deltas = numbered.flatMap((event) => (event.event === 'message.delta' ? [[event.data.index, event.data.delta]] : []));
    expect(deltas).toEqual([
      [0, 'Hel'],
      [1, 'lo'],
      [2, ', world'],
      [0, 'Second '],
      [1, 'reply'],
    ]);
    const created = numbered.flatMap((event) => (event.event === 'message.created' ? [event.data] : []));
    expect(created.map((data) => [data.message.id, data.message.content, data.stream_id])).toEqual([
      [stored.id, 'Hello, world', stream.streamId],
      [second.id, 'Second reply', expect.any(String)],
    ]);
    const listed = await sdk().messages.list({ conversation_id: conv });
    expect(listed.data.map((message) => message.content)).toEqual(['Hello, world', 'Second reply']);

    await agentSide.typing(conv);
    await until(() => seen.some((event) => event.event === 'typing'), 5000, 'the typing signal');
    expect(seen.find((event) => event.event === 'typing')).toMatchObject({ ephemeral: true, seq: 0, data: { conversation_id: conv, typing: true } });
  });

  it('ends a streamed reply whose chunks throw, storing the text so far, and rethrows', async () => {
    const conv = await conversation();
    const agentSide = realtime({ codec });
    async function* failing() {
      yield 'partial ';
      yield 'text';
      throw new Error('model went away');
    }
    await expect(agentSide.streamReply({ conversation_id: conv }, failing())).rejects.toThrow('model went away');
    const listed = await sdk().messages.list({ conversation_id: conv });
    expect(listed.data.map((message) => [message.content, message.metadata])).toEqual([['partial text', expect.objectContaining({ incomplete: true })]]);
  });
});

describe('realtime SDK: the offline queue', () => {
  it('holds calls made while offline, up to maxQueue, and sends them in order once resubscribed', async () => {
    const conv = await conversation();
    const offline = gate();
    const rt = realtime({ maxQueue: 4, token: () => offline.wait().then(() => t.apiKey) });
    const { events } = await followContents(rt, conv);
    offline.close();
    rt.drop();
    await until(() => rt.state === 'connecting', 5000, 'the reconnect attempt');

    const calls = ['q0', 'q1', 'q2', 'q3'].map((content) => rt.call('messages.create', { conversation_id: conv, content }));
    expect(rt.queued).toBe(4);
    const refused = await rt.call('messages.create', { conversation_id: conv, content: 'one too many' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StateSetError);
    expect(refused).toMatchObject({ code: 'QUEUE_FULL', type: 'queue_full', retryable: false });
    // Typing is a live signal: while offline it is dropped, not queued.
    await rt.typing(conv);
    expect(rt.queued).toBe(4);
    expect(await sdk().messages.list({ conversation_id: conv })).toMatchObject({ data: [] });

    offline.open();
    const sent = await Promise.all(calls);
    expect(sent.map((message) => message.content)).toEqual(['q0', 'q1', 'q2', 'q3']);
    const listed = await sdk().messages.list({ conversation_id: conv });
    expect(listed.data.map((message) => message.content)).toEqual(['q0', 'q1', 'q2', 'q3']);
    await until(() => events.length === 4, 5000, 'the queued messages as events');
    expect(events).toEqual(['q0', 'q1', 'q2', 'q3']);
    expect(rt.queued).toBe(0);
  });

  it('resends a write whose answer was lost with its idempotency key: the gateway stores it once', async () => {
    const conv = await conversation();
    // A socket whose incoming bytes the test can throw away, as a network failure would.
    type RawSocket = { pause(): void; resume(): void; removeAllListeners(event: string): void };
    const sockets: (WebSocket & { _socket?: RawSocket })[] = [];
    class Stallable extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    const rt = realtime({ WebSocket: Stallable as unknown as WebSocketConstructor });
    await rt.connect();
    const watcher = realtime();
    const { events: seen } = await followContents(watcher, conv);

    const raw = sockets.at(-1)!._socket!;
    raw.pause();
    const answer = rt.call('messages.create', { conversation_id: conv, content: 'exactly once' });
    // The gateway applied it (the watcher saw it) but its answer never reaches rt: what arrived
    // is discarded (a flowing stream without a reader), then the connection drops.
    await until(() => seen.length === 1, 5000, 'the write to be applied');
    raw.removeAllListeners('data');
    raw.resume();
    await sleep(50);
    rt.drop();
    const message = await answer;
    expect(message.content).toBe('exactly once');
    const listed = await sdk().messages.list({ conversation_id: conv });
    expect(listed.data.map((m) => [m.id, m.content])).toEqual([[message.id, 'exactly once']]);
    await sleep(100);
    expect(seen).toEqual(['exactly once']);

    // A stream call is bound to its connection: lost with it, not resent.
    const stream = await rt.startStream({ conversation_id: conv });
    rt.drop();
    const lost = await stream.append('too late').catch((error: unknown) => error);
    expect(lost).toMatchObject({ code: 'CONNECTION_CLOSED' });
  });
});

describe('realtime SDK: subscriptions', () => {
  it('shares one topic between several subscriptions, each unsubscribing on its own, and refuses a topic of another account', async () => {
    const conv = await conversation();
    const rt = realtime();
    const a: string[] = [];
    const b: string[] = [];
    const record = (into: string[]) => ({
      onEvent: (event: RealtimeEvent) => {
        const content = contentOf(event);
        if (content !== null) into.push(content);
      },
    });
    const first = await rt.conversation(conv, record(a));
    const second = await rt.subscribe(`conversation:${conv}`, record(b));
    expect(second.result).toEqual(first.result);
    await t.rest.call('messages.create', { conversation_id: conv, content: 'both' });
    await until(() => a.length === 1 && b.length === 1, 5000, 'the message on both');
    await first.unsubscribe();
    await t.rest.call('messages.create', { conversation_id: conv, content: 'second only' });
    await until(() => b.length === 2, 5000, 'the second message');
    await second.unsubscribe();
    await t.rest.call('messages.create', { conversation_id: conv, content: 'nobody' });
    await sleep(150);
    expect(a).toEqual(['both']);
    expect(b).toEqual(['both', 'second only']);

    const other = await t.newAccount();
    const foreign = await rt.conversation('conv_not_yours', record(a)).catch((error: unknown) => error);
    expect(foreign).toBeInstanceOf(StateSetError);
    expect(foreign).toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    const theirs = await other.rest.call('conversations.create', {
      agent_id: (await other.rest.call('agents.create', { name: 'Theirs' })).id,
    });
    await expect(rt.conversation(theirs.id, record(a))).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    expect(rt.state).toBe('connected');
  });

  it('answers bad input with typed errors and stays connected', async () => {
    const rt = realtime();
    await expect(rt.subscribe('nonsense:1', { onEvent: () => {} })).rejects.toMatchObject({ code: 'VALIDATION_ERROR', type: 'invalid_request' });
    await expect(rt.subscribe('account', {} as never)).rejects.toMatchObject({ code: 'VALIDATION_ERROR', param: 'onEvent' });
    await expect(rt.call('messages.create', {} as never)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(rt.call('no.such' as never, {} as never)).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND', type: 'method_not_found' });
    expect(() => sdk().realtime({ codec: 'xml' as never, WebSocket: WebSocket as unknown as WebSocketConstructor })).toThrow(StateSetError);
    expect(() => sdk().realtime({ url: 'http://example.com/v1/ws', WebSocket: WebSocket as unknown as WebSocketConstructor })).toThrow(/ws:\/\//);
    // Node 20 has no global WebSocket: a clear error rather than a crash on connect.
    expect(() => sdk().realtime()).toThrow(/pass options.WebSocket/);
    expect(rt.state).toBe('connected');
  });
});

describe('realtime SDK: a connection gone silent', () => {
  it('notices a connection that stopped answering (an unanswered ping), reconnects and resumes', async () => {
    const conv = await conversation();
    const sockets: (WebSocket & { _socket?: { pause(): void } })[] = [];
    class Stallable extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    const rt = realtime({ WebSocket: Stallable as unknown as WebSocketConstructor, heartbeatMs: 100, callTimeoutMs: 300 });
    const log = states(rt);
    const { events } = await followContents(rt, conv);
    await sleep(350); // pings answered: still the same connection
    expect(log.seen).toEqual(['connecting', 'connected']);
    // Nothing reaches the client any more, and nothing closes either.
    sockets.at(-1)!._socket!.pause();
    await t.rest.call('messages.create', { conversation_id: conv, content: 'while silent' });
    await until(() => log.seen.includes('disconnected'), 3000, 'the silent connection to be dropped');
    await until(() => rt.state === 'connected' && events.length === 1, 5000, 'the reconnect and the resumed message');
    expect(events).toEqual(['while silent']);
    expect(sockets.length).toBe(2);
  });
});

describe('realtime SDK: the browser bundle', () => {
  it('streams and receives over MessagePack from dist/sdk/stategate-sdk.js (msgpackr browser build)', async () => {
    const outfile = join(tmpdir(), `stategate-sdk-realtime-${process.pid}.js`);
    await buildSdk({ outfile });
    const bundled = (await import(pathToFileURL(outfile).href)) as typeof import('../clients/sdk/index.js');
    const conv = await conversation();
    const client = new bundled.StateSetClient({ apiKey: t.apiKey, baseURL: t.gateway.url });
    const rt = client.realtime({ codec: 'msgpack', WebSocket: WebSocket as unknown as WebSocketConstructor });
    opened.push(rt as unknown as RealtimeClient);
    const seen: string[] = [];
    await rt.conversation(conv, {
      onEvent: (event) => {
        if (event.event === 'message.delta') seen.push(event.data.delta);
        if (event.event === 'message.created') seen.push(`= ${event.data.message.content}`);
      },
    });
    const stored = await rt.streamReply({ conversation_id: conv }, ['from ', 'the ', 'bundle']);
    expect(stored.content).toBe('from the bundle');
    await until(() => seen.length === 4, 5000, 'the deltas and the message');
    expect(seen).toEqual(['from ', 'the ', 'bundle', '= from the bundle']);
    const full = await rt.call('messages.create', { conversation_id: conv, content: 'x' }, { idempotencyKey: 'bundle-key-1' });
    const again = await rt.call('messages.create', { conversation_id: conv, content: 'x' }, { idempotencyKey: 'bundle-key-1' });
    expect(again.id).toBe(full.id);
    await expect(rt.call('messages.create', { conversation_id: conv, content: 'y' }, { idempotencyKey: 'bundle-key-1' })).rejects.toBeInstanceOf(
      bundled.StateSetError,
    );
  });
});

describe('realtime SDK: as in a browser', () => {
  /** The browser's WebSocket as far as the SDK can tell: no headers, and a failed upgrade says nothing of why. */
  class BrowserWebSocket extends WebSocket {
    constructor(url: string, protocols?: string[]) {
      super(url, protocols);
    }
    override addEventListener(type: string, listener: (event: unknown) => void): void {
      super.addEventListener(type as 'message', type === 'error' ? () => listener({ type: 'error' }) : (listener as never));
    }
  }
  // Browsers have no terminate(): drop() must not wait for a close frame a dead network never sends.
  Object.defineProperty(BrowserWebSocket.prototype, 'terminate', { value: undefined });
  const global = globalThis as { WebSocket?: unknown };
  const before = global.WebSocket;
  beforeAll(() => {
    global.WebSocket = BrowserWebSocket;
  });
  afterAll(() => {
    global.WebSocket = before;
  });

  it('sends the credential as a subprotocol, and tells a refused one by asking REST', async () => {
    const conv = await conversation();
    const rt = sdk().realtime({ backoff: { initialMs: 20, maxMs: 200 } });
    opened.push(rt);
    const sub = await rt.conversation(conv, { onEvent: () => {} });
    expect(sub.result.subscribed).toBe(true);
    expect((await rt.call('conversations.get', { conversation_id: conv })).id).toBe(conv);
    const log = states(rt);
    rt.drop();
    expect(log.seen).toEqual(['disconnected']);
    expect(log.details[0]).toMatchObject({ code: 1006 });
    await until(() => rt.state === 'connected', 5000, 'the reconnect');

    const refused = sdk('sg_live_not_a_key').realtime({ backoff: { initialMs: 20, maxMs: 200 } });
    opened.push(refused);
    const refusedLog = states(refused);
    await expect(refused.connect()).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(refusedLog.seen).toEqual(['connecting', 'failed']);
  });
});

describe('realtime SDK: resume that cannot recover, and giving up', () => {
  it('says recovered: false when history no longer covers the position, and goes on from the new position', async () => {
    const conv = await conversation();
    const offline = gate();
    const rt = realtime({ token: () => offline.wait().then(() => t.apiKey) });
    const { events, resubscribed } = await followContents(rt, conv);
    await t.rest.call('messages.create', { conversation_id: conv, content: 'seen' });
    await until(() => events.length === 1, 5000, 'the first message');
    offline.close();
    rt.drop();
    await until(() => rt.state === 'connecting', 5000, 'the reconnect attempt');
    await t.rest.call('messages.create', { conversation_id: conv, content: 'lost' });
    // As the periodic trim does once HISTORY_TTL_SECONDS have passed.
    expect(await t.gateway.store.events.trim(new Date(Date.now() + 60_000))).toBeGreaterThan(0);
    offline.open();
    await until(() => resubscribed.length === 1, 5000, 'the resubscription');
    expect(resubscribed[0]).toMatchObject({ recovered: false, replayed: 0 });
    await t.rest.call('messages.create', { conversation_id: conv, content: 'next' });
    await until(() => events.length === 2, 5000, 'the next message');
    expect(events).toEqual(['seen', 'next']);
  });

  it('fails after a policy close (the key is revoked: 4003), and rejects calls with CONNECTION_FAILED', async () => {
    const created = await t.rest.call('keys.create', { name: 'revoked soon' });
    const rt = realtime({}, created.key);
    const log = states(rt);
    await rt.connect();
    await t.rest.call('keys.revoke', { key_id: created.id });
    await until(() => rt.state === 'failed', 5000, 'the failed state');
    expect(log.seen).toEqual(['connecting', 'connected', 'disconnected', 'failed']);
    expect(log.details.slice(2)).toEqual([
      { code: 4003, reason: 'credentials revoked' },
      { code: 4003, reason: 'credentials revoked' },
    ]);
    await expect(rt.call('agents.list', {})).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    await expect(rt.connect()).rejects.toBeInstanceOf(StateSetError);
  });

  it('fails at once with a refused key, and after a bounded number of tries with a token function that keeps failing', async () => {
    const refused = realtime({}, 'sg_live_not_a_key');
    const log = states(refused);
    await expect(refused.connect()).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(log.seen).toEqual(['connecting', 'failed']);

    let asked = 0;
    const badToken = realtime({ token: async () => (asked++, 'not.a.token') });
    await expect(badToken.connect()).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(asked).toBe(3);

    let thrown = 0;
    const broken = realtime({
      token: async () => {
        thrown++;
        throw new Error('token endpoint down');
      },
    });
    const brokenLog = states(broken);
    const error = await broken.connect().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED' });
    expect((error as Error).message).toContain('token endpoint down');
    expect(thrown).toBe(3);
    expect(brokenLog.seen).toEqual(['connecting', 'connecting', 'connecting', 'failed']);
  });
});

/**
 * A TCP relay in front of whichever gateway is current: the client keeps one URL while the
 * gateway behind it is replaced (a restarted process cannot reuse its port while its closed
 * connections linger in TIME_WAIT).
 */
async function relay(target: () => number): Promise<{ port: number; close(): Promise<void> }> {
  const pairs = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target(), '127.0.0.1');
    pairs.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => {
        pairs.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of pairs) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const pgProblem = await postgresProblem();
if (pgProblem && process.env.CI === 'true') throw new Error(`CI=true requires PostgreSQL for the gateway restart test: ${pgProblem}`);

describe.runIf(!pgProblem)('realtime SDK: a server-side close', () => {
  it('reconnects after the gateway closes its sockets (1001, a restart) and resumes on the new process', async () => {
    const first = await startTestGateway('postgres');
    let second: Gateway | null = null;
    let rt: RealtimeClient | null = null;
    const front = await relay(() => (second ?? first.gateway).port);
    try {
      const agent = await first.rest.call('agents.create', { name: 'Restart' });
      const conv = (await first.rest.call('conversations.create', { agent_id: agent.id })).id;
      const offline = gate();
      rt = new StateSetClient({ apiKey: first.apiKey, baseURL: first.gateway.url }).realtime({
        url: `ws://127.0.0.1:${front.port}/v1/ws`,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        backoff: { initialMs: 20, maxMs: 200 },
        token: () => offline.wait().then(() => first.apiKey),
      });
      const log = states(rt);
      const { events, resubscribed } = await followContents(rt, conv);
      await first.rest.call('messages.create', { conversation_id: conv, content: 'before' });
      await until(() => events.length === 1, 5000, 'the first message');

      offline.close();
      await first.gateway.stop();
      await until(() => rt!.state === 'connecting', 5000, 'the reconnect attempt');
      expect(log.details[log.seen.indexOf('disconnected')]).toMatchObject({ code: 1001 });

      // The same database and port: the positions and the epoch survive the restart.
      second = await startGateway(
        loadConfig({
          PORT: '0',
          HOST: '127.0.0.1',
          DATA_DIR: 'memory://',
          LOG_LEVEL: 'silent',
          PRINT_BOOTSTRAP_KEY: 'false',
          DATABASE_URL: POSTGRES_URL,
          DATABASE_SCHEMA: first.schema,
          DATABASE_POOL_SIZE: '4',
        }),
        { log: createLogger('silent') },
      );
      const rest = new RestClient({ baseUrl: second.url, apiKey: first.apiKey });
      for (const content of ['while down 1', 'while down 2', 'while down 3']) await rest.call('messages.create', { conversation_id: conv, content });
      offline.open();
      await until(() => events.length === 4, 10_000, 'the messages written while it was away');
      await sleep(100);
      expect(events).toEqual(['before', 'while down 1', 'while down 2', 'while down 3']);
      expect(resubscribed).toEqual([expect.objectContaining({ recovered: true, replayed: 3 })]);
      expect(log.seen.at(-1)).toBe('connected');
    } finally {
      await rt?.close();
      await front.close();
      await second?.stop();
      await first.gateway.stop();
      await dropSchema(first.schema);
    }
  });
});
