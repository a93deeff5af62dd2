import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableBackends } from './helpers/backends.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

interface Fixture {
  memories: { key: string; content: string }[];
  queries: { query: string; expected: string }[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/memory-recall.json', import.meta.url), 'utf8')) as Fixture;
const RECALL_FLOOR = 0.8;

describe.each(backends)('memories on %s', (backend) => {
  let t: TestGateway;
  let sessionId: string;
  const idByKey = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestGateway(backend);
    sessionId = (await t.rest.call('sessions.create', { agent_id: 'recall' })).id;
    for (const memory of fixture.memories) {
      const stored = await t.rest.call('memories.create', { session_id: sessionId, content: memory.content, metadata: { key: memory.key } });
      idByKey.set(memory.key, stored.id);
    }
  });
  afterAll(() => t.stop());

  it(`finds the labelled memory in the top 5 for at least ${RECALL_FLOOR * 100}% of paraphrased queries`, async () => {
    let hits = 0;
    const misses: string[] = [];
    for (const { query, expected } of fixture.queries) {
      const context = await t.rest.call('sessions.context', { session_id: sessionId, query, memory_limit: 5, turn_limit: 0 });
      expect(context.memories).toHaveLength(5);
      const scores = context.memories.map((memory) => memory.score!);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      if (context.memories.some((memory) => memory.id === idByKey.get(expected))) hits++;
      else misses.push(`${query} (expected ${expected}, got ${context.memories.map((m) => m.metadata.key).join(', ')})`);
    }
    const recall = hits / fixture.queries.length;
    process.stdout.write(
      `\n[memory recall@5 on ${backend}] ${hits}/${fixture.queries.length} = ${recall.toFixed(3)}\n  missed: ${misses.join('\n          ') || 'none'}\n`,
    );
    expect(recall).toBeGreaterThanOrEqual(RECALL_FLOOR);
  });

  it('scores an exact repeat of a memory as the best match, near 1', async () => {
    const memory = fixture.memories[7]!;
    const { data } = await t.rest.call('memories.search', { session_id: sessionId, query: memory.content, limit: 3 });
    expect(data[0]!.id).toBe(idByKey.get(memory.key));
    expect(data[0]!.score).toBeGreaterThan(0.99);
    expect(data[1]!.score).toBeLessThan(0.5);
  });

  it('counts, lists, deletes memories; without a query the context gives the newest', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'mem-crud' });
    const first = await t.rest.call('memories.create', { session_id: session.id, content: 'likes jazz' });
    const second = await t.rest.call('memories.create', { session_id: session.id, content: 'lives in Oslo', metadata: { source: 'chat' } });
    expect(second).toMatchObject({ session_id: session.id, content: 'lives in Oslo', metadata: { source: 'chat' }, embedder: 'lexical-v1-1024' });
    expect(second.id).toMatch(/^mem_/);
    expect((await t.rest.call('sessions.get', { session_id: session.id })).memory_count).toBe(2);
    expect((await t.rest.call('memories.list', { session_id: session.id })).data.map((m) => m.id)).toEqual([second.id, first.id]);
    const recent = await t.rest.call('sessions.context', { session_id: session.id, memory_limit: 1 });
    expect(recent.memories).toEqual([{ ...second, score: null }]);

    expect(await t.rest.call('memories.delete', { session_id: session.id, memory_id: first.id })).toEqual({ id: first.id, deleted: true });
    await expect(t.rest.call('memories.delete', { session_id: session.id, memory_id: first.id })).rejects.toMatchObject({
      status: 404,
      type: 'memory_not_found',
    });
    expect((await t.rest.call('sessions.get', { session_id: session.id })).memory_count).toBe(1);

    await t.rest.call('sessions.delete', { session_id: session.id });
    await expect(t.rest.call('memories.list', { session_id: session.id })).rejects.toMatchObject({ status: 404, type: 'session_not_found' });
  });

  it('accepts client vectors of the active dimension only, and searches with them', async () => {
    const session = await t.rest.call('sessions.create', { agent_id: 'vectors' });
    const axis = (i: number) => Array.from({ length: 1024 }, (_, j) => (j === i ? 1 : 0));
    const x = await t.rest.call('memories.create', { session_id: session.id, content: 'x axis', embedding: axis(0) });
    await t.rest.call('memories.create', { session_id: session.id, content: 'y axis', embedding: axis(1) });
    const { data } = await t.rest.call('memories.search', { session_id: session.id, embedding: axis(0).map((v, j) => (j === 1 ? 0.1 : v)), limit: 2 });
    expect(data.map((m) => m.content)).toEqual(['x axis', 'y axis']);
    expect(data[0]!.id).toBe(x.id);
    expect(data[0]!.score).toBeCloseTo(1 / Math.sqrt(1.01), 5);

    await expect(t.rest.call('memories.create', { session_id: session.id, content: 'short', embedding: [1, 2, 3] })).rejects.toMatchObject({
      status: 400,
      code: 'VALIDATION_ERROR',
      details: { dimensions: 3, expected_dimensions: 1024 },
    });
    await expect(t.rest.call('memories.create', { session_id: session.id, content: 'zero', embedding: axis(-1) })).rejects.toMatchObject({ status: 400 });
    await expect(t.rest.call('memories.search', { session_id: session.id, limit: 2 })).rejects.toMatchObject({ status: 400 });
    await expect(t.rest.call('memories.search', { session_id: session.id, query: 'x', limit: 21 })).rejects.toMatchObject({ status: 400 });
    await expect(t.rest.call('memories.create', { session_id: session.id, content: '' })).rejects.toMatchObject({ status: 400 });
  });
});
