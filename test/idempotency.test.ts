import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorEnvelope } from '../protocol/index.js';
import { startGateway } from '../src/app.js';
import { createAccount } from '../src/auth/provisioning.js';
import { loadConfig } from '../src/config.js';
import { availableBackends, POSTGRES_URL } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

describe.each(backends)('idempotency on %s', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(backend);
  });
  afterAll(() => t.stop());

  const newKey = () => `idem-${randomBytes(8).toString('hex')}`;
  async function post(path: string, body: string, key?: string, apiKey = t.apiKey) {
    const response = await fetch(t.gateway.url + path, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      body,
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }
  async function agentsNamed(name: string) {
    const page = await t.rest.call('agents.list', { filter: { name }, limit: 100 });
    return page.data;
  }

  it('replays the first response byte for byte, and creates once', async () => {
    const key = newKey();
    const name = `Idem ${key}`;
    const body = JSON.stringify({ name, metadata: { a: 1 } });
    const first = await post('/v1/agents', body, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const second = await post('/v1/agents', body, key);
    expect(second.status).toBe(201);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    // The replay is a request of its own: its own X-Request-Id for the logs, and it counts against the rate limit.
    expect(second.headers.get('x-request-id')).not.toBe(first.headers.get('x-request-id'));
    expect(Number(second.headers.get('x-ratelimit-remaining'))).toBe(Number(first.headers.get('x-ratelimit-remaining')) - 1);
    expect(await agentsNamed(name)).toHaveLength(1);
  });

  it('refuses the same key with a different body (422), and keeps keys per account', async () => {
    const key = newKey();
    expect((await post('/v1/agents', JSON.stringify({ name: `A ${key}` }), key)).status).toBe(201);
    // Byte-identical means byte-identical: the same JSON with other whitespace is another request.
    for (const body of [JSON.stringify({ name: `B ${key}` }), JSON.stringify({ name: `A ${key}` }, null, 1)]) {
      const refused = await post('/v1/agents', body, key);
      expect(refused.status).toBe(422);
      const envelope = ErrorEnvelope.parse(JSON.parse(refused.text));
      expect(envelope.error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', type: 'idempotency_key_reused', details: { idempotency_key: key } });
    }
    // The same key under another account is another key.
    const other = await t.newAccount();
    expect((await post('/v1/agents', JSON.stringify({ name: `B ${key}` }), key, other.apiKey)).status).toBe(201);
  });

  it('does not store validation failures, but stores and replays other failures', async () => {
    const key = newKey();
    const invalid = await post('/v1/agents', JSON.stringify({ name: '' }), key);
    expect(invalid.status).toBe(400);
    // The key is still free: a corrected request runs.
    expect((await post('/v1/agents', JSON.stringify({ name: `Fixed ${key}` }), key)).status).toBe(201);

    const missing = newKey();
    const body = JSON.stringify({ conversation_id: 'conv_missing', content: 'hi' });
    const notFound = await post('/v1/messages', body, missing);
    expect(notFound.status).toBe(404);
    const again = await post('/v1/messages', body, missing);
    expect(again.status).toBe(404);
    expect(again.text).toBe(notFound.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('creates one resource from concurrent POSTs with one key', async () => {
    const key = newKey();
    const name = `Race ${key}`;
    const body = JSON.stringify({ name });
    const results = await Promise.all(Array.from({ length: 8 }, () => post('/v1/agents', body, key)));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => r.text)).size).toBe(1);
    for (const conflict of results.filter((r) => r.status === 409)) {
      expect(ErrorEnvelope.parse(JSON.parse(conflict.text)).error).toMatchObject({ code: 'CONFLICT', details: { idempotency_key: key } });
    }
    expect(await agentsNamed(name)).toHaveLength(1);
    // Once the first has finished, a repeat is a replay.
    const later = await post('/v1/agents', body, key);
    expect(later.text).toBe(created[0]!.text);
  });

  // Holding a row lock from outside needs a second connection: PostgreSQL only.
  it.skipIf(backend !== 'postgres')('refuses a repeat while the first is still running (409), then replays it', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Lock' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const blocker = new pg.Client({ connectionString: POSTGRES_URL });
    await blocker.connect();
    try {
      // The message insert updates its conversation's counter: holding that row's lock holds the first request.
      const searchPath = await findSchema(blocker, conversation.id);
      await blocker.query('begin');
      await blocker.query(`select 1 from ${searchPath}.conversations where id = $1 for update`, [conversation.id]);
      const key = newKey();
      const body = JSON.stringify({ conversation_id: conversation.id, content: 'once' });
      const first = post('/v1/messages', body, key);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const second = await post('/v1/messages', body, key);
      expect(second.status).toBe(409);
      expect(ErrorEnvelope.parse(JSON.parse(second.text)).error.code).toBe('CONFLICT');
      await blocker.query('commit');
      const done = await first;
      expect(done.status).toBe(201);
      const replay = await post('/v1/messages', body, key);
      expect(replay.text).toBe(done.text);
      expect((await t.rest.call('messages.list', { conversation_id: conversation.id })).data).toHaveLength(1);
    } finally {
      await blocker.query('rollback').catch(() => {});
      await blocker.end();
    }
  });

  it('works over WebSocket calls with idempotency_key, sharing records with REST', async () => {
    const socket = await t.connect();
    const agent = await t.rest.call('agents.create', { name: 'WS idem' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const key = newKey();
    const params = { conversation_id: conversation.id, content: 'exactly once' };
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => socket.call('messages.create', params, { idempotency_key: key })));
    const created = results.filter((r): r is PromiseFulfilledResult<any> => r.status === 'fulfilled').map((r) => r.value);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((m) => m.id)).size).toBe(1);
    for (const rejected of results.filter((r) => r.status === 'rejected')) expect((rejected as PromiseRejectedResult).reason.code).toBe('CONFLICT');
    expect(await socket.call('messages.create', params, { idempotency_key: key })).toEqual(created[0]);
    const reused = await failureOf(socket.call('messages.create', { ...params, content: 'other' }, { idempotency_key: key }));
    expect(reused.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await t.rest.call('messages.list', { conversation_id: conversation.id })).data).toHaveLength(1);
  });

  it('deletes expired records, after which the key is free again', async () => {
    const store = t.gateway.store.idempotency;
    const claim = { accountId: t.accountId, key: newKey(), operation: 'agents.create', fingerprint: 'f1', ttlMs: 1, lockMs: 1 };
    expect(await store.begin(claim)).toEqual({ kind: 'started' });
    await store.complete(claim.accountId, claim.key, 201, '{"success":true}');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.sweep()).toBeGreaterThanOrEqual(1);
    expect(await store.begin({ ...claim, fingerprint: 'f2', ttlMs: 60_000, lockMs: 60_000 })).toEqual({ kind: 'started' });
    expect(await store.begin({ ...claim, fingerprint: 'f2', ttlMs: 60_000, lockMs: 60_000 })).toEqual({ kind: 'running' });
    expect(await store.begin({ ...claim, fingerprint: 'f3' })).toEqual({ kind: 'mismatch', operation: 'agents.create' });
  });
});

