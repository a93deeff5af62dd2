import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversationListInput, ErrorEnvelope, type Agent, type Conversation } from '../protocol/index.js';
import { newId } from '../src/kernel/ids.js';
import { availableBackends } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

describe.each(backends)('filtering, sorting and paging on %s', (backend) => {
  let t: TestGateway;
  let account: Awaited<ReturnType<TestGateway['newAccount']>>;
  let agents: Agent[];

  beforeAll(async () => {
    t = await startTestGateway(backend);
    account = await t.newAccount();
    agents = [];
    for (const [i, status] of (['active', 'inactive', 'active', 'active', 'inactive'] as const).entries()) {
      agents.push(await account.rest.call('agents.create', { name: `agent-${String.fromCharCode(101 - i)}`, status }));
    }
  });
  afterAll(() => t.stop());

  async function get(path: string) {
    const response = await fetch(t.gateway.url + path, { headers: { 'x-api-key': account.apiKey } });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  }
  const ids = (list: { id: string }[]) => list.map((item) => item.id);
  const active = () => agents.filter((a) => a.status === 'active');

  it('filters with bracketed query keys, including operators', async () => {
    const byStatus = await get('/v1/agents?filter[status]=active');
    expect(byStatus.status).toBe(200);
    expect(ids(byStatus.body.data.data)).toEqual(ids(active()).reverse());
    const since = agents[2]!.created_at;
    const ranged = await get(`/v1/agents?filter[created_at][$gte]=${encodeURIComponent(since)}&filter[status][$ne]=inactive`);
    expect(ids(ranged.body.data.data)).toEqual([agents[3]!.id, agents[2]!.id]);
    const listed = await get('/v1/agents?filter[status][$in]=active,inactive&sort=name');
    expect(listed.body.data.data.map((a: Agent) => a.name)).toEqual(['agent-a', 'agent-b', 'agent-c', 'agent-d', 'agent-e']);
    const repeated = await get('/v1/agents?filter[name][$in]=agent-a&filter[name][$in]=agent-e');
    expect(ids(repeated.body.data.data).sort()).toEqual([agents[0]!.id, agents[4]!.id].sort());
  });

  it('filters with the SDK’s JSON form in the query, and with an object over WebSocket', async () => {
    const filter = { status: 'active', created_at: { $gte: '2024-01-01' } };
    const json = await get(`/v1/agents?filter=${encodeURIComponent(JSON.stringify(filter))}&sort=-created_at&limit=50`);
    expect(ids(json.body.data.data)).toEqual(ids(active()).reverse());
    const socket = await t.connect({ apiKey: account.apiKey });
    const overWs = await socket.call('agents.list', { filter, sort: 'created_at', limit: 50 });
    expect(ids(overWs.data)).toEqual(ids(active()));
    const viaClient = await account.rest.call('agents.list', { filter: { name: { $lt: 'agent-c' } }, sort: '-name' });
    expect(viaClient.data.map((a) => a.name)).toEqual(['agent-b', 'agent-a']);
  });

  it('refuses undeclared fields, operators, values and sorts with VALIDATION_ERROR naming them', async () => {
    const cases: [string, string, RegExp][] = [
      ['/v1/agents?filter[colour]=red', 'filter.colour', /unknown filter field "colour" \(filterable: status, name, role, created_at, updated_at\)/],
      ['/v1/agents?filter[status][$regex]=a', 'filter.status.$regex', /unknown operator "\$regex"/],
      ['/v1/agents?filter[status]=sleeping', 'filter.status', /must be one of active, inactive/],
      ['/v1/agents?filter[status][$gt]=active', 'filter.status.$gt', /takes only \$eq, \$ne and \$in/],
      ['/v1/agents?filter[created_at][$gte]=yesterday', 'filter.created_at.$gte', /ISO 8601/],
      [`/v1/agents?filter=${encodeURIComponent('{"status":')}`, 'filter', /JSON text/],
      ['/v1/agents?sort=-instructions', 'sort', /cannot sort by "instructions" \(sortable: name, created_at, updated_at/],
      ['/v1/agents?sort=role', 'sort', /cannot sort by "role"/],
    ];
    for (const [path, field, message] of cases) {
      const result = await get(path);
      expect(result.status, path).toBe(400);
      const envelope = ErrorEnvelope.parse(result.body);
      expect(envelope.error.code).toBe('VALIDATION_ERROR');
      const issues = envelope.error.details!.issues as { path: string; message: string }[];
      expect(
        issues.map((issue) => issue.path),
        path,
      ).toContain(field);
      expect(envelope.error.message, path).toMatch(message);
    }
    const socket = await t.connect({ apiKey: account.apiKey });
    const error = await failureOf(socket.call('conversations.list', { filter: { mood: 'happy' } } as never));
    expect(error.code).toBe('VALIDATION_ERROR');
    expect(error.message).toMatch(/filter\.mood: unknown filter field "mood"/);
  });

  it('pages under a non-default sort, and refuses a cursor used with another sort', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await account.rest.call('agents.list', { sort: 'name', limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.data.map((a) => a.name));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(['agent-a', 'agent-b', 'agent-c', 'agent-d', 'agent-e']);

    const first = await account.rest.call('agents.list', { sort: 'name', limit: 2 });
    const error = await failureOf(account.rest.call('agents.list', { sort: '-created_at', limit: 2, cursor: first.next_cursor! }));
    expect(error.code).toBe('VALIDATION_ERROR');
    expect(error.message).toMatch(/cursor was issued for sort=name, not sort=-created_at/);
    expect((await failureOf(account.rest.call('agents.list', { cursor: 'bm9wZQ' }))).code).toBe('VALIDATION_ERROR');
  });

  it.each(['-created_at', 'created_at'])('misses and repeats nothing when paging (sort %s) while rows are inserted', async (sort) => {
    const pager = await t.newAccount();
    const before: string[] = [];
    for (let i = 0; i < 25; i++) before.push((await pager.rest.call('agents.create', { name: `p${i}` })).id);
    let inserting = true;
    const inserted: string[] = [];
    const writer = (async () => {
      while (inserting) inserted.push((await pager.rest.call('agents.create', { name: 'late' })).id);
    })();
    const seen: string[] = [];
    let cursor: string | undefined;
    try {
      do {
        const page = await pager.rest.call('agents.list', { sort, limit: 4, ...(cursor ? { cursor } : {}) });
        seen.push(...page.data.map((a) => a.id));
        cursor = page.next_cursor ?? undefined;
        await new Promise((resolve) => setTimeout(resolve, 5));
      } while (cursor);
    } finally {
      inserting = false;
      await writer;
    }
    expect(inserted.length).toBeGreaterThan(0);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) expect(seen).toContain(id);
    // Whatever else was seen was inserted meanwhile.
    for (const id of seen.filter((id) => !before.includes(id))) expect(inserted).toContain(id);
  });

  it('filters and pages a conversation’s messages', async () => {
    const conversation = await account.rest.call('conversations.create', { agent_id: agents[0]!.id });
    for (let i = 0; i < 6; i++) {
      await account.rest.call('messages.create', { conversation_id: conversation.id, content: `m${i}`, role: i % 2 ? 'agent' : 'user' });
    }
    const users = await account.rest.call('messages.list', { conversation_id: conversation.id, filter: { role: 'user' }, limit: 2 });
    expect(users.data.map((m) => m.content)).toEqual(['m0', 'm2']);
    const rest = await account.rest.call('messages.list', { conversation_id: conversation.id, filter: { role: 'user' }, limit: 2, cursor: users.next_cursor! });
    expect(rest.data.map((m) => m.content)).toEqual(['m4']);
    expect(rest.next_cursor).toBeNull();
    const newest = await get(`/v1/conversations/${conversation.id}/messages?sort=-created_at&limit=1&filter[role][$in]=agent`);
    expect(newest.body.data.data.map((m: { content: string }) => m.content)).toEqual(['m5']);
  });

  it('agrees with an in-memory oracle for any filter, sort and page size (property)', async () => {
    const store = t.gateway.store;
    const accountId = (await t.newAccount()).accountId;
    const agent = await store.agents.create(accountId, newId('agent'), { name: 'oracle' });
    const channels = ['chat', 'email', 'sms', 'web'];
    const statuses = ['open', 'escalated', 'closed'] as const;
    const scores = [null, 1, 2, 2.5, 4, 5];
    const rng = fc.sample(fc.tuple(fc.nat(3), fc.nat(2), fc.nat(5), fc.nat(3)), { numRuns: 24, seed: 42 });
    for (const [c, s, q, m] of rng) {
      const conversation = (await store.conversations.create(accountId, newId('conversation'), { agent_id: agent.id, channel: channels[c]! }))!;
      await store.conversations.update(accountId, { conversation_id: conversation.id, status: statuses[s]!, satisfaction_score: scores[q]! });
      for (let i = 0; i < m; i++)
        await store.messages.create({ id: newId('message'), accountId, input: { conversation_id: conversation.id, content: 'x', role: 'user' } });
    }
    const all = (await store.conversations.list(accountId, ConversationListInput.parse({ limit: 100 }))).data;
    expect(all).toHaveLength(24);

    const numberOp = fc.constantFrom('$eq', '$ne', '$gt', '$gte', '$lt', '$lte');
    const condition = fc.oneof(
      fc.record({ field: fc.constant('status'), op: fc.constantFrom('$eq', '$ne'), value: fc.constantFrom(...statuses) }),
      fc.record({ field: fc.constant('status'), op: fc.constant('$in'), value: fc.subarray([...statuses], { minLength: 1 }) }),
      fc.record({
        field: fc.constant('channel'),
        op: fc.constantFrom('$eq', '$ne', '$gt', '$gte', '$lt', '$lte'),
        value: fc.constantFrom(...channels, 'f', 'z'),
      }),
      fc.record({ field: fc.constant('satisfaction_score'), op: numberOp, value: fc.constantFrom(1, 2, 2.5, 3, 4, 5) }),
      fc.record({ field: fc.constant('satisfaction_score'), op: fc.constant('$in'), value: fc.subarray([1, 2.5, 5], { minLength: 1 }) }),
      fc.record({ field: fc.constant('message_count'), op: numberOp, value: fc.integer({ min: 0, max: 3 }) }),
      // Stored times have microseconds, the API shows milliseconds: only $gte and $lt are exact at a shown boundary.
      fc.record({ field: fc.constant('created_at'), op: fc.constantFrom('$gte', '$lt'), value: fc.constantFrom(...all.map((c) => c.created_at)) }),
    );
    const sorts = fc.constantFrom('created_at', '-created_at', 'message_count', '-message_count');

    await fc.assert(
      fc.asyncProperty(fc.array(condition, { maxLength: 3 }), sorts, fc.integer({ min: 1, max: 7 }), async (conditions, sort, limit) => {
        const filter: Record<string, Record<string, unknown>> = {};
        for (const c of conditions) (filter[c.field] ??= {})[c.op] = c.value;
        const input = ConversationListInput.parse({ filter, sort, limit });
        const got: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.conversations.list(accountId, { ...input, cursor });
          expect(page.data.length).toBeLessThanOrEqual(limit);
          got.push(...page.data.map((c) => c.id));
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        expect(got).toEqual(oracle(all, input.filter ?? [], input.sort));
      }),
      { numRuns: 60 },
    );
  });
});

