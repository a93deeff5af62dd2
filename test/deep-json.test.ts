import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonNestedDeeperThan } from '../src/transport/request.js';
import { probeEventLoopLag } from './helpers/event-loop-lag.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * JSON.parse builds every level of a nested body before anything can check its depth: a 1 MiB
 * REST or GraphQL body of arrays nested 500,000 deep held the event loop for several hundred
 * milliseconds, for every request. Bodies nested far deeper than any input may be are refused
 * after one scan of their characters, before JSON.parse.
 */
const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const MAX_STALL_MS = 100;

describe('the nesting scan', () => {
  it('counts arrays and objects outside strings only, escapes included', () => {
    expect(jsonNestedDeeperThan('{"a":[{"b":[1]}]}', 4)).toBe(false);
    expect(jsonNestedDeeperThan('{"a":[{"b":[1]}]}', 3)).toBe(true);
    expect(jsonNestedDeeperThan(`{"s":"${'['.repeat(100)}"}`, 1)).toBe(false);
    expect(jsonNestedDeeperThan(`{"s":"\\"${'{'.repeat(100)}"}`, 1)).toBe(false);
    expect(jsonNestedDeeperThan(`{"s":"\\\\", "t": [[[1]]]}`, 3)).toBe(true);
    expect(jsonNestedDeeperThan('[[],[],[],[]]', 2)).toBe(false);
  });
});

describe('deeply nested bodies', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(() => t.stop());

  const post = (path: string, body: string) =>
    fetch(`${t.gateway.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' },
      body,
    });

  it('refuses a 1 MiB body nested 500,000 deep, over REST and GraphQL, without stalling the event loop', async () => {
    // Warm both paths first: the first request compiles what the probe should not count.
    await post('/v1/agents', '{"name":"warm"}');
    await post('/graphql', '{"query":"{ __typename }"}');
    for (const [path, body] of [
      ['/v1/agents', `{"name":"deep","metadata":{"m":${deep(500_000)}}}`],
      ['/graphql', `{"query":"{ __typename }","variables":{"v":${deep(500_000)}}}`],
    ] as const) {
      const probe = probeEventLoopLag();
      const response = await post(path, body);
      expect(probe.stop()).toBeLessThan(MAX_STALL_MS);
      expect(response.status).toBe(400);
      const answer = (await response.json()) as { error?: { code: string; message: string }; errors?: { message: string; extensions: { code: string } }[] };
      const error = answer.error ?? { code: answer.errors![0]!.extensions.code, message: answer.errors![0]!.message };
      expect(error.code).toBe('VALIDATION_ERROR');
      expect(error.message).toMatch(/nested deeper than 32 levels/);
    }
  });
});
