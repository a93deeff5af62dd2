import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ErrorEnvelope, StateView, successEnvelope } from '../protocol/index.js';
import { availableBackends } from './helpers/backends.js';
import { collect } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * Replays the requests of the public StateBase Node client (`StateBase/statebase-node`: its
 * `src/index.ts`, `src/client.ts` and the generated `src/schema.ts`) against a local gateway and
 * checks the answers have the shapes that client parses. The client is an axios instance with
 * `baseURL`, `X-API-Key` and `Content-Type: application/json`; it reads `response.data` bare, so
 * its baseURL is the gateway's `/statebase` prefix.
 */

// What the client's types (index.ts, schema.ts) read from the answers.
const SessionResponse = z.object({
  object: z.literal('session'),
  id: z.string(),
  agent_id: z.string(),
  user_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  state: z.record(z.string(), z.unknown()),
  memory_count: z.number().int(),
  turn_count: z.number().int(),
  ttl_expires_at: z.string().nullable(),
});
const TurnSide = z.object({ type: z.string(), content: z.string() });
const TurnResponse = z.object({
  object: z.literal('turn'),
  id: z.string(),
  session_id: z.string(),
  turn_number: z.number().int(),
  input: TurnSide,
  output: TurnSide,
  metadata: z.record(z.string(), z.unknown()).nullable(),
  reasoning: z.string().nullable(),
  created_at: z.string(),
});
const MemoryResponse = z.object({
  object: z.literal('memory'),
  id: z.string(),
  session_id: z.string(),
  content: z.string(),
  type: z.string(),
  tags: z.array(z.string()).nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  embedding_id: z.string().nullable(),
  vector_available: z.boolean(),
  created_at: z.string(),
});
const MemorySearchResponse = z.object({
  data: z.array(z.object({ id: z.string(), session_id: z.string(), content: z.string(), type: z.string(), score: z.number() })),
  query: z.string(),
});
const ListOf = <T extends z.ZodType>(item: T) =>
  z.object({ object: z.literal('list'), data: z.array(item), has_more: z.boolean(), first_id: z.string().nullable(), last_id: z.string().nullable() });
const StateGetResponse = z.object({ session_id: z.string(), version: z.number().int(), state: z.record(z.string(), z.unknown()), updated_at: z.string() });
const ContextResponse = z.object({
  state: z.record(z.string(), z.unknown()),
  memories: z.array(z.object({ content: z.string(), type: z.string(), score: z.number() })),
  recent_turns: z.array(z.object({ role: z.enum(['user', 'assistant']), content: z.string() })),
});
const StateBaseError = z.object({
  error: z.object({ type: z.string(), message: z.string(), code: z.string(), param: z.string().optional() }),
  detail: z.string(),
});

const backends = await availableBackends();

