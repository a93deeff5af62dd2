import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeEventLoopLag } from './helpers/event-loop-lag.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { openRawGraphqlWs } from './helpers/graphql-ws-raw.js';

/**
 * GraphQL variables obey the rules every input obeys (protocol/text.ts, as on REST and /v1/ws): at
 * most 32 levels of nesting, no NUL, no lone surrogate. They are checked before anything walks or
 * hashes them, whether an operation uses them or not.
 */
const MAX_STALL_MS = 100;

type Answer = { status: number; body: { data?: any; errors?: { message: string; extensions: Record<string, any> }[] } };

describe('GraphQL variables', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(() => t.stop());

  async function post(body: unknown, raw?: string): Promise<Answer> {
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.apiKey}` },
      body: raw ?? JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  }

  async function get(query: string, variables: string): Promise<Answer> {
    const response = await fetch(`${t.gateway.url}/graphql?${new URLSearchParams({ query, variables })}`, { headers: { 'x-api-key': t.apiKey } });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  }

  it('refuses deeply nested or unstorable variables with VALIDATION_ERROR, over POST and GET', async () => {
    const depth = 100_000;
    const raw = `{"query":"{ __typename }","variables":{"v":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const probe = probeEventLoopLag();
    const deep = await post(undefined, raw);
    expect(probe.stop()).toBeLessThan(MAX_STALL_MS);
    expect(deep.status).toBe(400);
    expect(deep.body.errors![0]!.extensions).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(deep.body.errors![0]!.message).toMatch(/nested deeper than 32 levels/);

    const viaGet = await get('{ __typename }', JSON.stringify({ v: JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) }));
    expect(viaGet.status).toBe(400);
    expect(viaGet.body.errors![0]!.extensions.code).toBe('VALIDATION_ERROR');

    const nul = await post({ query: 'mutation($name: String!) { agents_create(name: $name) { id } }', variables: { name: 'a\u0000b' } });
    expect(nul.status).toBe(400);
    expect(nul.body.data).toBeUndefined();
    expect(nul.body.errors![0]!.extensions.code).toBe('VALIDATION_ERROR');

    const loneSurrogate = await post({ query: '{ __typename }', variables: { ['k\uD800']: 1 } });
    expect(loneSurrogate.status).toBe(400);
    expect(loneSurrogate.body.errors![0]!.extensions.code).toBe('VALIDATION_ERROR');
  });

  it('refuses deeply nested variables over graphql-ws with an error for that operation only', async () => {
    // Raw frames: a client library could not even serialise variables this deep.
    const { socket, next } = await openRawGraphqlWs(t.gateway.url, { apiKey: t.apiKey });
    // As deep as a frame under WS_MAX_FRAME_BYTES (64 KiB) allows: a larger one closes the socket (1009).
    const depth = 30_000;
    socket.send(`{"type":"subscribe","id":"deep","payload":{"query":"{ __typename }","variables":{"v":${'['.repeat(depth)}${']'.repeat(depth)}}}}`);
    const refused = await next();
    expect(refused).toMatchObject({ type: 'error', id: 'deep' });
    expect(refused.payload[0].extensions.code).toBe('VALIDATION_ERROR');
    // The connection stays open: the next operation runs.
    socket.send(JSON.stringify({ type: 'subscribe', id: 'plain', payload: { query: '{ __typename }' } }));
    expect(await next()).toEqual({ type: 'next', id: 'plain', payload: { data: { __typename: 'Query' } } });
    socket.close();
  });
});
