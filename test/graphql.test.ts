import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableBackends } from './helpers/backends.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const backends = await availableBackends();

/** The StateSet document's query, exactly as written. */
const DOCUMENT_QUERY = `query GetAgentWithConversations($agentId: ID!) {
  agent(id: $agentId) {
    id
    name
    conversations(last: 10) {
      edges {
        node {
          id
          status
          satisfaction_score
          messages {
            content
            role
            timestamp
          }
        }
      }
    }
  }
}`;

describe.each(backends)('GraphQL on %s', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway(backend, { GRAPHQL_MAX_DEPTH: '6', GRAPHQL_MAX_COST: '5000', GRAPHQL_MAX_ALIASES: '3' });
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

  it('refuses over-deep, over-costly and alias-heavy queries before running them', async () => {
    // The document's query is 6 levels deep (agent > conversations > edges > node > messages > content): the limit here.
    const deep = await gql({ query: '{ __schema { types { fields { type { ofType { ofType { name } } } } } } }' });
    expect(deep.status).toBe(400);
    expect(deep.body.errors![0]!.extensions).toMatchObject({ code: 'QUERY_TOO_DEEP', depth: 7, max_depth: 6 });
    expect(deep.body.data).toBeUndefined();

    const costly = await gql({ query: '{ agent(id: "a") { conversations(last: 100) { edges { node { messages(last: 100) { content role } } } } } }' });
    expect(costly.body.errors![0]!.extensions.code).toBe('QUERY_TOO_COSTLY');

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
