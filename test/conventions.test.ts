import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ApiKeyCreated, CloseCode, ErrorEnvelope, successEnvelope } from '../protocol/index.js';
import { availableBackends, POSTGRES_URL } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

describe.each(backends)('API keys, versions and request ids on %s', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(backend);
  });
  afterAll(() => t.stop());

  async function call(method: string, path: string, apiKey: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(t.gateway.url + path, {
      method,
      headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: JSON.parse(text) as Record<string, any> };
  }

  it('creates a key whose secret is shown once, and whose scopes hold', async () => {
    const owner = await t.newAccount();
    const created = await call('POST', '/v1/keys', owner.apiKey, { name: 'reader', scopes: ['agents:read'] });
    expect(created.status).toBe(201);
    const key = successEnvelope(ApiKeyCreated).parse(created.body).data;
    expect(key).toMatchObject({ name: 'reader', scopes: ['agents:read'], status: 'active', revoked_at: null });
    expect(key.key).toMatch(/^sg_live_/);
    expect(key.hint).toBe(`…${key.key.slice(-4)}`);
    expect(key.id).toMatch(/^key_/);

    expect((await call('GET', '/v1/agents', key.key)).status).toBe(200);
    const denied = await call('POST', '/v1/agents', key.key, { name: 'x' });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', details: { required: 'agents:write' } });
    expect((await call('GET', '/v1/keys', key.key)).body.error.details).toEqual({ required: 'keys:read' });

    const listed = await call('GET', '/v1/keys?filter[status]=active&sort=created_at', owner.apiKey);
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(key.key);
    expect(listed.text).not.toContain(owner.apiKey);
    const keys = listed.body.data.data.map((item: unknown) => ApiKey.strict().parse(item));
    expect(keys.map((k: ApiKey) => k.id)).toContain(key.id);
    expect(keys.every((k: ApiKey) => !('key' in k))).toBe(true);
  });

  it('refuses scopes the creating key does not hold, and malformed scopes', async () => {
    const owner = await t.newAccount({ scopes: ['keys:write', 'agents:read'] });
    const beyond = await call('POST', '/v1/keys', owner.apiKey, { scopes: ['*'] });
    expect(beyond.status).toBe(403);
    expect(beyond.body.error.details).toMatchObject({ required: '*' });
    expect((await call('POST', '/v1/keys', owner.apiKey, { scopes: ['agents:*'] })).status).toBe(403);
    expect((await call('POST', '/v1/keys', owner.apiKey, { scopes: ['agents:read'] })).status).toBe(201);
    const malformed = await call('POST', '/v1/keys', owner.apiKey, { scopes: ['agents:delete'] });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.details.issues[0].path).toBe('scopes.0');
    // Without scopes, the new key gets the creator's.
    const inherited = await call('POST', '/v1/keys', owner.apiKey, {});
    expect(inherited.body.data.scopes).toEqual(['keys:write', 'agents:read']);
  });

  it('revokes a key with immediate effect on REST and on open WebSocket connections', async () => {
    const owner = await t.newAccount();
    const victim = (await call('POST', '/v1/keys', owner.apiKey, { name: 'victim' })).body.data as ApiKeyCreated;
    // Used once, so it sits in the key cache and a socket is open with it.
    expect((await call('GET', '/v1/agents', victim.key)).status).toBe(200);
    const socket = await t.connect({ apiKey: victim.key });
    expect((await socket.call('agents.list', {})).data).toEqual([]);

    const revoked = await call('DELETE', `/v1/keys/${victim.id}`, owner.apiKey);
    expect(revoked.status).toBe(200);
    expect(revoked.body.data).toMatchObject({ id: victim.id, status: 'revoked' });
    expect(revoked.body.data.revoked_at).not.toBeNull();

    const refused = await call('GET', '/v1/agents', victim.key);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('INVALID_API_KEY');
    // The open socket is closed with "credentials no longer accepted", and cannot come back.
    expect((await socket.closedPromise()).code).toBe(CloseCode.UNAUTHORIZED);
    await expect(t.connect({ apiKey: victim.key })).rejects.toThrow();

    // Revoking again answers the revoked key; another account cannot see it at all.
    expect((await call('DELETE', `/v1/keys/${victim.id}`, owner.apiKey)).body.data.status).toBe('revoked');
    const stranger = await t.newAccount();
    expect((await call('DELETE', `/v1/keys/${victim.id}`, stranger.apiKey)).body.error).toMatchObject({
      code: 'RESOURCE_NOT_FOUND',
      type: 'api_key_not_found',
    });
    const revokedList = await call('GET', '/v1/keys?filter[status]=revoked', owner.apiKey);
    expect(revokedList.body.data.data.map((k: ApiKey) => k.id)).toEqual([victim.id]);
  });

  it('manages keys over WebSocket calls too', async () => {
    const owner = await t.newAccount();
    const socket = await t.connect({ apiKey: owner.apiKey });
    const created = await socket.call('keys.create', { name: 'ws', scopes: ['messages:read'] });
    expect(created.key).toMatch(/^sg_live_/);
    const listed = await socket.call('keys.list', { filter: { name: 'ws' } });
    expect(listed.data.map((k) => k.id)).toEqual([created.id]);
    expect((await socket.call('keys.revoke', { key_id: created.id })).status).toBe('revoked');
    expect((await call('GET', '/v1/agents', created.key)).status).toBe(401);
  });

  it('accepts X-API-Version v1 and dated versions, echoes it in meta.version, and refuses unknown ones', async () => {
    expect((await call('GET', '/v1/agents', t.apiKey)).body.meta.version).toBe('v1');
    expect((await call('GET', '/v1/agents', t.apiKey, undefined, { 'x-api-version': 'v1' })).body.meta.version).toBe('v1');
    expect((await call('GET', '/v1/agents', t.apiKey, undefined, { 'x-api-version': '2024-01-01' })).body.meta.version).toBe('2024-01-01');
    const created = await call('POST', '/v1/agents', t.apiKey, { name: 'versioned' }, { 'x-api-version': '2024-01-01', 'idempotency-key': 'versioned-1' });
    expect(created.body.meta.version).toBe('2024-01-01');

    const refused = await call('GET', '/v1/agents', t.apiKey, undefined, { 'x-api-version': 'v2' });
    expect(refused.status).toBe(400);
    const envelope = ErrorEnvelope.parse(refused.body);
    expect(envelope.error.code).toBe('VALIDATION_ERROR');
    expect(envelope.error.message).toBe('Unsupported X-API-Version "v2": supported versions are v1, 2024-01-01');
    expect(envelope.error.details).toEqual({ header: 'X-API-Version', value: 'v2', supported: ['v1', '2024-01-01'] });
    // The path carries the major version: no unversioned routes.
    expect((await call('GET', '/agents', t.apiKey)).status).toBe(404);

    // The WebSocket upgrade checks the header the same way.
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(t.gateway.wsUrl, { headers: { 'x-api-key': t.apiKey, 'x-api-version': 'v2' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    expect(status).toBe(400);
    const ok = new WebSocket(t.gateway.wsUrl, { headers: { 'x-api-key': t.apiKey, 'x-api-version': '2024-01-01' } });
    await new Promise((resolve, reject) => {
      ok.on('open', resolve);
      ok.on('error', reject);
    });
    ok.close();
  });

  it('puts the request id in meta and X-Request-Id on every answer, errors included', async () => {
    const answers = [
      await call('GET', '/v1/agents', t.apiKey),
      await call('GET', '/v1/agents', 'sg_live_wrong'),
      await call('GET', '/v1/agents/agent_missing', t.apiKey),
      await call('GET', '/v1/agents?filter[nope]=1', t.apiKey),
      await call('GET', '/v1/nowhere', t.apiKey),
    ];
    for (const answer of answers) {
      expect(answer.headers.get('x-request-id')).toMatch(/^req_/);
      expect(answer.body.meta.request_id).toBe(answer.headers.get('x-request-id'));
    }
    const traced = await call('GET', '/v1/agents?filter[nope]=1', t.apiKey, undefined, { 'x-request-id': 'trace-abc.1' });
    expect(traced.headers.get('x-request-id')).toBe('trace-abc.1');
    expect(traced.body.meta.request_id).toBe('trace-abc.1');
  });
});

describe.skipIf(!backends.includes('postgres'))('request ids in the logs', () => {
  it('logs a server error with the request id the client was given, over REST and WebSocket', async () => {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const t = await startTestGateway('postgres', {}, { log: pino({ level: 'info' }, sink) });
    try {
      const socket = await t.connect();
      // Break the store under the running gateway: the next agents query fails inside PostgreSQL.
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`alter table ${t.schema}.agents rename to agents_gone`);
      await admin.end();

      const response = await fetch(`${t.gateway.url}/v1/agents`, { headers: { 'x-api-key': t.apiKey, 'x-request-id': 'trace-500' } });
      expect(response.status).toBe(500);
      const body = ErrorEnvelope.parse(await response.json());
      expect(body.error.message).not.toMatch(/agents|relation|sql/i);
      expect(body.meta.request_id).toBe('trace-500');
      const logged = lines.find((line) => line.level === 50 && line.request_id === 'trace-500');
      expect(logged).toMatchObject({ operation: 'agents.list', account_id: t.accountId });
      expect(JSON.stringify(logged)).toMatch(/agents/);

      expect((await failureOf(socket.call('agents.list', {}))).code).toBe('INTERNAL_ERROR');
      const wsLogged = lines.filter((line) => line.level === 50 && line.operation === 'agents.list' && line.request_id !== 'trace-500');
      expect(wsLogged.length).toBeGreaterThan(0);
      expect(wsLogged[0]!.request_id).toMatch(/^req_/);
    } finally {
      await t.stop();
    }
  });
});