describe.each(backends)('StateBase Node client against the gateway on %s', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(backend, { MAX_BODY_BYTES: '65536' });
  });
  afterAll(() => t.stop());

  /** One request as the client's axios instance sends it: its headers, JSON body, params without undefined. */
  async function sb(method: string, path: string, options: { body?: unknown; params?: Record<string, unknown>; apiKey?: string } = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options.params ?? {})) if (value !== undefined) query.append(key, String(value));
    const url = `${t.gateway.url}/statebase${path}${query.size ? `?${query.toString()}` : ''}`;
    const response = await fetch(url, {
      method,
      headers: { 'X-API-Key': options.apiKey ?? t.apiKey, 'Content-Type': 'application/json', Accept: 'application/json, text/plain, */*' },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, data: text ? (JSON.parse(text) as any) : undefined };
  }

  it('health(): GET /health, /health/ready and /health/live answer bare status objects', async () => {
    const health = await sb('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.data).toMatchObject({ status: 'healthy', version: 'v1', services: { store: { status: 'ok' } } });
    expect(typeof health.data.uptime_seconds).toBe('number');
    expect((await sb('GET', '/health/ready')).data.status).toBe('ready');
    expect((await sb('GET', '/health/live')).data).toEqual({ status: 'alive' });
    // The same at the root, as the API's own schema lists them.
    expect((await fetch(`${t.gateway.url}/health/live`)).status).toBe(200);
  });

  it('sessions.create / get / list / delete: bare sessions with object, lists with first_id and last_id', async () => {
    const created = await sb('POST', '/v1/sessions', {
      body: { agent_id: 'ts-parity-test', user_id: 'user_1', metadata: { runtime: 'node' }, initial_state: { status: 'testing' }, ttl_seconds: 3600 },
    });
    expect(created.status).toBe(201);
    const session = SessionResponse.parse(created.data);
    expect(session).toMatchObject({ object: 'session', agent_id: 'ts-parity-test', user_id: 'user_1', state: { status: 'testing' }, turn_count: 0 });
    expect(SessionResponse.parse((await sb('GET', `/v1/sessions/${session.id}`)).data)).toEqual(session);

    // client.ts createSession leaves user_id out and sends undefined fields, which JSON drops.
    const second = SessionResponse.parse(
      (await sb('POST', '/v1/sessions', { body: { agent_id: 'ts-parity-test', metadata: undefined, initial_state: undefined } })).data,
    );
    const third = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'ts-parity-test' } })).data);

    const first = ListOf(SessionResponse).parse((await sb('GET', '/v1/sessions', { params: { agent_id: 'ts-parity-test', limit: 2 } })).data);
    expect(first.data.map((s) => s.id)).toEqual([third.id, second.id]);
    expect(first).toMatchObject({ has_more: true, first_id: third.id, last_id: second.id });
    const next = ListOf(SessionResponse).parse(
      (await sb('GET', '/v1/sessions', { params: { agent_id: 'ts-parity-test', limit: 2, starting_after: first.last_id } })).data,
    );
    expect(next.data.map((s) => s.id)).toEqual([session.id]);
    expect(next.has_more).toBe(false);

    // schema.ts: created_after / created_before.
    const after = ListOf(SessionResponse).parse(
      (await sb('GET', '/v1/sessions', { params: { agent_id: 'ts-parity-test', created_after: session.created_at } })).data,
    );
    expect(after.data.map((s) => s.id)).toEqual([third.id, second.id]);
    const before = ListOf(SessionResponse).parse(
      (await sb('GET', '/v1/sessions', { params: { agent_id: 'ts-parity-test', created_before: second.created_at } })).data,
    );
    expect(before.data.map((s) => s.id)).toEqual([session.id]);

    const deleted = await sb('DELETE', `/v1/sessions/${third.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await sb('GET', `/v1/sessions/${third.id}`)).status).toBe(404);
  });

  it('addTurn / ingest / listTurns: typed sides, turn_number, state_before and state_after, starting_after paging', async () => {
    const session = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'turns', initial_state: { step: 0 } } })).data);
    // addTurn converts strings to {type: 'text', content}; client.ts sends reasoning too.
    const turn1 = TurnResponse.parse(
      (
        await sb('POST', `/v1/sessions/${session.id}/turns`, {
          body: { input: { type: 'text', content: 'Parity check' }, output: { type: 'text', content: 'Logic synced' }, reasoning: 'Testing SDK DX' },
        })
      ).data,
    );
    expect(turn1).toMatchObject({
      turn_number: 1,
      input: { type: 'text', content: 'Parity check' },
      output: { type: 'text', content: 'Logic synced' },
      reasoning: 'Testing SDK DX',
    });
    const created = await sb('POST', `/v1/sessions/${session.id}/turns`, {
      body: {
        input: { type: 'tool_call', content: '{"name":"lookup"}' },
        output: { type: 'tool_result', content: '{"ok":true}' },
        metadata: { model: 'gpt-4' },
      },
    });
    expect(created.status).toBe(201);
    const turn2 = TurnResponse.parse(created.data);
    expect(turn2).toMatchObject({
      turn_number: 2,
      input: { type: 'tool_call' },
      output: { type: 'tool_result' },
      metadata: { model: 'gpt-4' },
      reasoning: null,
    });
    expect(created.data.state_before).toEqual({ step: 0 });
    expect(created.data.state_after).toEqual({ step: 0 });
    const turn3 = TurnResponse.parse(
      (await sb('POST', `/v1/sessions/${session.id}/turns`, { body: { input: { type: 'text', content: 'three' }, output: { type: 'text', content: '3' } } }))
        .data,
    );

    const page = ListOf(TurnResponse).parse((await sb('GET', `/v1/sessions/${session.id}/turns`, { params: { limit: 2 } })).data);
    expect(page.data.map((turn) => turn.turn_number)).toEqual([3, 2]);
    expect(page).toMatchObject({ has_more: true, first_id: turn3.id, last_id: turn2.id });
    const rest = ListOf(TurnResponse).parse((await sb('GET', `/v1/sessions/${session.id}/turns`, { params: { limit: 2, starting_after: page.last_id } })).data);
    expect(rest.data.map((turn) => turn.id)).toEqual([turn1.id]);
    expect(TurnResponse.parse((await sb('GET', `/v1/sessions/${session.id}/turns/${turn2.id}`)).data)).toEqual(turn2);
    expect((await sb('GET', `/v1/sessions/${session.id}`)).data.turn_count).toBe(3);
  });

  it('getState / updateState (PATCH merges) / PUT replaces / rollback / history / fork', async () => {
    const session = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'state', initial_state: { step: 0, user: 'alice' } } })).data);
    const initial = StateGetResponse.parse((await sb('GET', `/v1/sessions/${session.id}/state`)).data);
    expect(initial).toMatchObject({ session_id: session.id, version: 0, state: { step: 0, user: 'alice' } });

    const patched = StateGetResponse.parse(
      (await sb('PATCH', `/v1/sessions/${session.id}/state`, { body: { state: { step: 1, last_tool: 'ts_sdk' }, reasoning: 'tool ran' } })).data,
    );
    expect(patched).toMatchObject({ version: 1, state: { step: 1, user: 'alice', last_tool: 'ts_sdk' } });
    // The SDK's updateState without reasoning sends {state} only.
    expect(
      StateGetResponse.parse((await sb('PATCH', `/v1/sessions/${session.id}/state`, { body: { state: { step: 2 }, reasoning: undefined } })).data).state,
    ).toEqual({
      step: 2,
      user: 'alice',
      last_tool: 'ts_sdk',
    });
    const replaced = StateGetResponse.parse((await sb('PUT', `/v1/sessions/${session.id}/state`, { body: { state: { fresh: true } } })).data);
    expect(replaced).toMatchObject({ version: 3, state: { fresh: true } });

    const rolled = await sb('POST', `/v1/sessions/${session.id}/state/rollback`, { body: { version: 1 } });
    expect(rolled.status).toBe(200);
    expect(rolled.data).toEqual({
      success: true,
      session_id: session.id,
      new_version: 4,
      restored_from_version: 1,
      state: { step: 1, user: 'alice', last_tool: 'ts_sdk' },
    });
    // README: version -1 means the one before the latest; `reason` is kept as the version's reasoning.
    const back = await sb('POST', `/v1/sessions/${session.id}/state/rollback`, { body: { version: -1, reason: 'Agent hallucinated' } });
    expect(back.data).toMatchObject({ new_version: 5, restored_from_version: 3, state: { fresh: true } });
    const missing = await sb('POST', `/v1/sessions/${session.id}/state/rollback`, { body: { version: 99 } });
    expect(missing.status).toBe(404);
    expect(StateBaseError.parse(missing.data).error.type).toBe('version_not_found');

    const history = (await sb('GET', `/v1/sessions/${session.id}/state/history`, { params: { limit: 3 } })).data;
    expect(history.current_version).toBe(5);
    expect(history.data.map((entry: { version: number }) => entry.version)).toEqual([5, 4, 3]);
    expect(history.data[0]).toMatchObject({ state: { fresh: true }, updated_by: null, reasoning: 'Agent hallucinated' });
    const since = (await sb('GET', `/v1/sessions/${session.id}/state/history`, { params: { since_version: 3 } })).data;
    expect(since.data.map((entry: { version: number }) => entry.version)).toEqual([5, 4]);

    const fork = await sb('POST', `/v1/sessions/${session.id}/fork`, { body: { version: 2 } });
    expect(fork.status).toBe(201);
    expect(SessionResponse.parse(fork.data)).toMatchObject({
      agent_id: 'state',
      state: { step: 2 },
      metadata: { forked_from: session.id, forked_from_version: 2 },
    });
  });

  it('PATCH /v1/sessions/{id} replaces metadata and resets the TTL, leaving state and version', async () => {
    const session = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'meta', metadata: { a: 1 }, initial_state: { s: 1 } } })).data);
    const updated = SessionResponse.parse((await sb('PATCH', `/v1/sessions/${session.id}`, { body: { metadata: { b: 2 }, ttl_seconds: 60 } })).data);
    expect(updated).toMatchObject({ metadata: { b: 2 }, state: { s: 1 } });
    const lifetime = Date.parse(updated.ttl_expires_at!) - Date.parse(updated.updated_at);
    expect(lifetime).toBeGreaterThan(59_000);
    expect(lifetime).toBeLessThan(61_000);
    expect((await sb('GET', `/v1/sessions/${session.id}/state`)).data.version).toBe(0);
  });

  it('memory.add / search (GET /v1/memories and /v1/memories/search) / get / PUT / DELETE by id', async () => {
    const session = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'mem' } })).data);
    const other = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'mem' } })).data);
    const added = await sb('POST', '/v1/memories', {
      body: {
        content: 'User prefers email over SMS',
        type: 'preference',
        session_id: session.id,
        tags: ['communication', 'preference'],
        metadata: { source: 'chat' },
        embed: true,
      },
    });
    expect(added.status).toBe(201);
    const memory = MemoryResponse.parse(added.data);
    expect(memory).toMatchObject({
      object: 'memory',
      type: 'preference',
      tags: ['communication', 'preference'],
      metadata: { source: 'chat' },
      vector_available: true,
    });
    // client.ts createMemory: {session_id, content, type}.
    const fact = MemoryResponse.parse(
      (await sb('POST', '/v1/memories', { body: { session_id: session.id, content: 'TypeScript developers prefer strong typing', type: 'fact' } })).data,
    );
    MemoryResponse.parse(
      (await sb('POST', '/v1/memories', { body: { session_id: other.id, content: 'The user in the other session prefers email too', type: 'preference' } }))
        .data,
    );

    // memory.search(query, {session_id, limit}) sends query, top_k and the options (limit included).
    const found = MemorySearchResponse.parse(
      (await sb('GET', '/v1/memories', { params: { query: 'how does the user want email', top_k: 5, session_id: session.id, limit: 5 } })).data,
    );
    expect(found.query).toBe('how does the user want email');
    expect(found.data[0]!.id).toBe(memory.id);
    expect(found.data.every((hit) => hit.session_id === session.id)).toBe(true);
    const everywhere = MemorySearchResponse.parse((await sb('GET', '/v1/memories', { params: { query: 'prefers email' } })).data);
    expect(new Set(everywhere.data.map((hit) => hit.session_id))).toEqual(new Set([session.id, other.id]));
    const byType = MemorySearchResponse.parse((await sb('GET', '/v1/memories', { params: { query: 'typing', types: 'fact' } })).data);
    expect(byType.data.map((hit) => hit.id)).toEqual([fact.id]);
    const byTag = MemorySearchResponse.parse((await sb('GET', '/v1/memories', { params: { query: 'email', tags: 'communication,billing' } })).data);
    expect(byTag.data.map((hit) => hit.id)).toEqual([memory.id]);
    const strict = MemorySearchResponse.parse((await sb('GET', '/v1/memories', { params: { query: 'prefers email', threshold: 0.99 } })).data);
    expect(strict.data).toEqual([]);
    // client.ts searchMemories: GET /v1/memories/search?query&session_id.
    const legacy = MemorySearchResponse.parse((await sb('GET', '/v1/memories/search', { params: { query: 'strong typing', session_id: session.id } })).data);
    expect(legacy.data[0]!.id).toBe(fact.id);

    expect(MemoryResponse.parse((await sb('GET', `/v1/memories/${memory.id}`)).data)).toEqual(memory);
    const updated = (await sb('PUT', `/v1/memories/${memory.id}`, { body: { content: 'User prefers phone calls', tags: ['communication'] } })).data;
    expect(updated).toMatchObject({
      object: 'memory',
      id: memory.id,
      content: 'User prefers phone calls',
      type: 'preference',
      tags: ['communication'],
      version: 2,
    });
    // Re-embedded: the new content is what search now finds.
    const phone = MemorySearchResponse.parse((await sb('GET', '/v1/memories', { params: { query: 'phone calls', session_id: session.id } })).data);
    expect(phone.data[0]!.id).toBe(memory.id);

    const removed = await sb('DELETE', `/v1/memories/${memory.id}`);
    expect(removed.status).toBe(204);
    expect((await sb('GET', `/v1/memories/${memory.id}`)).status).toBe(404);
    expect((await sb('GET', `/v1/sessions/${session.id}`)).data.memory_count).toBe(1);
  });

  it('getContext: memories with content/type/score, recent_turns as role/content, x-statebase-latency header', async () => {
    const session = SessionResponse.parse((await sb('POST', '/v1/sessions', { body: { agent_id: 'ctx', initial_state: { status: 'testing' } } })).data);
    await sb('POST', '/v1/memories', { body: { session_id: session.id, content: 'TS SDK and Python SDK are now twins.', type: 'fact' } });
    await sb('POST', `/v1/sessions/${session.id}/turns`, {
      body: { input: { type: 'text', content: 'Hello' }, output: { type: 'text', content: 'Hi there' } },
    });
    const response = await sb('POST', `/v1/sessions/${session.id}/context`, { body: { query: 'twins' } });
    expect(response.status).toBe(200);
    const context = ContextResponse.parse(response.data);
    expect(context.state).toEqual({ status: 'testing' });
    expect(context.memories).toHaveLength(1);
    expect(context.memories[0]).toMatchObject({ content: 'TS SDK and Python SDK are now twins.', type: 'fact' });
    expect(context.memories[0]!.score).toBeGreaterThan(0);
    expect(context.recent_turns).toEqual([
      expect.objectContaining({ role: 'user', content: 'Hello' }),
      expect.objectContaining({ role: 'assistant', content: 'Hi there' }),
    ]);
    // getContext copies this header into latency_ms.
    expect(Number(response.headers.get('x-statebase-latency'))).toBeGreaterThan(0);
    // getContext(sessionId) without a request sends {}.
    expect(ContextResponse.parse((await sb('POST', `/v1/sessions/${session.id}/context`, { body: {} })).data).memories[0]!.score).toBe(0);
  });

  it('errors: 401 authentication_failed, 403 permission_denied, 404 with param, 400 invalid_request with param, 413 payload_too_large', async () => {
    const unauthenticated = await sb('GET', '/v1/sessions', { apiKey: 'sb_wrong' });
    expect(unauthenticated.status).toBe(401);
    expect(StateBaseError.parse(unauthenticated.data).error.type).toBe('authentication_failed');

    const reader = await t.newAccount({ scopes: ['sessions:read'] });
    const denied = await sb('POST', '/v1/sessions', { apiKey: reader.apiKey, body: { agent_id: 'x' } });
    expect(denied.status).toBe(403);
    expect(StateBaseError.parse(denied.data).error).toMatchObject({ type: 'permission_denied', code: 'INSUFFICIENT_PERMISSIONS' });

    const missing = StateBaseError.parse((await sb('GET', '/v1/sessions/sess_000000000000/state')).data);
    expect(missing.error).toMatchObject({ type: 'session_not_found', param: 'session_id' });
    expect(missing.detail).toBe(missing.error.message);

    const invalid = await sb('POST', '/v1/sessions', { body: { agent_id: 'x', ttl_seconds: -1 } });
    expect(invalid.status).toBe(400);
    expect(StateBaseError.parse(invalid.data).error).toMatchObject({ type: 'invalid_request', param: 'ttl_seconds' });

    const tooLarge = await sb('POST', '/v1/memories', { body: { session_id: 'sess_x', content: 'x'.repeat(70_000) } });
    expect(tooLarge.status).toBe(413);
    expect(StateBaseError.parse(tooLarge.data).error.type).toBe('payload_too_large');
  });

  it('the /v1 routes answer the same operations in the StateSet envelope, and WebSocket calls reach them with events', async () => {
    const created = await fetch(`${t.gateway.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'X-API-Key': t.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent_id: 'envelope', initial_state: { a: 1 } }),
    });
    const session = ((await created.json()) as { data: { id: string } }).data;
    const patched = await fetch(`${t.gateway.url}/v1/sessions/${session.id}/state`, {
      method: 'PATCH',
      headers: { 'X-API-Key': t.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ state: { b: 2 } }),
    });
    expect(successEnvelope(StateView).parse(await patched.json()).data).toMatchObject({ version: 1, state: { a: 1, b: 2 } });
    const missing = await fetch(`${t.gateway.url}/v1/memories/mem_nope`, { headers: { 'X-API-Key': t.apiKey } });
    expect(ErrorEnvelope.parse(await missing.json()).error).toMatchObject({ code: 'RESOURCE_NOT_FOUND', type: 'memory_not_found', param: 'memory_id' });

    const socket = await t.connect();
    await socket.subscribe(`session:${session.id}`);
    const events = collect(socket, `session:${session.id}`, 2);
    const state = await socket.call('sessions.patch_state', { session_id: session.id, state: { c: 3 }, reasoning: 'over ws' });
    expect(state).toMatchObject({ version: 2, state: { a: 1, b: 2, c: 3 } });
    await socket.call('sessions.update', { session_id: session.id, metadata: { tier: 'gold' } });
    const [stateEvent, metadataEvent] = await events;
    expect(stateEvent).toMatchObject({ event: 'session.updated', data: { version: 2, reasoning: 'over ws', session: { state: { a: 1, b: 2, c: 3 } } } });
    expect(metadataEvent).toMatchObject({ event: 'session.updated', data: { version: null, reasoning: null, session: { metadata: { tier: 'gold' } } } });
  });
});
