import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { openRawGraphqlWs } from './helpers/graphql-ws-raw.js';

/**
 * Every GraphQL document costs at least one unit of the key's rate limit, even one that runs no
 * operation (`{ __typename }`, a validation error); an ordinary document costs what its operations
 * cost, as before (its unit pays for the first of them).
 */
describe('GraphQL documents and the rate limit', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(() => t.stop());

  async function gql(apiKey: string, query: string) {
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as { data?: any; errors?: any[] } };
  }

  it('refuses documents that run no operation once a Starter key has spent its 100 a minute, with 429 and Retry-After', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const answers = [];
    for (let i = 0; i < 150; i++) answers.push(await gql(starter.apiKey, i % 2 ? '{ __typename }' : '{ nope }'));
    expect(answers.slice(0, 100).every((answer) => answer.status === 200 || answer.body.errors?.[0]?.extensions.code === 'GRAPHQL_VALIDATION_FAILED')).toBe(
      true,
    );
    const refused = answers.slice(100);
    expect(refused.every((answer) => answer.status === 429)).toBe(true);
    const [first] = refused;
    expect(first!.body.data).toBeUndefined();
    expect(first!.body.errors![0].extensions).toMatchObject({ code: 'RATE_LIMITED', type: 'rate_limit_exceeded' });
    const retryAfter = first!.body.errors![0].extensions.retry_after;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(first!.headers.get('retry-after')).toBe(String(retryAfter));
    // The same budget as REST.
    expect((await fetch(`${t.gateway.url}/v1/agents`, { headers: { 'x-api-key': starter.apiKey } })).status).toBe(429);
  });

  it('charges a document of one operation one unit, not two', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const statuses = [];
    for (let i = 0; i < 101; i++) {
      const answer = await gql(starter.apiKey, '{ agents_list(limit: 1) { has_more } }');
      expect(answer.body.errors?.[0]?.extensions.code ?? 'ok').toBe(i < 100 ? 'ok' : 'RATE_LIMITED');
      statuses.push(answer.status);
    }
    expect(statuses.filter((status) => status === 200)).toHaveLength(100);
    expect(statuses[100]).toBe(429);
  });

  it('charges each graphql-ws subscribe message, refusing it with RATE_LIMITED for its id', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const { socket, next } = await openRawGraphqlWs(t.gateway.url, { apiKey: starter.apiKey });
    const outcomes: string[] = [];
    let refused: any;
    for (let i = 0; i < 101; i++) {
      socket.send(JSON.stringify({ type: 'subscribe', id: `op${i}`, payload: { query: '{ __typename }' } }));
      const answer = await next();
      expect(answer.id).toBe(`op${i}`);
      outcomes.push(answer.type === 'next' ? 'ok' : answer.payload[0].extensions.code);
      if (answer.type === 'next') expect(await next()).toMatchObject({ type: 'complete', id: `op${i}` });
      else refused = answer.payload[0];
    }
    expect(outcomes.slice(0, 100).every((outcome) => outcome === 'ok')).toBe(true);
    expect(outcomes[100]).toBe('RATE_LIMITED');
    expect(refused.extensions.retry_after).toBeGreaterThanOrEqual(1);
    socket.close();
  });
});
