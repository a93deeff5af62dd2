import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, ErrorEnvelope, pageOf, successEnvelope } from '../protocol/index.js';
import { availableBackends } from './helpers/backends.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * Replays the requests of the StateSet Node client (`stateset/stateset-node`: `src/core/http-client.ts`,
 * `src/client.ts`, `src/core/base-resource.ts`, `src/utils/retry.ts`) with baseURL `…/v1`:
 * `Authorization: Bearer`, `Accept: application/json`, its User-Agent, a fresh uuid v4 as
 * `X-Request-ID` on every request, `Idempotency-Key` when asked, lists with `limit`/`offset`/`cursor`.
 * `client.request()` returns the body as sent, so the envelope is what its caller receives.
 */
const backends = await availableBackends();

describe.each(backends)('StateSet Node client against the gateway on %s', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(backend);
  });
  afterAll(() => t.stop());

  async function ss(
    method: string,
    path: string,
    options: { body?: unknown; params?: Record<string, unknown>; headers?: Record<string, string>; apiKey?: string } = {},
  ) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options.params ?? {})) if (value !== undefined) query.append(key, String(value));
    const requestId = randomUUID();
    const response = await fetch(`${t.gateway.url}/v1/${path}${query.size ? `?${query.toString()}` : ''}`, {
      method,
      headers: {
        Authorization: `Bearer ${options.apiKey ?? t.apiKey}`,
        'Content-Type': 'application/json',
        Accept: 'application/json',
        'User-Agent': 'stateset-node-client/1.0.0',
        'X-Request-ID': requestId,
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    return { requestId, status: response.status, headers: response.headers, data: (await response.json()) as any };
  }

  it('echoes the client X-Request-ID (a uuid) in the header and meta.request_id; replaces an unsafe one', async () => {
    const answer = await ss('POST', 'agents', { body: { name: 'Support Agent', role: 'Customer Success' } });
    expect(answer.status).toBe(201);
    expect(answer.headers.get('x-request-id')).toBe(answer.requestId);
    expect(answer.data.meta.request_id).toBe(answer.requestId);
    const failed = await ss('GET', 'agents/agent_missing');
    expect(failed.status).toBe(404);
    expect(failed.data.meta.request_id).toBe(failed.requestId);

    const unsafe = await ss('GET', 'agents', { headers: { 'X-Request-ID': 'bad id\twith spaces' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(/^req_/);
    expect(unsafe.data.meta.request_id).toBe(unsafe.headers.get('x-request-id'));
  });

  it('Idempotency-Key replays the first answer for a retried POST', async () => {
    const key = randomUUID();
    const first = await ss('POST', 'agents', { body: { name: 'Once' }, headers: { 'Idempotency-Key': key } });
    const retry = await ss('POST', 'agents', { body: { name: 'Once' }, headers: { 'Idempotency-Key': key } });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.data.data.id).toBe(first.data.data.id);
    // The replay's own request id is in the header; meta is the original answer's.
    expect(retry.headers.get('x-request-id')).toBe(retry.requestId);
    expect(retry.data.meta.request_id).toBe(first.requestId);
  });

  it('BaseResource.list sends limit and offset (offset 0 by default): offset pages, cursor still works, both at once is refused', async () => {
    const owner = await t.newAccount();
    const ids: string[] = [];
    for (const name of ['a1', 'a2', 'a3', 'a4', 'a5']) ids.push((await ss('POST', 'agents', { apiKey: owner.apiKey, body: { name } })).data.data.id);
    const newestFirst = [...ids].reverse();

    const first = await ss('GET', 'agents', { apiKey: owner.apiKey, params: { limit: 2, offset: 0 } });
    const page1 = successEnvelope(pageOf(Agent)).parse(first.data).data;
    expect(page1.data.map((a) => a.id)).toEqual(newestFirst.slice(0, 2));
    expect(page1.has_more).toBe(true);
    const page2 = successEnvelope(pageOf(Agent)).parse((await ss('GET', 'agents', { apiKey: owner.apiKey, params: { limit: 2, offset: 2 } })).data).data;
    expect(page2.data.map((a) => a.id)).toEqual(newestFirst.slice(2, 4));
    const last = successEnvelope(pageOf(Agent)).parse(
      (await ss('GET', 'agents', { apiKey: owner.apiKey, params: { limit: 2, offset: 4, sort: '-created_at' } })).data,
    ).data;
    expect(last.data.map((a) => a.id)).toEqual(newestFirst.slice(4));
    expect(last.has_more).toBe(false);

    const byCursor = successEnvelope(pageOf(Agent)).parse(
      (await ss('GET', 'agents', { apiKey: owner.apiKey, params: { limit: 2, cursor: page1.next_cursor } })).data,
    ).data;
    expect(byCursor.data.map((a) => a.id)).toEqual(page2.data.map((a) => a.id));

    const both = await ss('GET', 'agents', { apiKey: owner.apiKey, params: { limit: 2, offset: 2, cursor: page1.next_cursor } });
    expect(both.status).toBe(400);
    expect(ErrorEnvelope.parse(both.data).error.code).toBe('VALIDATION_ERROR');
  });

  it('healthCheck(): GET {baseURL}/health answers 200', async () => {
    const response = await fetch(`${t.gateway.url}/v1/health`, { headers: { Accept: 'application/json' } });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { status: string }).status).toBe('healthy');
  });

  it('retry-friendly statuses: 429 with Retry-After and retry_after; 401, 403, 404 and 400 are not in the retry set', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    let refused: Awaited<ReturnType<typeof ss>> | null = null;
    for (let i = 0; i < 101 && !refused; i++) {
      const answer = await ss('GET', 'agents', { apiKey: starter.apiKey, params: { limit: 1 } });
      if (answer.status !== 200) refused = answer;
    }
    expect(refused?.status).toBe(429);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused!.data.error).toMatchObject({ code: 'RATE_LIMITED', type: 'rate_limit_exceeded' });
    expect(refused!.data.error.retry_after).toBeGreaterThan(0);

    expect((await ss('GET', 'agents', { apiKey: 'sg_live_wrong' })).status).toBe(401);
    expect((await ss('GET', 'agents/agent_missing')).status).toBe(404);
    expect((await ss('POST', 'agents', { body: { name: '' } })).status).toBe(400);
  });
});
