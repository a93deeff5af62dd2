import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeEventLoopLag } from './helpers/event-loop-lag.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * Documents built to make the gateway work for a long time before it answers: they are refused
 * in milliseconds (the event loop never stalls), and without credentials nothing is parsed at all.
 */
const MAX_STALL_MS = 100;

/** `query { ...F0 }`, each fragment spreading the next twice: 2^n fields once expanded (904 bytes for n = 22). */
function doublingFragments(n: number): string {
  const fragments = Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return ['query { ...F0 }', ...fragments, `fragment F${n} on Query { __typename }`].join('\n');
}

type Answer = { status: number; headers: Headers; body: { data?: any; errors?: { message: string; extensions: Record<string, any> }[] } };

describe('GraphQL documents that would stall the gateway', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
    // The first fetch loads the client and the first document compiles graphql-js's paths: not what is measured.
    await health();
    await post({ query: '{ __typename }' });
  });
  afterAll(() => t.stop());

  async function post(body: unknown, apiKey: string | null = t.apiKey, raw?: string): Promise<Answer> {
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      body: raw ?? JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Answer['body'] };
  }

  async function get(query: string, apiKey: string | null = t.apiKey): Promise<Answer> {
    const response = await fetch(`${t.gateway.url}/graphql?${new URLSearchParams({ query })}`, { headers: apiKey ? { 'x-api-key': apiKey } : {} });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Answer['body'] };
  }

  /** /healthz, sent alongside: how long it waited for its answer. */
  async function health(): Promise<{ status: number; ms: number }> {
    const startedAt = performance.now();
    const response = await fetch(`${t.gateway.url}/healthz`);
    await response.arrayBuffer();
    return { status: response.status, ms: performance.now() - startedAt };
  }

  it.each([22, 30])('refuses %i doubling fragments with QUERY_TOO_COSTLY over POST and GET, while /healthz answers', async (n) => {
    const query = doublingFragments(n);
    if (n === 22) expect(query.length).toBe(904);
    const probe = probeEventLoopLag();
    const [viaPost, viaGet, healthz] = await Promise.all([post({ query }), get(query), health()]);
    const stall = probe.stop();
    for (const answer of [viaPost, viaGet]) {
      expect(answer.status).toBe(400);
      expect(answer.body.data).toBeUndefined();
      expect(answer.body.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_COSTLY', max_cost: 20000 });
      // Saturating arithmetic: a finite number, however many times the fragments double.
      expect(Number.isFinite(answer.body.errors![0]!.extensions.cost)).toBe(true);
    }
    expect(healthz.status).toBe(200);
    expect(healthz.ms).toBeLessThan(500);
    expect(stall).toBeLessThan(MAX_STALL_MS);
  });

  it.each([22, 30])('answers %i doubling fragments without a key with 401 INVALID_API_KEY, before parsing them', async (n) => {
    const query = doublingFragments(n);
    const probe = probeEventLoopLag();
    const [viaPost, viaGet, badKey, healthz] = await Promise.all([post({ query }, null), get(query, null), post({ query }, 'sg_live_nope'), health()]);
    const stall = probe.stop();
    for (const answer of [viaPost, viaGet, badKey]) {
      expect(answer.status).toBe(401);
      expect(answer.body.errors![0]!.extensions.code).toBe('INVALID_API_KEY');
    }
    // Not even the body's shape is looked at before the key.
    expect((await post(undefined, null, 'not json')).status).toBe(401);
    expect(healthz.status).toBe(200);
    expect(stall).toBeLessThan(MAX_STALL_MS);
  });

  it('does not let a negative or huge size argument offset or overflow the cost', async () => {
    const costly = 'b: agent(id: "agent_x") { conversations(last: 100) { edges { node { messages(last: 100) { content role } } } } }';
    const offset = await post({ query: `{ a: agents_list(limit: -100000000) { data { id name } } ${costly} }` });
    expect(offset.status).toBe(400);
    expect(offset.body.errors![0]!.extensions.code).toBe('QUERY_TOO_COSTLY');
    const huge = await post({ query: 'query($n: Int) { agents_list(limit: $n) { data { id } } }', variables: { n: 2 ** 60 } });
    expect(huge.status).toBe(400);
    expect(huge.body.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_COSTLY' });
    expect(huge.body.errors![0]!.extensions.cost).toBeGreaterThan(2 ** 60);
  });

  it('refuses a fragment cycle and many fields of one name (quadratic to validate) in milliseconds', async () => {
    const probe = probeEventLoopLag();
    const cycle = await post({ query: '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }' });
    expect(cycle.status).toBe(400);
    expect(cycle.body.errors![0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    // graphql-js compares every pair of same-named fields (OverlappingFieldsCanBeMerged): 300 of them is 44,850 pairs.
    const sameName = await post({ query: `{ ${'agent(id: "agent_x") { id name } '.repeat(300)} }` });
    expect(sameName.status).toBe(400);
    expect(sameName.body.errors![0]!.extensions.code).toBe('QUERY_TOO_COSTLY');
    expect(probe.stop()).toBeLessThan(MAX_STALL_MS);
  });
});
