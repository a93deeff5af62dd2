import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentWorker } from '../examples/agent-worker.js';
import { until } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('example agent worker', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(() => t.stop());

  it('answers user messages sent while it was stopped, once, and leaves answered conversations alone', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Worker test' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const roles = async () =>
      (await t.rest.call('messages.list', { conversation_id: conversation.id, limit: 100 })).data.map((m) => `${m.role}:${m.content.slice(0, 5)}`);
    const start = () => startAgentWorker({ baseURL: t.gateway.url, apiKey: t.apiKey, agentId: agent.id, reply: 'ok {turn}', tokenDelayMs: 1, log: () => {} });

    // Sent before any worker ran: the first one answers it when it starts.
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'first' });
    const first = await start();
    await until(() => first.answered === 1, 10_000, 'the first answer');
    // And a live one while it runs.
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'second' });
    await until(() => first.answered === 2, 10_000, 'the live answer');
    await first.stop();

    // Sent while no worker runs: the next worker answers it, and only it.
    await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'third' });
    const second = await start();
    await until(() => second.answered === 1, 10_000, 'the missed message');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await second.stop();

    expect(await roles()).toEqual(['user:first', 'agent:ok 1', 'user:secon', 'agent:ok 2', 'user:third', 'agent:ok 3']);
    expect(second.answered).toBe(1);
    const sessions = await t.rest.call('sessions.list', { agent_id: agent.id, user_id: conversation.id });
    expect(sessions.data).toHaveLength(1);
    expect(sessions.data[0]!.state).toMatchObject({ turns: 3 });
  }, 40_000);
});