/** The list semantics in plain TypeScript: SQL comparisons (null matches only $ne), order by (sort field, insertion). */
function oracle(rows: Conversation[], conditions: { field: string; op: string; value: unknown }[], sort: { field: string; descending: boolean }): string[] {
  const byInsertion = [...rows].reverse(); // `rows` is newest first
  const compare = (a: unknown, b: unknown) => (a === b ? 0 : (a as number | string) < (b as number | string) ? -1 : 1);
  const matches = (row: Conversation) =>
    conditions.every(({ field, op, value }) => {
      const actual = (row as unknown as Record<string, unknown>)[field];
      if (op === '$ne') return actual === null || compare(actual, value) !== 0;
      if (actual === null) return false;
      if (op === '$in') return (value as unknown[]).some((v) => compare(actual, v) === 0);
      const order = compare(actual, value);
      return { $eq: order === 0, $gt: order > 0, $gte: order >= 0, $lt: order < 0, $lte: order <= 0 }[op as '$eq'];
    });
  return byInsertion
    .map((row, position) => ({ row, position }))
    .filter(({ row }) => matches(row))
    .sort((a, b) => {
      const key =
        compare((a.row as unknown as Record<string, unknown>)[sort.field], (b.row as unknown as Record<string, unknown>)[sort.field]) ||
        a.position - b.position;
      return sort.descending ? -key : key;
    })
    .map(({ row }) => row.id);
}
