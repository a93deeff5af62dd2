import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DOCUMENT_QUERY } from '../loadtest/scenarios/graphql-document.js';
import { availableBackends } from './helpers/backends.js';
import { collect } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

describe.each(backends)('GraphQL on %s', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway(backend, { GRAPHQL_MAX_DEPTH: '6', GRAPHQL_MAX_COST: '20000', GRAPHQL_MAX_ALIASES: '3' });
  });
  afterAll(() => t.stop());

  async function gql(body: unknown, headers: Record<string, string> = {}, apiKey = t.apiKey) {
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as { data?: any; errors?: { message: string; extensions: Record<string, any> }[] } };
  }

  /** Counts the SQL statements the store runs (every repo shares the one driver). */
  function countStatements(): { statements: string[]; stop: () => void } {
    const driver = (t.gateway.store.conversations as unknown as { db: { query: (...args: unknown[]) => Promise<unknown> } }).db;
    const original = driver.query;
    const statements: string[] = [];
    driver.query = function (this: unknown, ...args: unknown[]) {
      statements.push(String(args[0]));
      return original.apply(this, args);
    };
    return { statements, stop: () => (driver.query = original) };
  }

  async function agentWith(conversations: number, messagesEach: number) {
    const agent = await t.rest.call('agents.create', { name: `Agent ${conversations}` });
    const created = [];
    for (let i = 0; i < conversations; i++) {
      const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
      for (let m = 0; m < messagesEach; m++)
        await t.rest.call('messages.create', { conversation_id: conversation.id, content: `m${m} of ${i}`, role: m % 2 ? 'agent' : 'user' });
      created.push(conversation);
    }
    return { agent, conversations: created };
  }

  it("answers the document's GetAgentWithConversations query, sent unchanged, with the last 10 conversations and their messages", async () => {
    const { agent, conversations } = await agentWith(12, 2);
    await t.rest.call('conversations.update', { conversation_id: conversations[11]!.id, satisfaction_score: 4.5 });
    const { status, body } = await gql({ query: DOCUMENT_QUERY, variables: { agentId: agent.id } });
    expect(body.errors).toBeUndefined();
    expect(status).toBe(200);
    expect(body.data.agent).toMatchObject({ id: agent.id, name: 'Agent 12' });
    const edges = body.data.agent.conversations.edges as { node: any }[];
    expect(edges.map((edge) => edge.node.id)).toEqual(conversations.slice(2).map((c) => c.id));
    const newest = edges[9]!.node;
    expect(newest).toMatchObject({ status: 'open', satisfaction_score: 4.5 });
    expect(newest.messages.map((m: any) => [m.content, m.role])).toEqual([
      ['m0 of 11', 'user'],
      ['m1 of 11', 'agent'],
    ]);
    expect(Number.isNaN(Date.parse(newest.messages[0].timestamp))).toBe(false);
  });

  it.each([1, 50])('runs one SQL statement per level for %i conversation(s)', async (n) => {
    const { agent } = await agentWith(n, 1);
    await gql({ query: DOCUMENT_QUERY, variables: { agentId: agent.id } }); // warms the key and agent caches
    const counter = countStatements();
    const { body } = await gql({ query: DOCUMENT_QUERY.replace('last: 10', 'last: 50'), variables: { agentId: agent.id } });
    counter.stop();
    expect(body.errors).toBeUndefined();
    expect(body.data.agent.conversations.edges).toHaveLength(n);
    expect(body.data.agent.conversations.edges.every((edge: any) => edge.node.messages.length === 1)).toBe(true);
    const onConversations = counter.statements.filter((sql) => /from conversations/.test(sql));
    const onMessages = counter.statements.filter((sql) => /from messages/.test(sql));
    expect(onConversations).toHaveLength(1);
    expect(onMessages).toHaveLength(1);
    // Agent (unless cached), conversations, messages: never more than one statement per level.
    expect(counter.statements.length).toBeLessThanOrEqual(3);
  });

  it('pages conversations with first/last/after/before and opaque cursors, one statement per page', async () => {
    const { agent, conversations } = await agentWith(5, 0);
    const ids = conversations.map((c) => c.id);
    const page = async (args: string) => {
      const { body } = await gql({
        query: `query Page($id: ID!) { agent(id: $id) { conversations(${args}) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`,
        variables: { id: agent.id },
      });
      expect(body.errors).toBeUndefined();
      const connection = body.data.agent.conversations;
      return {
        ids: connection.edges.map((edge: any) => edge.node.id) as string[],
        cursors: connection.edges.map((e: any) => e.cursor),
        info: connection.pageInfo,
      };
    };
    const one = await page('first: 2');
    expect(one.ids).toEqual(ids.slice(0, 2));
    expect(one.cursors.some((cursor: string) => ids.includes(cursor))).toBe(false); // opaque
    expect(one.info).toEqual({ hasNextPage: true, hasPreviousPage: false, startCursor: one.cursors[0], endCursor: one.cursors[1] });
    const counter = countStatements();
    const two = await page(`first: 2, after: "${one.info.endCursor}"`);
    counter.stop();
    expect(two.ids).toEqual(ids.slice(2, 4));
    expect(two.info).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    expect(counter.statements.filter((sql) => /from conversations/.test(sql))).toHaveLength(1);
    const three = await page(`first: 2, after: "${two.info.endCursor}"`);
    expect(three.ids).toEqual(ids.slice(4));
    expect(three.info).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    // Backwards from the end: the newest two, then the two before them.
    const newest = await page('last: 2');
    expect(newest.ids).toEqual(ids.slice(3));
    expect(newest.info).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    const earlier = await page(`last: 2, before: "${newest.info.startCursor}"`);
    expect(earlier.ids).toEqual(ids.slice(1, 3));
    expect(earlier.info).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    const between = await page(`after: "${one.info.startCursor}", before: "${newest.info.endCursor}"`);
    expect(between.ids).toEqual(ids.slice(1, 4));
    // A made-up cursor and first with last are coded errors.
    const bad = await gql({ query: `{ agent(id: "${agent.id}") { conversations(after: "${ids[0]}") { edges { cursor } } } }` });
    expect(bad.body.errors?.[0]?.extensions.code).toBe('VALIDATION_ERROR');
    const both = await gql({ query: `{ agent(id: "${agent.id}") { conversations(first: 1, last: 1) { edges { cursor } } } }` });
    expect(both.body.errors?.[0]?.extensions.code).toBe('VALIDATION_ERROR');
  });

  it('counts GraphQL operations by operation name, type and outcome in /metrics', async () => {
    const metric = async (labels: string) => {
      const text = await (await fetch(`${t.gateway.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`stategate_graphql_operations_total{${labels}} `));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const okLabels = 'operation_name="GetAgentWithConversations",type="query",outcome="ok"';
    const missingLabels = 'operation_name="MissingAgent",type="query",outcome="RESOURCE_NOT_FOUND"';
    const parseLabels = 'operation_name="anonymous",type="unknown",outcome="GRAPHQL_PARSE_FAILED"';
    const before = [await metric(okLabels), await metric(missingLabels), await metric(parseLabels)];
    const { agent } = await agentWith(1, 0);
    await gql({ query: DOCUMENT_QUERY, variables: { agentId: agent.id } });
    await gql({ query: DOCUMENT_QUERY, variables: { agentId: agent.id } });
    const missing = await gql({ query: 'query MissingAgent { agent(id: "agent_nope") { id } }' });
    expect(missing.body.errors?.[0]?.extensions.code).toBe('RESOURCE_NOT_FOUND');
    await gql({ query: '{ agent(' });
    expect([await metric(okLabels), await metric(missingLabels), await metric(parseLabels)]).toEqual([before[0]! + 2, before[1]! + 1, before[2]! + 1]);
    const text = await (await fetch(`${t.gateway.url}/metrics`)).text();
    expect(text).toMatch(/stategate_graphql_operation_seconds_count\{type="query"\} [1-9]/);
  });

  it('answers a syntax error, an unknown field and a wrong variable type with coded errors, and keeps serving', async () => {
    const syntax = await gql({ query: 'query { agent(id: "x") { id ' });
    expect(syntax.status).toBe(400);
    expect(syntax.body.errors![0]!.extensions.code).toBe('GRAPHQL_PARSE_FAILED');

    const unknown = await gql({ query: '{ agents_list { data { id nope } } }' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors![0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(unknown.body.errors![0]!.message).toMatch(/nope/);

    const wrongType = await gql({ query: DOCUMENT_QUERY, variables: { agentId: { not: 'an id' } } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors![0]!.extensions.code).toBe('BAD_USER_INPUT');
    expect(wrongType.body.data).toBeUndefined();

    const missing = await gql({ query: DOCUMENT_QUERY, variables: { agentId: 'agent_doesnotexist00' } });
    expect(missing.status).toBe(200);
    expect(missing.body.errors![0]!.extensions.code).toBe('RESOURCE_NOT_FOUND');

    const ok = await gql({ query: '{ agents_list(limit: 1) { has_more } }' });
    expect(ok.body.errors).toBeUndefined();
    expect(typeof ok.body.data.agents_list.has_more).toBe('boolean');
  });

  it('ignores members of the request body it does not know, whatever their names', async () => {
    const answer = await gql({ query: '{ __typename }', refused: { status: 200 }, prepared: true, request: null });
    expect(answer).toEqual({ status: 200, body: { data: { __typename: 'Query' } } });
  });

  it('codes only the introspection switch as INTROSPECTION_DISABLED, not every rule that names an introspection field', async () => {
    // SingleFieldSubscriptionsRule's message mentions introspection; introspection is on here.
    const refused = await gql({ query: 'subscription { __typename }' });
    expect(refused.status).toBe(400);
    expect(refused.body.errors![0]!.message).toMatch(/introspection/);
    expect(refused.body.errors![0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses over-deep, over-costly and alias-heavy queries before running them', async () => {
    // The document's query is 6 levels deep (agent > conversations > edges > node > messages > content): the limit here.
    const deep = await gql({ query: '{ __schema { types { fields { type { ofType { ofType { name } } } } } } }' });
    expect(deep.status).toBe(400);
    expect(deep.body.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_DEEP', depth: 7, max_depth: 6 });
    expect(deep.body.data).toBeUndefined();

    const costly = await gql({ query: '{ agent(id: "a") { conversations(last: 100) { edges { node { messages(last: 100) { content role } } } } } }' });
    // 100 conversations × 100 messages × their fields: about 30,000, over the 20,000 allowed.
    expect(costly.status).toBe(400);
    expect(costly.body.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_COSTLY', max_cost: 20000 });
    expect(costly.body.errors![0]!.extensions.cost).toBeGreaterThan(20000);

    const aliases = await gql({ query: '{ a: agents_list { has_more } b: agents_list { has_more } c: agents_list { has_more } d: agents_list { has_more } }' });
    expect(aliases.body.errors![0]!.extensions).toMatchObject({ code: 'TOO_MANY_ALIASES', aliases: 4 });
  });

  it('runs mutations through the same pipeline: validation, permissions and Idempotency-Key', async () => {
    const created = await gql({ query: 'mutation($name: String!) { agents_create(name: $name) { id name status } }', variables: { name: 'From GraphQL' } });
    expect(created.body.errors).toBeUndefined();
    expect(created.body.data.agents_create).toMatchObject({ name: 'From GraphQL', status: 'active' });
    expect((await t.rest.call('agents.get', { agent_id: created.body.data.agents_create.id })).name).toBe('From GraphQL');

    const invalid = await gql({ query: 'mutation { agents_create(name: "   ") { id } }' });
    expect(invalid.body.errors![0]!.extensions.code).toBe('VALIDATION_ERROR');

    const readOnly = await t.newAccount({ scopes: ['agents:read'] });
    const refused = await gql({ query: 'mutation { agents_create(name: "Nope") { id } }' }, {}, readOnly.apiKey);
    expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', status: 403 });
    expect(refused.body.data).toEqual({ agents_create: null });

    const once = { query: 'mutation { agents_create(name: "Once") { id } }' };
    const first = await gql(once, { 'idempotency-key': 'gql-once-1' });
    const second = await gql(once, { 'idempotency-key': 'gql-once-1' });
    expect(second.body.data.agents_create.id).toBe(first.body.data.agents_create.id);
  });

  it('keeps accounts apart and refuses a missing key', async () => {
    const { agent } = await agentWith(1, 1);
    const other = await t.newAccount();
    const foreign = await gql({ query: DOCUMENT_QUERY, variables: { agentId: agent.id } }, {}, other.apiKey);
    expect(foreign.body.errors![0]!.extensions.code).toBe('RESOURCE_NOT_FOUND');

    const anonymous = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ agents_list { has_more } }' }),
    });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as any).errors[0].extensions.code).toBe('INVALID_API_KEY');
  });

  it('serves queries over GET and refuses mutations there', async () => {
    const { agent } = await agentWith(1, 0);
    const url = `${t.gateway.url}/graphql?query=${encodeURIComponent(DOCUMENT_QUERY)}&variables=${encodeURIComponent(JSON.stringify({ agentId: agent.id }))}`;
    const response = await fetch(url, { headers: { 'x-api-key': t.apiKey } });
    expect(response.status).toBe(200);
    expect(((await response.json()) as any).data.agent.id).toBe(agent.id);

    const mutation = await fetch(`${t.gateway.url}/graphql?query=${encodeURIComponent('mutation { agents_create(name: "x") { id } }')}`, {
      headers: { 'x-api-key': t.apiKey },
    });
    expect(mutation.status).toBe(405);
  });
});

describe.each(backends)('GraphQL subscriptions over graphql-ws on %s', (backend) => {
  let t: TestGateway;
  const clients: Client[] = [];
  beforeAll(async () => {
    t = await startTestGateway(backend, { WS_MAX_SUBSCRIPTIONS: '2' });
  });
  afterAll(async () => {
    for (const client of clients) await client.dispose();
    await t.stop();
  });

  const client = (connectionParams: Record<string, unknown>) => {
    const c = createClient({ url: t.gateway.url.replace('http', 'ws') + '/graphql', webSocketImpl: WebSocket, connectionParams, retryAttempts: 0, lazy: true });
    clients.push(c);
    return c;
  };
  const SUBSCRIBE =
    'subscription($topic: String!, $since: Int, $epoch: String) { topics_subscribe(topic: $topic, since: $since, epoch: $epoch) { topic seq epoch event id data ephemeral } }';

  /** The first `count` numbered events of a subscription (presence signals, seq 0, are skipped). */
  function take(c: Client, variables: Record<string, unknown>, count: number) {
    const results: any[] = [];
    return new Promise<any[]>((resolve, reject) => {
      const stop = c.subscribe(
        { query: SUBSCRIBE, variables },
        {
          next: (value: any) => {
            if (value.data?.topics_subscribe?.ephemeral) return;
            results.push(value);
            if (results.length === count) {
              stop();
              resolve(results);
            }
          },
          error: reject,
          complete: () => resolve(results),
        },
      );
      setTimeout(() => reject(new Error(`timed out with ${results.length} results`)), 5000).unref();
    });
  }

  it('delivers a message created over REST to a graphql-ws subscription, with the topic seq and epoch', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Subscribed' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const received = take(client({ authorization: `Bearer ${t.apiKey}` }), { topic }, 1);
    // The subscription starts asynchronously: write once it has been seen by delivery.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const message = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'over REST' });
    const [result] = await received;
    expect(result.errors).toBeUndefined();
    expect(result.data.topics_subscribe).toMatchObject({ topic, event: 'message.created', seq: 2, data: { message } });
    expect(typeof result.data.topics_subscribe.epoch).toBe('string');
  });

  it('resumes from since/epoch, and refuses another account and a bad key with codes', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Resume' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const first = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'one' });
    const second = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'two' });
    const ws = await t.connect();
    const position = await ws.subscribe(topic);
    // `since` and `epoch` are arguments of the derived field: the replay brings seq 2 and 3.
    const replayed = await take(client({ apiKey: t.apiKey }), { topic, since: 1, epoch: position.epoch }, 2);
    expect(replayed.map((r) => [r.data.topics_subscribe.seq, r.data.topics_subscribe.data.message.id])).toEqual([
      [2, first.id],
      [3, second.id],
    ]);

    const other = await t.newAccount();
    const [foreign] = await take(client({ apiKey: other.apiKey }), { topic }, 1);
    expect(foreign.data).toBeUndefined();
    expect(foreign.errors[0].extensions).toMatchObject({ code: 'RESOURCE_NOT_FOUND', status: 404 });

    // Bad input over graphql-ws: the same codes as over HTTP.
    const refusedBy = (query: string) =>
      new Promise<any>((resolve) => {
        client({ apiKey: t.apiKey }).subscribe({ query }, { next: () => {}, error: resolve, complete: () => resolve(null) });
      });
    expect((await refusedBy(`subscription { topics_subscribe(topic: "${topic}") { nope } }`))[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect((await refusedBy('subscription { topics_subscribe(topic: '))[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');

    const refused = await take(client({ apiKey: 'sg_live_nope' }), { topic }, 1).catch((error) => error);
    expect(refused.code).toBe(4403);
  });

  it('takes the key from the upgrade headers, caps subscriptions per connection with a coded error, and frees a slot on complete', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Capped' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const withHeaders = (headers: Record<string, string>) =>
      class extends WebSocket {
        constructor(url: string, protocols?: string | string[]) {
          super(url, protocols, { headers });
        }
      };
    const headerClient = (headers: Record<string, string>) => {
      const c = createClient({ url: t.gateway.url.replace('http', 'ws') + '/graphql', webSocketImpl: withHeaders(headers), retryAttempts: 0, lazy: true });
      clients.push(c);
      return c;
    };
    const c = headerClient({ 'x-api-key': t.apiKey });
    const errors: unknown[] = [];
    const open = () => c.subscribe({ query: SUBSCRIBE, variables: { topic } }, { next: () => {}, error: (error) => errors.push(error), complete: () => {} });
    const stopFirst = open();
    open();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(errors).toEqual([]);
    const third = await new Promise<any>((resolve) => {
      c.subscribe({ query: SUBSCRIBE, variables: { topic } }, { next: () => {}, error: resolve, complete: () => resolve(null) });
    });
    expect(third[0].extensions).toMatchObject({ code: 'VALIDATION_ERROR', details: { max_subscriptions: 2 } });
    // graphql-ws operations are counted too: the two started, the refused one.
    const metrics = await (await fetch(`${t.gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/stategate_graphql_operations_total\{operation_name="anonymous",type="subscription",outcome="VALIDATION_ERROR"\} [1-9]/);
    expect(metrics).toMatch(/stategate_graphql_operations_total\{operation_name="anonymous",type="subscription",outcome="ok"\} [2-9]/);
    // Completing one frees its slot: the next subscription on the same connection receives events.
    stopFirst();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const received = take(c, { topic }, 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const message = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'after a slot freed' });
    const [result] = await received;
    expect(result.errors).toBeUndefined();
    expect(result.data.topics_subscribe).toMatchObject({ topic, event: 'message.created', data: { message } });
    expect(errors).toEqual([]);

    // Authorization: Bearer on the upgrade works too; a bad header key closes with 4403.
    const bearer = take(headerClient({ authorization: `Bearer ${t.apiKey}` }), { topic }, 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'for the bearer' });
    const [viaBearer] = await bearer;
    expect(viaBearer.data.topics_subscribe).toMatchObject({ topic, event: 'message.created' });
    const refused = await take(headerClient({ 'x-api-key': 'sg_live_nope' }), { topic }, 1).catch((error) => error);
    expect(refused.code).toBe(4403);
  });

  it('a mutation made over GraphQL is seen by a /v1/ws subscriber', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Watched' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const socket = await t.connect();
    const topic = `conversation:${conversation.id}`;
    await socket.subscribe(topic);
    const events = collect(socket, topic, 1);
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation($c: String!) { messages_create(conversation_id: $c, content: "from GraphQL") { id content } }',
        variables: { c: conversation.id },
      }),
    });
    const created = ((await response.json()) as any).data.messages_create;
    const [event] = await events;
    expect(event).toMatchObject({ event: 'message.created', data: { message: { id: created.id, content: 'from GraphQL' } } });
  });
});

describe('GraphQL introspection switch', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway('pglite', { GRAPHQL_INTROSPECTION: 'false' });
  });
  afterAll(() => t.stop());

  it('refuses __schema with INTROSPECTION_DISABLED when switched off', async () => {
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __schema { types { name } } }' }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as any).errors[0].extensions.code).toBe('INTROSPECTION_DISABLED');
  });
});
