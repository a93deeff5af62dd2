import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorEnvelope, Session, successEnvelope } from '../protocol/index.js';
import { availableBackends } from './helpers/backends.js';
import { collect } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

describe.each(backends)('Sessions API on %s', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway(backend, { SESSION_SWEEP_INTERVAL_MS: '3600000', SESSION_SWEEP_BATCH: '2' });
  });
  afterAll(() => t.stop());

  /** A request exactly as the document's curl examples send it: X-API-Key and a JSON body. */
  async function curl(method: string, path: string, body?: string) {
    const response = await fetch(t.gateway.url + path, {
      method,
      headers: { 'X-API-Key': t.apiKey, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  }

  function expectError(result: { status: number; body: unknown }, status: number, code: string, type?: string) {
    expect(result.status).toBe(status);
    const envelope = ErrorEnvelope.parse(result.body);
    expect(envelope.error.code).toBe(code);
    if (type) expect(envelope.error.type).toBe(type);
    return envelope.error;
  }

  it("runs every example of the document with the document's bodies", async () => {
    const created = await curl(
      'POST',
      '/v1/sessions',
      `{
    "agent_id": "customer-support",
    "user_id": "user_123",
    "initial_state": {
      "status": "new",
      "priority": "normal"
    },
    "metadata": {
      "channel": "web",
      "region": "us-west"
    },
    "ttl_seconds": 3600
  }`,
    );
    expect(created.status).toBe(201);
    const session = successEnvelope(Session).parse(created.body).data;
    expect(Object.keys(created.body.data).sort()).toEqual(
      ['agent_id', 'created_at', 'id', 'memory_count', 'metadata', 'state', 'ttl_expires_at', 'turn_count', 'updated_at', 'user_id'].sort(),
    );
    expect(session.id).toMatch(/^sess_[A-Za-z0-9]{12}$/);
    expect(session).toMatchObject({
      agent_id: 'customer-support',
      user_id: 'user_123',
      state: { status: 'new', priority: 'normal' },
      metadata: { channel: 'web', region: 'us-west' },
      memory_count: 0,
      turn_count: 0,
    });
    const lifetime = Date.parse(session.ttl_expires_at) - Date.parse(session.created_at);
    expect(lifetime).toBeGreaterThan(3599_000);
    expect(lifetime).toBeLessThan(3601_000);

    const got = await curl('GET', `/v1/sessions/${session.id}`);
    expect(got.status).toBe(200);
    expect(got.body.data).toEqual(session);

    const context = await curl(
      'POST',
      `/v1/sessions/${session.id}/context`,
      `{
    "query": "What did I tell you about my preferences?",
    "memory_limit": 5,
    "turn_limit": 10
  }`,
    );
    expect(context.status).toBe(200);
    expect(context.body.data).toEqual({ state: { status: 'new', priority: 'normal' }, memories: [], recent_turns: [] });

    const updated = await curl(
      'POST',
      `/v1/sessions/${session.id}/state`,
      `{
    "state": {
      "status": "in_progress",
      "current_step": "gathering_requirements"
    },
    "reasoning": "User provided initial requirements"
  }`,
    );
    expect(updated.status).toBe(200);
    expect(updated.body.data.state).toEqual({ status: 'in_progress', current_step: 'gathering_requirements' });

    // The document rolls back to version 3 and forks from 5: make those versions exist first.
    for (let step = 2; step <= 5; step++) {
      await t.rest.call('sessions.update_state', { session_id: session.id, state: { step }, reasoning: `step ${step}` });
    }
    const rolledBack = await curl('POST', `/v1/sessions/${session.id}/rollback`, '{"version": 3}');
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body.data.state).toEqual({ step: 3 });
    const versions = await t.rest.call('sessions.versions', { session_id: session.id, limit: 3 });
    expect(versions.data.map((v) => [v.version, v.reasoning])).toEqual([
      [6, 'rollback to version 3'],
      [5, 'step 5'],
      [4, 'step 4'],
    ]);

    const forked = await curl('POST', `/v1/sessions/${session.id}/fork`, '{"version": 5}');
    expect(forked.status).toBe(201);
    expect(forked.body.data).toMatchObject({
      agent_id: 'customer-support',
      user_id: 'user_123',
      state: { step: 5 },
      metadata: { channel: 'web', region: 'us-west', forked_from: session.id, forked_from_version: 5 },
    });
    expect(forked.body.data.id).not.toBe(session.id);

    const listed = await curl('GET', '/v1/sessions?limit=10&agent_id=customer-support');
    expect(listed.status).toBe(200);
    expect(listed.body.data.data.map((s: Session) => s.id)).toEqual([forked.body.data.id, session.id]);
    expect(listed.body.data).toMatchObject({ has_more: false, next_cursor: null });

    const deleted = await curl('DELETE', `/v1/sessions/${session.id}`);
    expect(deleted.body.data).toEqual({ id: session.id, deleted: true });
    expectError(await curl('GET', `/v1/sessions/${session.id}`), 404, 'RESOURCE_NOT_FOUND', 'session_not_found');
    expect((await curl('GET', `/v1/sessions/${forked.body.data.id}`)).status).toBe(200);
  });

  it('pushes each state change to session:<id> subscribers with its version', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'ws-agent' });
    const topic = `session:${session.id}`;
    const socket = await t.connect();
    await socket.subscribe(topic);
    const events = collect(socket, topic, 4);
    await t.rest.call('sessions.update_state', { session_id: session.id, state: { a: 1 }, reasoning: 'first' });
    await socket.call('sessions.update_state', { session_id: session.id, state: { a: 2 } });
    await t.rest.call('sessions.rollback', { session_id: session.id, version: 1 });
    await t.rest.call('sessions.delete', { session_id: session.id });
    const received = await events;
    expect(received.map((e) => e.event)).toEqual(['session.updated', 'session.updated', 'session.updated', 'session.deleted']);
    expect(received.slice(0, 3).map((e) => (e.data as any).version)).toEqual([1, 2, 3]);
    expect(received.slice(0, 3).map((e) => (e.data as any).session.state)).toEqual([{ a: 1 }, { a: 2 }, { a: 1 }]);
    expect((received[0]!.data as any).reasoning).toBe('first');
    expect(received[3]!.data).toEqual({ session_id: session.id });
  });

  it('announces session.expired when the sweeper deletes an expired session', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'short', ttl_seconds: 1 });
    const socket = await t.connect();
    await socket.subscribe(`session:${session.id}`);
    const expired = collect(socket, `session:${session.id}`, 1);
    await t.rest.call('turns.create', { session_id: session.id, input: 'q', output: 'a' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // Expired is gone at once, before any sweep.
    await expect(t.rest.call('sessions.get', { session_id: session.id })).rejects.toMatchObject({ status: 404, type: 'session_not_found' });
    await expect(t.rest.call('sessions.context', { session_id: session.id })).rejects.toMatchObject({ status: 404 });
    const others = await Promise.all([1, 2, 3].map(() => t.rest.call('sessions.create', { agent_id: 'short', ttl_seconds: 1 })));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // Batches of 2: four expired sessions need three statements, all in one sweep.
    expect(await t.gateway.sweeper.sweep()).toBe(1 + others.length);
    const [event] = await expired;
    expect(event).toMatchObject({ event: 'session.expired', data: { session_id: session.id, ttl_expires_at: session.ttl_expires_at } });
    expect(await t.gateway.sweeper.sweep()).toBe(0);
  });

  it('extends the TTL when a state update asks for it', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'ttl', ttl_seconds: 60 });
    const updated = await t.rest.call('sessions.update_state', { session_id: session.id, state: {}, ttl_seconds: 7200 });
    expect(Date.parse(updated.ttl_expires_at) - Date.now()).toBeGreaterThan(7100_000);
    const untouched = await t.rest.call('sessions.update_state', { session_id: session.id, state: { x: 1 } });
    expect(untouched.ttl_expires_at).toBe(updated.ttl_expires_at);
  });

  it('gives every concurrent update its own version, and refuses a stale expected_version', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'race' });
    await Promise.all(Array.from({ length: 12 }, (_, i) => t.rest.call('sessions.update_state', { session_id: session.id, state: { i } })));
    const versions = await t.rest.call('sessions.versions', { session_id: session.id, limit: 100 });
    expect(versions.data.map((v) => v.version)).toEqual(Array.from({ length: 13 }, (_, i) => 12 - i));

    const racers = await Promise.allSettled(
      [1, 2, 3].map((n) => t.rest.call('sessions.update_state', { session_id: session.id, state: { n }, expected_version: 12 })),
    );
    expect(racers.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const losers = racers.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(losers).toHaveLength(2);
    for (const loser of losers) expect(loser).toMatchObject({ status: 409, code: 'CONFLICT', details: { current_version: 13 } });
  });

  it('records turns newest first and keeps turn_count right', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'turns' });
    for (let i = 1; i <= 3; i++) await t.rest.call('turns.create', { session_id: session.id, input: `q${i}`, output: `a${i}`, metadata: { i } });
    const page = await t.rest.call('turns.list', { session_id: session.id, limit: 2 });
    expect(page.data.map((turn) => turn.input)).toEqual(['q3', 'q2']);
    const rest = await t.rest.call('turns.list', { session_id: session.id, cursor: page.next_cursor! });
    expect(rest.data.map((turn) => turn.input)).toEqual(['q1']);
    expect((await t.rest.call('sessions.get', { session_id: session.id })).turn_count).toBe(3);
    const context = await t.rest.call('sessions.context', { session_id: session.id, turn_limit: 2 });
    expect(context.recent_turns.map((turn) => turn.output)).toEqual(['a3', 'a2']);
  });

  it('pages with starting_after as well as cursor, filtered by user_id', async () => {
    const other = await t.newAccount();
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await other.rest.call('sessions.create', { agent_id: 'pager', user_id: 'u1' }));
    await other.rest.call('sessions.create', { agent_id: 'pager', user_id: 'u2' });
    const first = await other.rest.call('sessions.list', { limit: 2, user_id: 'u1' });
    expect(first.data.map((s) => s.id)).toEqual([made[2]!.id, made[1]!.id]);
    const byId = await other.rest.call('sessions.list', { limit: 2, user_id: 'u1', starting_after: made[1]!.id });
    const byCursor = await other.rest.call('sessions.list', { limit: 2, user_id: 'u1', cursor: first.next_cursor! });
    expect(byId.data.map((s) => s.id)).toEqual([made[0]!.id]);
    expect(byCursor).toEqual(byId);
    const mine = await t.rest.call('sessions.create', { agent_id: 'pager' });
    await expect(other.rest.call('sessions.list', { starting_after: mine.id })).rejects.toMatchObject({ status: 400, code: 'VALIDATION_ERROR' });
    await expect(other.rest.call('sessions.list', { starting_after: 'sess_nonexistent0' })).rejects.toMatchObject({ status: 400 });
  });

  it('answers bad input with the documented codes', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'strict' });
    const id = session.id;
    const bad: [string, string, string][] = [
      ['POST', '/v1/sessions', '{"user_id":"u"}'],
      ['POST', '/v1/sessions', '{"agent_id":"a","ttl_seconds":2592001}'],
      ['POST', '/v1/sessions', '{"agent_id":"a","ttl_seconds":1.5}'],
      ['POST', '/v1/sessions', '{"agent_id":"a","initial_state":[1,2]}'],
      ['POST', '/v1/sessions', '{"agent_id":"a","initial_state":"on"}'],
      ['POST', '/v1/sessions', '{"agent_id":7}'],
      ['POST', `/v1/sessions/${id}/context`, '{"memory_limit":21}'],
      ['POST', `/v1/sessions/${id}/context`, '{"turn_limit":51}'],
      ['POST', `/v1/sessions/${id}/state`, '{"state":null}'],
      ['POST', `/v1/sessions/${id}/state`, '{"reasoning":"no state"}'],
      ['POST', `/v1/sessions/${id}/state`, '{"state":{},"expected_version":-1}'],
      ['POST', `/v1/sessions/${id}/rollback`, '{"version":-1}'],
      ['POST', `/v1/sessions/${id}/rollback`, '{}'],
      ['POST', `/v1/sessions/${id}/fork`, '{"version":"latest"}'],
      ['GET', '/v1/sessions?limit=101', ''],
    ];
    for (const [method, path, body] of bad) {
      const result = await curl(method, path, method === 'GET' ? undefined : body);
      expectError(result, 400, 'VALIDATION_ERROR', 'invalid_request');
    }
    const missing = expectError(await curl('POST', `/v1/sessions/${id}/rollback`, '{"version":9}'), 404, 'RESOURCE_NOT_FOUND', 'version_not_found');
    expect(missing.message).toBe('Version 9 does not exist; the latest version of this session is 0');
    expect(missing.details).toMatchObject({ version: 9, latest_version: 0 });
    expectError(await curl('POST', `/v1/sessions/${id}/fork`, '{"version":4}'), 404, 'RESOURCE_NOT_FOUND', 'version_not_found');
    expectError(await curl('POST', '/v1/sessions/sess_missing00000/state', '{"state":{}}'), 404, 'RESOURCE_NOT_FOUND', 'session_not_found');
    const unauthenticated = await fetch(`${t.gateway.url}/v1/sessions/${id}`);
    expect(unauthenticated.status).toBe(401);
    expect(((await unauthenticated.json()) as any).error.type).toBe('authentication_failed');
  });

  it('hides one account’s sessions from another, on REST and WebSocket', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'private' });
    const other = await t.newAccount();
    const calls = [
      other.rest.call('sessions.get', { session_id: session.id }),
      other.rest.call('sessions.update_state', { session_id: session.id, state: {} }),
      other.rest.call('sessions.rollback', { session_id: session.id, version: 0 }),
      other.rest.call('sessions.fork', { session_id: session.id }),
      other.rest.call('sessions.context', { session_id: session.id }),
      other.rest.call('sessions.versions', { session_id: session.id }),
      other.rest.call('sessions.delete', { session_id: session.id }),
      other.rest.call('turns.create', { session_id: session.id, input: 'x', output: 'y' }),
      other.rest.call('memories.create', { session_id: session.id, content: 'x' }),
      other.rest.call('memories.search', { session_id: session.id, query: 'x' }),
    ];
    for (const result of await Promise.allSettled(calls)) {
      expect(result).toMatchObject({ status: 'rejected', reason: { status: 404, type: 'session_not_found' } });
    }
    const intruder = await t.connect({ apiKey: other.apiKey });
    await expect(intruder.subscribe(`session:${session.id}`)).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND', type: 'session_not_found' });
    expect((await t.rest.call('sessions.get', { session_id: session.id })).state).toEqual({});
  });

  it('enforces sessions:read and sessions:write', async () => {
    const reader = await t.newAccount({ scopes: ['sessions:read'] });
    await expect(reader.rest.call('sessions.create', { agent_id: 'x' })).rejects.toMatchObject({ status: 403, details: { required: 'sessions:write' } });
    expect((await reader.rest.call('sessions.list', {})).data).toEqual([]);
    const writer = await t.newAccount({ scopes: ['agents:*'] });
    await expect(writer.rest.call('sessions.list', {})).rejects.toMatchObject({ status: 403, details: { required: 'sessions:read' } });
  });
});
