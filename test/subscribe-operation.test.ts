import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * Subscribing is an operation like any call: it goes through the one pipeline, so the permission
 * by topic kind, the rate limit and the metrics apply to it exactly as to a call, over a
 * `subscribe` frame or a `call` frame alike; REST has no route for it.
 */
describe('topics.subscribe through the operation pipeline', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(() => t.stop());

  it('counts subscribes and unsubscribes in the operation metrics, by transport and outcome', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Metered' });
    const socket = await t.connect();
    await socket.subscribe(`agent:${agent.id}`);
    await socket.unsubscribe(`agent:${agent.id}`);
    await expect(socket.subscribe('agent:agent_not_there_at_all')).rejects.toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
    const text = await (await fetch(`${t.gateway.url}/metrics`)).text();
    expect(text).toMatch(/operation="topics\.subscribe",transport="ws",outcome="ok"\} 1\b/);
    expect(text).toMatch(/operation="topics\.unsubscribe",transport="ws",outcome="ok"\} 1\b/);
    expect(text).toMatch(/operation="topics\.subscribe",transport="ws",outcome="RESOURCE_NOT_FOUND"\} 1\b/);
  });

  it('works as a call frame too, replaying after its result', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Called' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const first = await t.connect();
    const position = await first.subscribe(`conversation:${conversation.id}`);
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'missed' });
    const socket = await t.connect();
    const events: string[] = [];
    socket.on(`conversation:${conversation.id}`, (frame) => {
      if (!frame.ephemeral) events.push(frame.event);
    });
    const result = await socket.call('topics.subscribe', { topic: `conversation:${conversation.id}`, since: position.seq, epoch: position.epoch });
    expect(result).toMatchObject({ subscribed: true, recovered: true, replayed: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events).toEqual(['message.created']);
  });

  it('needs the permission of the topic kind: a key with only sessions:read cannot follow an agent', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Guarded' });
    const limited = await t.newAccount({ scopes: ['sessions:read'] });
    const socket = await t.connect({ apiKey: limited.apiKey });
    // Another account's agent would be "not found"; the permission is checked first.
    await expect(socket.subscribe(`agent:${agent.id}`)).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', details: { required: 'agents:read' } });
  });

  it('has no REST route, and over REST as a call it says a WebSocket is needed', async () => {
    const response = await fetch(`${t.gateway.url}/v1/topics/subscribe`, { method: 'POST', headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(response.status).toBe(404);
  });

  it('is rate limited like any call', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const socket = await t.connect({ apiKey: starter.apiKey });
    const outcomes: string[] = [];
    for (let i = 0; i < 105; i++) {
      outcomes.push(
        await socket.subscribe('account').then(
          () => 'ok',
          (error: { code: string }) => error.code,
        ),
      );
      await socket.unsubscribe('account').catch(() => {});
    }
    expect(outcomes).toContain('RATE_LIMITED');
  });
});
