import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewaySocket, RestClient, type WebSocketConstructor } from '../clients/index.js';
import { buildServedSdk } from './browser/sdk-bundle.js';
import { loadConfig } from '../src/config.js';
import { DEMO_AGENT_NAME, DEMO_VISITOR_QUOTA } from '../src/demo/widget.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

interface Visit {
  token: string;
  conversation_id: string;
  agent_id: string;
  expires_at: string;
  subject: string;
}

const visit = async (t: TestGateway, credential?: string) => {
  const headers: Record<string, string> = credential === undefined ? {} : { authorization: `Bearer ${credential}` };
  const response = await fetch(`${t.gateway.url}/v1/demo/widget`, { method: 'POST', headers });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as { success: boolean; data: Visit; error: { code: string; retry_after?: number } },
  };
};

describe('demo widget endpoint (DEMO_WIDGET on)', () => {
  let t: TestGateway;
  let developer: RestClient;
  let calls = 0;

  beforeAll(async () => {
    // /widget/sdk.js is the bundle in dist/: built from the current source.
    await buildServedSdk();
    t = await startTestGateway('pglite', { DEMO_WIDGET: 'true' });
    // The demo lives in the development account the gateway created at its first start.
    developer = new RestClient({ baseUrl: t.gateway.url, apiKey: t.gateway.bootstrap!.key });
  });
  afterAll(() => t.stop());

  it('starts a conversation with the demo agent and answers a token scoped to it', async () => {
    const first = await visit(t);
    calls++;
    expect(first.status).toBe(201);
    expect(first.body.success).toBe(true);
    const data = first.body.data;
    expect(data.token).toMatch(/^ey/);
    expect(data.subject).toMatch(/^visitor_[0-9a-f]{16}$/);
    expect(Date.parse(data.expires_at) - Date.now()).toBeGreaterThan(3500_000);

    const agent = await developer.call('agents.get', { agent_id: data.agent_id });
    expect(agent.name).toBe(DEMO_AGENT_NAME);
    const conversation = await developer.call('conversations.get', { conversation_id: data.conversation_id });
    expect(conversation).toMatchObject({ agent_id: data.agent_id, channel: 'widget', metadata: { source: 'demo_widget', visitor: data.subject } });

    // A second visitor: the same agent, a conversation of its own.
    const second = await visit(t);
    calls++;
    expect(second.body.data.agent_id).toBe(data.agent_id);
    expect(second.body.data.conversation_id).not.toBe(data.conversation_id);
    const agents = await developer.call('agents.list', { filter: { name: DEMO_AGENT_NAME } });
    expect(agents.data).toHaveLength(1);
  });

  it("a visitor's token reaches its own conversation and no other", async () => {
    const mine = (await visit(t)).body.data;
    const theirs = (await visit(t)).body.data;
    calls += 2;
    const visitor = new RestClient({ baseUrl: t.gateway.url, apiKey: mine.token });
    const sent = await visitor.call('messages.create', { conversation_id: mine.conversation_id, content: 'hello' });
    expect(sent).toMatchObject({ role: 'user', content: 'hello' });
    const listed = await visitor.call('messages.list', { conversation_id: mine.conversation_id });
    expect(listed.data.map((message) => message.id)).toEqual([sent.id]);

    await expect(visitor.call('messages.list', { conversation_id: theirs.conversation_id })).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
    await expect(visitor.call('messages.create', { conversation_id: theirs.conversation_id, content: 'no' })).rejects.toMatchObject({
      code: 'INSUFFICIENT_PERMISSIONS',
    });
    await expect(visitor.call('agents.list', {})).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });

    const socket = await GatewaySocket.connect({ url: `${t.gateway.wsUrl}?token=${mine.token}`, WebSocket: WebSocket as unknown as WebSocketConstructor });
    try {
      await socket.subscribe(`conversation:${mine.conversation_id}`);
      await expect(socket.subscribe(`conversation:${theirs.conversation_id}`)).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
      await expect(socket.subscribe(`agent:${mine.agent_id}`)).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
    } finally {
      await socket.close();
    }
    // Nothing the visitor tried reached the other conversation.
    const untouched = await developer.call('messages.list', { conversation_id: theirs.conversation_id });
    expect(untouched.data).toEqual([]);
  });

  it("renews a visit's token for the same conversation and visitor, and nothing else's", async () => {
    const first = (await visit(t)).body.data;
    // Tokens name their expiry in whole seconds: the renewed one must be able to expire later.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const renewed = await visit(t, first.token);
    calls += 2;
    expect(renewed.status).toBe(201);
    expect(renewed.body.data).toMatchObject({ conversation_id: first.conversation_id, agent_id: first.agent_id, subject: first.subject });
    expect(renewed.body.data.token).not.toBe(first.token);
    expect(Date.parse(renewed.body.data.expires_at)).toBeGreaterThan(Date.parse(first.expires_at));
    // The new token reaches the same conversation, as the same visitor.
    const visitor = new RestClient({ baseUrl: t.gateway.url, apiKey: renewed.body.data.token });
    const sent = await visitor.call('messages.create', { conversation_id: first.conversation_id, content: 'still here' });
    expect(sent.conversation_id).toBe(first.conversation_id);

    // An API key (even the account's own), or anything not a token of this demo, renews nothing.
    for (const credential of [t.gateway.bootstrap!.key, `${first.token}x`, 'not-a-token']) {
      const refused = await visit(t, credential);
      calls++;
      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe('INVALID_API_KEY');
    }
  });

  it('serves the widget page, its script and the SDK bundle with content types and revalidation', async () => {
    const page = await fetch(`${t.gateway.url}/widget`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('/widget/widget.js');
    const etag = page.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${t.gateway.url}/widget`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');

    const script = await fetch(`${t.gateway.url}/widget/widget.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toContain("from '/widget/sdk.js'");
    const sdk = await fetch(`${t.gateway.url}/widget/sdk.js`);
    expect(sdk.status).toBe(200);
    expect(sdk.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await sdk.text()).toMatch(/export\s*\{[^}]*\bStateSetClient\b/);
    const css = await fetch(`${t.gateway.url}/widget/widget.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');

    // Anything else under /widget is not a file the gateway hands out.
    const other = await fetch(`${t.gateway.url}/widget/../package.json`);
    expect(other.status).toBe(404);
  });

  it('limits visits per address', async () => {
    let refused: Awaited<ReturnType<typeof visit>> | undefined;
    while (calls <= DEMO_VISITOR_QUOTA.perMinute) {
      const answer = await visit(t);
      calls++;
      if (answer.status !== 201) {
        refused = answer;
        break;
      }
    }
    expect(refused, `all ${calls} visits were allowed`).toBeDefined();
    expect(calls).toBe(DEMO_VISITOR_QUOTA.perMinute + 1);
    expect(refused!.status).toBe(429);
    expect(refused!.body.error.code).toBe('RATE_LIMITED');
    expect(refused!.body.error.retry_after).toBeGreaterThan(0);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('demo widget endpoint (DEMO_WIDGET off)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway('pglite', { DEMO_WIDGET: 'false' });
  });
  afterAll(() => t.stop());

  it('answers 404 in the error envelope', async () => {
    const answer = await visit(t);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ success: false, error: { code: 'RESOURCE_NOT_FOUND' } });
    const agents = await new RestClient({ baseUrl: t.gateway.url, apiKey: t.gateway.bootstrap!.key }).call('agents.list', {});
    expect(agents.data).toEqual([]);
  });
});

describe('DEMO_WIDGET setting', () => {
  it('is on for the embedded development set-up, off in production or on PostgreSQL unless asked for', () => {
    expect(loadConfig({}).demoWidget).toBe(true);
    expect(loadConfig({ NODE_ENV: 'production' }).demoWidget).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/stategate' }).demoWidget).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', DEMO_WIDGET: 'true' }).demoWidget).toBe(true);
    expect(loadConfig({ DEMO_WIDGET: 'false' }).demoWidget).toBe(false);
    expect(() => loadConfig({ DEMO_WIDGET: 'maybe' })).toThrow(/DEMO_WIDGET/);
  });
});
