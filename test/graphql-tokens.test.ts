import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
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