async function findSchema(client: pg.Client, conversationId: string): Promise<string> {
  const { rows } = await client.query<{ table_schema: string }>(
    "select table_schema from information_schema.tables where table_name = 'conversations' and table_schema like 't\\_%'",
  );
  for (const row of rows) {
    const found = await client.query(`select 1 from ${row.table_schema}.conversations where id = $1`, [conversationId]);
    if (found.rows.length > 0) return row.table_schema;
  }
  throw new Error('schema of the test gateway not found');
}

describe.skipIf(!backends.includes('postgres'))('idempotency across a restart', () => {
  it('replays a response stored before the gateway restarted', async () => {
    const schema = `t_${randomBytes(6).toString('hex')}`;
    const config = loadConfig({
      PORT: '0',
      LOG_LEVEL: 'silent',
      PRINT_BOOTSTRAP_KEY: 'false',
      DATABASE_URL: POSTGRES_URL,
      DATABASE_SCHEMA: schema,
      DATABASE_POOL_SIZE: '2',
    });
    const send = (url: string, apiKey: string) =>
      fetch(`${url}/v1/agents`, {
        method: 'POST',
        headers: { 'x-api-key': apiKey, 'content-type': 'application/json', 'idempotency-key': 'restart-1' },
        body: '{"name":"Survivor"}',
      }).then(async (r) => ({ status: r.status, text: await r.text(), replayed: r.headers.get('idempotent-replayed') }));
    try {
      const before = await startGateway(config);
      const { key } = await createAccount(before.store, { name: 'restart', plan: 'enterprise' });
      const first = await send(before.url, key);
      await before.stop();
      const after = await startGateway(config);
      try {
        const second = await send(after.url, key);
        expect(second).toEqual({ status: 201, text: first.text, replayed: 'true' });
      } finally {
        await after.stop();
      }
    } finally {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    }
  });
});
