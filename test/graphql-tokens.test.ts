import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { contracts, type OperationContract } from '../protocol/index.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * A browser holds a client token, not an API key: over graphql-ws it subscribes to the topics its
 * token covers, and only to those, exactly as on /v1/ws.
 */
const SUBSCRIBE = 'subscription($topic: String!) { topics_subscribe(topic: $topic) { topic seq event data ephemeral } }';

describe('GraphQL subscriptions with a client token', () => {
  let t: TestGateway;
  const clients: Client[] = [];
  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await t.stop();
  });

  const client = (token: string) => {
    const c = createClient({
      url: t.gateway.url.replace('http', 'ws') + '/graphql',
      webSocketImpl: WebSocket,
      connectionParams: { token },
      retryAttempts: 0,
      lazy: true,
    });
    clients.push(c);
    return c;
  };

  /** The first numbered event, or the first error. */
  function first(c: Client, topic: string): Promise<{ event?: any; errors?: any[] }> {
    return new Promise((resolve, reject) => {
      const stop = c.subscribe(
        { query: SUBSCRIBE, variables: { topic } },
        {
          next: (value: any) => {
            if (value.errors) {
              stop();
              resolve({ errors: value.errors });
            } else if (!value.data?.topics_subscribe?.ephemeral) {
              stop();
              resolve({ event: value.data.topics_subscribe });
            }
          },
          error: (error: unknown) => resolve({ errors: Array.isArray(error) ? error : [error] }),
          complete: () => {},
        },
      );
      setTimeout(() => reject(new Error('timed out')), 5000).unref();
    });
  }

  it('receives its conversation and is refused another one with a code', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Widget agent' });
    const mine = await t.rest.call('conversations.create', { agent_id: agent.id });
    const other = await t.rest.call('conversations.create', { agent_id: agent.id });
    const { token } = await t.rest.call('tokens.create', { subject: 'visitor-1', topics: [`conversation:${mine.id}`], permissions: ['conversations:read'] });

    const c = client(token);
    const received = first(c, `conversation:${mine.id}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await t.rest.call('messages.create', { conversation_id: mine.id, content: 'hello widget' });
    const { event } = await received;
    expect(event).toMatchObject({ topic: `conversation:${mine.id}`, event: 'message.created' });
    expect(event.data.message.content).toBe('hello widget');

    const refused = await first(c, `conversation:${other.id}`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('INSUFFICIENT_PERMISSIONS');
  });
});

/**
 * A nested field loads through a batch operation (`Conversation.messages` through
 * `messages.last_by_conversations`): it is allowed exactly when the operation it stands for would
 * be for the same caller, here a client token scoped to one conversation.
 */
describe('GraphQL nested fields with a client token', () => {
  let t: TestGateway;
  let agentId: string;
  let mine: string;
  let other: string;
  let token: string;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
    agentId = (await t.rest.call('agents.create', { name: 'Scoped' })).id;
    mine = (await t.rest.call('conversations.create', { agent_id: agentId })).id;
    other = (await t.rest.call('conversations.create', { agent_id: agentId })).id;
    await t.rest.call('messages.create', { conversation_id: mine, content: 'mine' });
    await t.rest.call('messages.create', { conversation_id: other, content: 'not mine' });
    ({ token } = await t.rest.call('tokens.create', {
      subject: 'visitor-2',
      topics: [`conversation:${mine}`],
      permissions: ['conversations:read', 'messages:read', 'messages:write'],
    }));
  });
  afterAll(() => t.stop());

  async function gql(query: string) {
    const response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    return (await response.json()) as { data?: any; errors?: { message: string; extensions: Record<string, any> }[] };
  }

  it("reads its own conversation's messages nested, as messages_list answers them", async () => {
    const listed = await gql(`{ messages_list(conversation_id: "${mine}") { data { id content } } }`);
    expect(listed.errors).toBeUndefined();
    const nested = await gql(`{ conversation(id: "${mine}") { id messages { id content } } }`);
    expect(nested.errors).toBeUndefined();
    expect(nested.data.conversation.id).toBe(mine);
    expect(nested.data.conversation.messages).toEqual(listed.data.messages_list.data);
    expect(nested.data.conversation.messages.map((m: any) => m.content)).toEqual(['mine']);
  });

  it('is refused another conversation, nested or not', async () => {
    const nested = await gql(`{ conversation(id: "${other}") { id messages { id } } }`);
    expect(nested.data.conversation).toBeNull();
    expect(nested.errors![0]!.extensions.code).toBe('INSUFFICIENT_PERMISSIONS');
    const listed = await gql(`{ messages_list(conversation_id: "${other}") { data { id } } }`);
    expect(listed.errors![0]!.extensions.code).toBe('INSUFFICIENT_PERMISSIONS');
  });

  it("is refused an agent's conversations nested, as it is the top-level operations", async () => {
    const topLevel = await gql(`{ conversations_list(agent_id: "${agentId}") { data { id } } }`);
    expect(topLevel.errors![0]!.extensions.code).toBe('INSUFFICIENT_PERMISSIONS');
    const nested = await gql(`{ agent(id: "${agentId}") { conversations { edges { node { id } } } } }`);
    expect(nested.data.agent).toBeNull();
    expect(nested.errors![0]!.extensions.code).toBe('INSUFFICIENT_PERMISSIONS');
  });

  it('gives each batch operation the permission and the scopes of the operation it stands for', () => {
    const scopeOf = (name: keyof typeof contracts, input: unknown) => (contracts[name] as OperationContract).scope!(input as never);
    expect(contracts['messages.last_by_conversations'].permission).toBe(contracts['messages.list'].permission);
    expect(scopeOf('messages.last_by_conversations', { conversation_ids: ['conv_a', 'conv_b'], last: 50 })).toEqual([
      scopeOf('messages.list', { conversation_id: 'conv_a' }),
      scopeOf('messages.list', { conversation_id: 'conv_b' }),
    ]);
    expect(contracts['conversations.last_by_agents'].permission).toBe(contracts['conversations.list'].permission);
    expect(scopeOf('conversations.last_by_agents', { agent_ids: ['agent_a'] })).toEqual(['agent:agent_a']);
  });
});
