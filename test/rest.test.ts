import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorEnvelope, REST_OPERATION_NAMES, successEnvelope, Agent } from '../protocol/index.js';
import { ApiError } from '../clients/index.js';
import { availableBackends } from './helpers/backends.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

describe.each(backends)('REST on %s', (backend) => {
  let t: TestGateway;
  let base: string;
  const auth = () => ({ authorization: `Bearer ${t.apiKey}` });

  beforeAll(async () => {
    t = await startTestGateway(backend, { MAX_BODY_BYTES: '4096' });
    base = t.gateway.url;
  });
  afterAll(() => t.stop());

  async function raw(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}) {
    const response = await fetch(base + path, { method, headers: init.headers ?? {}, ...(init.body === undefined ? {} : { body: init.body }) });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
  }

  function expectError(result: { status: number; body: unknown }, status: number, code: string) {
    expect(result.status).toBe(status);
    const envelope = ErrorEnvelope.parse(result.body);
    expect(envelope.error.code).toBe(code);
    expect(envelope.meta.documentation_url).toBe(`https://docs.stateset.com/errors/${code}`);
    return envelope;
  }

  it('runs the quick start: create an agent, start a conversation, send a message', async () => {
    const agentRes = await raw('POST', '/v1/agents', {
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Support Agent',
        role: 'Customer Success Specialist',
        instructions: 'Help customers with their questions',
        capabilities: { can_create_tickets: true, can_process_returns: true, can_issue_refunds: false },
        metadata: { department: 'customer_support', language: 'en' },
      }),
    });
    expect(agentRes.status).toBe(201);
    const agent = successEnvelope(Agent).parse(agentRes.body);
    expect(agent.data).toMatchObject({ name: 'Support Agent', capabilities: { can_issue_refunds: false }, status: 'active' });
    expect(agent.data.id).toMatch(/^agent_[A-Za-z0-9]{16}$/);
    expect(agent.meta.version).toBe('v1');
    expect(agent.meta.request_id).toMatch(/^req_/);
    expect(agentRes.headers.get('x-request-id')).toBe(agent.meta.request_id);
    expect(typeof agent.meta.execution_time_ms).toBe('number');

    const conversation = await t.rest.call('conversations.create', { agent_id: agent.data.id, channel: 'web', metadata: { source: 'website_chat' } });
    expect(conversation).toMatchObject({ agent_id: agent.data.id, status: 'open', channel: 'web', message_count: 0 });
    expect(conversation.id).toMatch(/^conv_/);

    const message = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'I need help with my order', role: 'user' });
    expect(message).toMatchObject({ conversation_id: conversation.id, content: 'I need help with my order', role: 'user' });
    const listed = await t.rest.call('messages.list', { conversation_id: conversation.id });
    expect(listed.data).toEqual([message]);
    expect((await t.rest.call('conversations.get', { conversation_id: conversation.id })).message_count).toBe(1);
  });

  it('accepts X-API-Key as well as Bearer', async () => {
    const result = await raw('GET', '/v1/agents', { headers: { 'x-api-key': t.apiKey } });
    expect(result.status).toBe(200);
    expect(result.body.success).toBe(true);
  });

  it('refuses a missing or wrong key with 401 INVALID_API_KEY', async () => {
    expect(expectError(await raw('GET', '/v1/agents'), 401, 'INVALID_API_KEY').error.type).toBe('authentication_failed');
    expectError(await raw('GET', '/v1/agents', { headers: { authorization: 'Bearer sg_live_nope' } }), 401, 'INVALID_API_KEY');
    expectError(await raw('GET', '/v1/agents', { headers: { authorization: 'Basic abc' } }), 401, 'INVALID_API_KEY');
  });

  it('answers malformed JSON with 400 VALIDATION_ERROR', async () => {
    expectError(await raw('POST', '/v1/agents', { headers: { ...auth(), 'content-type': 'application/json' }, body: '{"name":' }), 400, 'VALIDATION_ERROR');
    expectError(await raw('POST', '/v1/agents', { headers: { ...auth(), 'content-type': 'application/json' }, body: '[1,2]' }), 400, 'VALIDATION_ERROR');
  });

  it('answers a wrong content type with 415', async () => {
    expectError(await raw('POST', '/v1/agents', { headers: { ...auth(), 'content-type': 'text/plain' }, body: '{"name":"x"}' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a body over the limit with 413 and keeps serving', async () => {
    const big = JSON.stringify({ name: 'x', instructions: 'y'.repeat(10_000) });
    expectError(await raw('POST', '/v1/agents', { headers: { ...auth(), 'content-type': 'application/json' }, body: big }), 413, 'PAYLOAD_TOO_LARGE');
    expect((await raw('GET', '/v1/agents', { headers: auth() })).status).toBe(200);
  });

  it('answers an unknown route with 404 and a wrong method with 405, in the envelope', async () => {
    expectError(await raw('GET', '/v1/nothing-here', { headers: auth() }), 404, 'RESOURCE_NOT_FOUND');
    const wrongMethod = expectError(await raw('PUT', '/v1/agents', { headers: auth() }), 405, 'METHOD_NOT_ALLOWED');
    expect(wrongMethod.error.details).toEqual({ allowed: ['POST', 'GET'] });
  });

  it('lists unknown fields and wrong types in VALIDATION_ERROR details', async () => {
    const result = expectError(
      await raw('POST', '/v1/agents', { headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 5, colour: 'red' }) }),
      400,
      'VALIDATION_ERROR',
    );
    const issues = result.error.details!.issues as { path: string; code: string }[];
    expect(issues.map((issue) => issue.code).sort()).toEqual(['invalid_type', 'unrecognized_keys']);
    expect(issues.find((issue) => issue.code === 'invalid_type')!.path).toBe('name');
  });

  it('rejects a limit outside 1..100', async () => {
    expectError(await raw('GET', '/v1/agents?limit=101', { headers: auth() }), 400, 'VALIDATION_ERROR');
    expectError(await raw('GET', '/v1/agents?limit=abc', { headers: auth() }), 400, 'VALIDATION_ERROR');
    expectError(await raw('GET', '/v1/agents?cursor=garbage', { headers: auth() }), 400, 'VALIDATION_ERROR');
  });

  it('answers an unknown id with 404 naming the id', async () => {
    const result = expectError(await raw('GET', '/v1/agents/agent_doesnotexist', { headers: auth() }), 404, 'RESOURCE_NOT_FOUND');
    expect(result.error.details).toMatchObject({ agent_id: 'agent_doesnotexist' });
    expect(result.error.type).toBe('agent_not_found');
  });

  it('refuses a message to a conversation that does not exist, and stores nothing', async () => {
    const error = await t.rest.call('messages.create', { conversation_id: 'conv_missing', content: 'hello' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: 'RESOURCE_NOT_FOUND', details: { conversation_id: 'conv_missing' } });
  });

  it('refuses a conversation for an unknown agent', async () => {
    await expect(t.rest.call('conversations.create', { agent_id: 'agent_missing' })).rejects.toMatchObject({
      status: 404,
      details: { agent_id: 'agent_missing' },
    });
  });

  it('hides one account’s resources from another (404, not 403)', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Private' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const other = await t.newAccount();
    await expect(other.rest.call('agents.get', { agent_id: agent.id })).rejects.toMatchObject({ status: 404 });
    await expect(other.rest.call('agents.delete', { agent_id: agent.id })).rejects.toMatchObject({ status: 404 });
    await expect(other.rest.call('conversations.get', { conversation_id: conversation.id })).rejects.toMatchObject({ status: 404 });
    await expect(other.rest.call('messages.create', { conversation_id: conversation.id, content: 'x' })).rejects.toMatchObject({ status: 404 });
    await expect(other.rest.call('messages.list', { conversation_id: conversation.id })).rejects.toMatchObject({ status: 404 });
    expect((await other.rest.call('agents.list', {})).data).toEqual([]);
    expect(await t.rest.call('agents.get', { agent_id: agent.id })).toEqual(agent);
  });

  it('enforces key scopes with 403 INSUFFICIENT_PERMISSIONS naming the permission', async () => {
    const reader = await t.newAccount({ scopes: ['agents:read'] });
    expect((await reader.rest.call('agents.list', {})).data).toEqual([]);
    await expect(reader.rest.call('agents.create', { name: 'x' })).rejects.toMatchObject({
      status: 403,
      code: 'INSUFFICIENT_PERMISSIONS',
      details: { required: 'agents:write' },
    });
  });

  it('updates and deletes an agent, and escalates a conversation', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Before' });
    const updated = await t.rest.call('agents.update', { agent_id: agent.id, name: 'After', capabilities: { can_issue_refunds: true } });
    expect(updated).toMatchObject({ id: agent.id, name: 'After', capabilities: { can_issue_refunds: true } });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id, channel: 'sms' });
    const escalated = await t.rest.call('conversations.update', { conversation_id: conversation.id, status: 'escalated' });
    expect(escalated.status).toBe('escalated');
    await expect(t.rest.call('conversations.update', { conversation_id: conversation.id, satisfaction_score: 9 })).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
    });
    expect(await t.rest.call('agents.delete', { agent_id: agent.id })).toEqual({ id: agent.id, deleted: true });
    await expect(t.rest.call('agents.get', { agent_id: agent.id })).rejects.toMatchObject({ status: 404 });
  });

  it('honours a well-formed client X-Request-Id', async () => {
    const result = await raw('GET', '/v1/agents', { headers: { ...auth(), 'x-request-id': 'client-trace-123' } });
    expect(result.body.meta.request_id).toBe('client-trace-123');
    const bad = await raw('GET', '/v1/agents', { headers: { ...auth(), 'x-request-id': 'has spaces and <>' } });
    expect(bad.body.meta.request_id).toMatch(/^req_/);
  });

  it('serves an OpenAPI document of every operation, generated from the operation table', async () => {
    const doc = (await raw('GET', '/v1/openapi.json')).body as {
      openapi: string;
      paths: Record<string, Record<string, { operationId: string; parameters?: { name: string; in: string }[] }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.values(doc.paths).flatMap((methods) => Object.values(methods));
    expect(operations.map((o) => o.operationId).sort()).toEqual([...REST_OPERATION_NAMES].sort());
    expect(doc.paths['/v1/agents/{agent_id}']!.get!.parameters).toContainEqual(expect.objectContaining({ name: 'agent_id', in: 'path' }));
    expect(doc.paths['/v1/agents']!.get!.parameters!.map((p) => p.name)).toContain('limit');
  });

  it('exposes Prometheus metrics counting operations by outcome, and open connections', async () => {
    await t.rest.call('agents.list', {});
    await t.rest.call('agents.get', { agent_id: 'agent_missing_for_metrics' }).catch(() => {});
    const socket = await t.connect();
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/stategate_operations_total\{operation="agents.list",transport="rest",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/stategate_operations_total\{operation="agents.get",transport="rest",outcome="RESOURCE_NOT_FOUND"\} [1-9]/);
    expect(text).toMatch(/stategate_websocket_connections [1-9]/);
    await socket.close();
  });

  it('serves health and readiness', async () => {
    expect((await raw('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await raw('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({ store: 'ok', bus: 'local', uws: 'native' });
  });
});
