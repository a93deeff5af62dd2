import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorEnvelope, MAX_INPUT_DEPTH, msgpackCodec } from '../../protocol/index.js';
import { RestClient } from '../../clients/index.js';
import { issueKey } from '../../src/auth/provisioning.js';
import { availableBackends } from '../helpers/backends.js';
import { failureOf } from '../helpers/failure.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Issue 16, defects 3, 4 (validation), 6, 7 and 9: client input that PostgreSQL cannot store or
 * that is nested without bound answers 400 VALIDATION_ERROR on every transport (it answered 500),
 * crafted cursors and out-of-range dates answer 400, and a key revokes only keys within its scopes.
 */
const backends = await availableBackends();

const NUL = 'a\u0000b';
const msgpackEncode = (frame: unknown) => Buffer.from(msgpackCodec.encode(frame));
const LONE = 'a\uD800b';

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

/** The same nesting as JSON text, built without JSON.stringify (which would itself run out of stack). */
function nestedJson(depth: number): string {
  return `${'{"d":'.repeat(depth)}"leaf"${'}'.repeat(depth)}`;
}

function cursorOf(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const PLACEHOLDER = '__nested__';

/** A MessagePack frame with `depth` one-entry maps where PLACEHOLDER was, built by hand (packing it would recurse). */
function nestedMsgpack(frame: unknown, depth: number): Buffer {
  const packed = msgpackEncode(frame);
  const marker = msgpackEncode(PLACEHOLDER);
  const at = packed.indexOf(marker);
  const level = Buffer.from([0x81, 0xa1, 0x64]); // {"d": …}
  const deep = Buffer.concat([Buffer.alloc(level.length * depth).fill(level), msgpackEncode('leaf')]);
  return Buffer.concat([packed.subarray(0, at), deep, packed.subarray(at + marker.length)]);
}

/** Opens a raw socket and returns a function that sends one frame and resolves with the next frame or the close. */
async function rawSocket(url: string, apiKey: string, protocol = 'stategate.v1.json') {
  const ws = new WebSocket(url, protocol, { headers: { 'x-api-key': apiKey } });
  const frames: unknown[] = [];
  let waiter: (() => void) | null = null;
  let closed: { code: number; reason: string } | null = null;
  ws.on('message', (data: Buffer, isBinary) => {
    frames.push(isBinary ? msgpackCodec.decode(data) : JSON.parse(data.toString()));
    waiter?.();
  });
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
    waiter?.();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (): Promise<unknown> => {
    while (frames.length === 0 && !closed) await new Promise<void>((resolve) => (waiter = resolve));
    waiter = null;
    return frames.length > 0 ? frames.shift() : { closed };
  };
  expect(await next()).toMatchObject({ type: 'welcome' });
  return {
    ws,
    next,
    async send(frame: string | Buffer, binary = false): Promise<unknown> {
      ws.send(frame, { binary });
      return next();
    },
    close: () => ws.close(),
  };
}

describe.each(backends)('input validation on %s', (backend) => {
  let t: TestGateway;
  let conversationId: string;
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(t.gateway.url + path, { method: 'POST', headers: { 'x-api-key': t.apiKey, 'content-type': 'application/json', ...headers }, body });
  const get = (path: string) => fetch(t.gateway.url + path, { headers: { 'x-api-key': t.apiKey } });

  async function expectValidation(response: Response): Promise<ErrorEnvelope> {
    const body = (await response.json()) as unknown;
    expect({ status: response.status, body }).toMatchObject({ status: 400, body: { success: false, error: { code: 'VALIDATION_ERROR' } } });
    return ErrorEnvelope.parse(body);
  }

  beforeAll(async () => {
    t = await startTestGateway(backend);
    const agent = await t.rest.call('agents.create', { name: 'Validator' });
    conversationId = (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
  });
  afterAll(() => t.stop());

  it('refuses NUL and lone surrogates in body fields, metadata keys and values, with 400 (defect 3)', async () => {
    for (const text of [NUL, LONE]) {
      const bodies: [string, unknown][] = [
        ['/v1/agents', { name: text }],
        ['/v1/agents', { name: 'ok', metadata: { [text]: 1 } }],
        ['/v1/agents', { name: 'ok', metadata: { deep: { list: ['fine', text] } } }],
        ['/v1/messages', { conversation_id: conversationId, content: text }],
        ['/v1/messages', { conversation_id: conversationId, content: 'ok', metadata: { note: text } }],
        ['/v1/sessions', { agent_id: 'a', initial_state: { nested: { value: text } } }],
        ['/v1/tokens', { subject: text, topics: [`conversation:${conversationId}`], permissions: ['messages:read'] }],
      ];
      for (const [path, body] of bodies) {
        const envelope = await expectValidation(await post(path, JSON.stringify(body)));
        expect(envelope.error.message).toMatch(/NUL|lone surrogate/);
      }
    }
    // Nothing of it was stored: the lone surrogate is not silently replaced (it was, in agents.create).
    const agents = await t.rest.call('agents.list', { limit: 100 });
    expect(agents.data.map((agent) => agent.name)).toEqual(['Validator']);
  });

  it('refuses NUL and lone surrogates in path ids, query values and filters (defect 3)', async () => {
    await expectValidation(await get('/v1/agents/agent_%00x'));
    await expectValidation(await get(`/v1/conversations/${conversationId}%00/messages`));
    await expectValidation(await get('/v1/agents?filter[name]=a%00b'));
    await expectValidation(await get(`/v1/agents?filter=${encodeURIComponent(JSON.stringify({ name: NUL }))}`));
    await expectValidation(await get(`/v1/agents?filter=${encodeURIComponent(JSON.stringify({ role: { $in: ['x', LONE] } }))}`));
    await expectValidation(await get('/v1/agents?cursor=%00'));
    await expectValidation(await get('/v1/sessions?user_id=u%00'));
  });

  it('refuses NUL and lone surrogates over the WebSocket in JSON and MessagePack, keeping the connection (defect 3)', async () => {
    for (const protocol of ['stategate.v1.json', 'stategate.v1.msgpack']) {
      const socket = await rawSocket(t.gateway.wsUrl, t.apiKey, protocol);
      const binary = protocol.endsWith('msgpack');
      const encode = (frame: unknown) => (binary ? msgpackEncode(frame) : JSON.stringify(frame));
      const frames: unknown[] = [
        { type: 'call', id: 1, method: 'agents.create', params: { name: NUL } },
        { type: 'call', id: 2, method: 'messages.create', params: { conversation_id: conversationId, content: 'x', metadata: { [NUL]: true } } },
        { type: 'call', id: 3, method: 'agents.get', params: { agent_id: NUL } },
        { type: 'call', id: 4, method: 'agents.create', params: { name: 'ok' }, idempotency_key: NUL },
        { type: 'subscribe', id: 5, topic: `conversation:${conversationId}${NUL}` },
        { type: 'subscribe', id: 6, topic: `conversation:${conversationId}`, since: 0, epoch: NUL },
      ];
      if (!binary) frames.push({ type: 'call', id: 7, method: 'agents.create', params: { name: LONE } });
      for (const frame of frames) {
        const answer = await socket.send(encode(frame), binary);
        expect(answer).toMatchObject({ type: 'error', id: (frame as { id: number }).id, error: { code: 'VALIDATION_ERROR' } });
      }
      // Still open: an ordinary call is answered.
      expect(await socket.send(encode({ type: 'ping', id: 99 }), binary)).toEqual({ type: 'pong', id: 99 });
      socket.close();
    }
  });

  it('refuses a stream delta holding a NUL or a lone surrogate, and the stream stays usable (defect 4)', async () => {
    const socket = await t.connect();
    const { stream_id } = await socket.call('streams.start', { conversation_id: conversationId });
    for (const delta of [NUL, LONE]) {
      const failure = await failureOf(socket.call('streams.append', { stream_id, delta }));
      expect(failure.code).toBe('VALIDATION_ERROR');
    }
    await socket.call('streams.append', { stream_id, delta: 'fine' });
    const message = await socket.call('streams.end', { stream_id });
    expect(message.content).toBe('fine');
  });

  it(`bounds nesting at ${MAX_INPUT_DEPTH} levels before walking it: 400 and an error frame, not 500 (defect 7)`, async () => {
    // At the limit: accepted (the body object is one level, metadata another).
    const atLimit = await post('/v1/agents', JSON.stringify({ name: 'deep-ok', metadata: { m: nested(MAX_INPUT_DEPTH - 3) } }));
    expect(atLimit.status).toBe(201);
    const over = await expectValidation(await post('/v1/agents', JSON.stringify({ name: 'deep', metadata: { m: nested(MAX_INPUT_DEPTH) } })));
    expect(over.error.message).toMatch(/nested deeper than 32/);
    await expectValidation(await post('/v1/agents', `{"name":"deep","metadata":{"m":${nestedJson(5000)}}}`));
    await expectValidation(await post('/v1/sessions', `{"agent_id":"a","initial_state":{"s":${nestedJson(5000)}}}`));

    const socket = await rawSocket(t.gateway.wsUrl, t.apiKey);
    const deepCall = `{"type":"call","id":"deep","method":"agents.create","params":{"name":"x","metadata":{"m":${nestedJson(10_000)}}}}`;
    expect(await socket.send(deepCall)).toMatchObject({ type: 'error', id: 'deep', error: { code: 'VALIDATION_ERROR' } });
    const msgpackSocket = await rawSocket(t.gateway.wsUrl, t.apiKey, 'stategate.v1.msgpack');
    const deepPacked = nestedMsgpack(
      { type: 'call', id: 'deep', method: 'sessions.create', params: { agent_id: 'a', initial_state: { s: PLACEHOLDER } } },
      10_000,
    );
    expect(await msgpackSocket.send(deepPacked, true)).toMatchObject({ type: 'error', error: { code: 'VALIDATION_ERROR' } });
    socket.close();
    msgpackSocket.close();
  });

  it('refuses crafted cursors and out-of-range dates with 400 (defect 6)', async () => {
    const crafted = [
      ['/v1/agents', { s: '-created_at', v: 'not-a-date', k: 1 }],
      ['/v1/agents', { s: '-created_at', v: '9999999-01-01', k: 1 }],
      ['/v1/agents', { s: '-created_at', v: '2024-02-30 10:00:00+00', k: 1 }],
      ['/v1/agents', { s: '-created_at', v: '0000-01-01 00:00:00+00', k: 1 }],
      ['/v1/agents?sort=name', { s: 'name', v: NUL, k: 1 }],
      ['/v1/conversations?sort=-message_count', { s: '-message_count', v: 'abc', k: 1 }],
      ['/v1/conversations?sort=-message_count', { s: '-message_count', v: '1e999999', k: 1 }],
    ] as const;
    for (const [path, cursor] of crafted) {
      const separator = path.includes('?') ? '&' : '?';
      const envelope = await expectValidation(await get(`${path}${separator}cursor=${cursorOf(cursor)}`));
      expect(envelope.error.message).toMatch(/cursor/);
    }
    for (const bound of ['0000-01-01', '-000001-01-01', '10000-01-01', '9999-12-31T23:59:60+14:00']) {
      const filter = encodeURIComponent(JSON.stringify({ created_at: { $lt: bound } }));
      await expectValidation(await get(`/v1/agents?filter=${filter}`));
    }
    await expectValidation(await get(`/v1/conversations/${conversationId}/messages?filter[created_at][$gte]=0000-06-01`));
    await expectValidation(await get(`/v1/conversations?filter[created_at][$gte]=0000-06-01`));
    // A real cursor still pages, and the widest dates still filter.
    await t.rest.call('conversations.create', { agent_id: (await t.rest.call('agents.create', { name: 'second' })).id });
    for (const sort of ['-created_at', '-message_count', 'updated_at'] as const) {
      const first = await t.rest.call('conversations.list', { limit: 1, sort });
      expect(first.has_more).toBe(true);
      const second = await t.rest.call('conversations.list', { limit: 1, sort, cursor: first.next_cursor! });
      expect(second.data[0]!.id).not.toBe(first.data[0]!.id);
    }
    const wide = await t.rest.call('agents.list', { filter: { created_at: { $gte: '0001-01-01', $lte: '9999-12-31' } } });
    expect(wide.data.length).toBeGreaterThan(0);
  });

  it('lets a key revoke only keys within its own scopes, or itself (defect 9)', async () => {
    const store = t.gateway.store;
    const root = await issueKey(store, { accountId: t.accountId, scopes: ['*'] });
    const narrow = await issueKey(store, { accountId: t.accountId, scopes: ['keys:write', 'agents:read'] });
    const reader = await issueKey(store, { accountId: t.accountId, scopes: ['agents:read'] });
    const writer = await issueKey(store, { accountId: t.accountId, scopes: ['agents:write'] });
    const narrowRest = new RestClient({ baseUrl: t.gateway.url, apiKey: narrow.key });

    for (const target of [root, writer]) {
      const failure = await failureOf(narrowRest.call('keys.revoke', { key_id: target.keyId }));
      expect(failure.code).toBe('INSUFFICIENT_PERMISSIONS');
      expect(failure.status).toBe(403);
    }
    // Still working: the refusal revoked nothing.
    expect((await new RestClient({ baseUrl: t.gateway.url, apiKey: root.key }).call('agents.list', {})).data.length).toBeGreaterThan(0);
    expect((await narrowRest.call('keys.revoke', { key_id: reader.keyId })).status).toBe('revoked');
    expect((await narrowRest.call('keys.revoke', { key_id: narrow.keyId })).status).toBe('revoked');
    // A `*` key revokes anything.
    expect((await t.rest.call('keys.revoke', { key_id: writer.keyId })).status).toBe('revoked');
    expect((await failureOf(narrowRest.call('keys.revoke', { key_id: 'key_unknown' }))).code).toBe('INVALID_API_KEY');
  });
});
