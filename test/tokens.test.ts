import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, TOKEN_SUBPROTOCOL_PREFIX } from '../protocol/index.js';
import { GatewaySocket, RestClient, type WebSocketConstructor } from '../clients/index.js';
import { ClientTokens } from '../src/auth/client-tokens.js';
import { recorder } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('client tokens, presence and typing', () => {
  let t: TestGateway;
  let convId: string;
  let otherConvId: string;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
    const agent = await t.rest.call('agents.create', { name: 'Widget host' });
    convId = (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
    otherConvId = (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
  });
  afterAll(() => t.stop());

  const mint = (subject = 'user_1', topics = [`conversation:${convId}`]) =>
    t.rest.call('tokens.create', { subject, topics, permissions: ['messages:write', 'messages:read', 'conversations:read'] });

  const connectWithToken = (token: string, via: 'query' | 'subprotocol' = 'query') => {
    if (via === 'query') {
      return GatewaySocket.connect({ url: `${t.gateway.wsUrl}?token=${token}`, WebSocket: WebSocket as unknown as WebSocketConstructor });
    }
    // As a browser would: the token rides in Sec-WebSocket-Protocol next to the encoding.
    class WithTokenProtocol extends WebSocket {
      constructor(url: string, protocols?: string[]) {
        super(url, [...(protocols ?? []), `${TOKEN_SUBPROTOCOL_PREFIX}${token}`]);
      }
    }
    return GatewaySocket.connect({ url: t.gateway.wsUrl, WebSocket: WithTokenProtocol as unknown as WebSocketConstructor });
  };

  it('mints a token that reads and writes its conversation, and nothing else', async () => {
    const minted = await mint();
    expect(minted).toMatchObject({ subject: 'user_1', topics: [`conversation:${convId}`] });
    expect(Date.parse(minted.expires_at) - Date.now()).toBeGreaterThan(3500_000);

    for (const via of ['query', 'subprotocol'] as const) {
      const widget = await connectWithToken(minted.token, via);
      expect(widget.welcome.encoding).toBe('json');
      await widget.subscribe(`conversation:${convId}`);
      const message = await widget.call('messages.create', { conversation_id: convId, content: `hello via ${via}` });
      expect(message.content).toBe(`hello via ${via}`);
      await expect(widget.subscribe(`conversation:${otherConvId}`)).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
      await expect(widget.call('messages.create', { conversation_id: otherConvId, content: 'no' })).rejects.toMatchObject({
        code: 'INSUFFICIENT_PERMISSIONS',
        details: { topic: `conversation:${otherConvId}` },
      });
      await expect(widget.call('agents.list', {})).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
      await expect(widget.call('tokens.create', { subject: 'x', topics: [`conversation:${convId}`], permissions: ['messages:read'] })).rejects.toMatchObject({
        code: 'INSUFFICIENT_PERMISSIONS',
      });
      await widget.close();
    }
  });

  it('works as a Bearer credential on REST within its scope', async () => {
    const { token } = await mint();
    const rest = new RestClient({ baseUrl: t.gateway.url, apiKey: token });
    expect((await rest.call('messages.list', { conversation_id: convId })).data.length).toBeGreaterThan(0);
    await expect(rest.call('messages.list', { conversation_id: otherConvId })).rejects.toMatchObject({ status: 403 });
  });

  it('refuses forged, tampered and expired tokens, and closes a connection when its token expires', async () => {
    const { token } = await mint();
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), topics: [`conversation:${otherConvId}`] })).toString('base64url')}.${signature}`;
    for (const bad of [tampered, `${header}.${payload}.AAAA${signature!.slice(4)}`]) {
      await expect(connectWithToken(bad)).rejects.toThrow();
      await expect(new RestClient({ baseUrl: t.gateway.url, apiKey: bad }).call('messages.list', { conversation_id: convId })).rejects.toMatchObject({
        status: 401,
        code: 'INVALID_API_KEY',
      });
    }
    const tokens = await ClientTokens.open(t.gateway.store);
    const principal = (await tokens.verify(token))!;
    const shortLived = await tokens.mint(principal, { subject: 'brief', topics: [`conversation:${convId}`], permissions: ['messages:read'], ttlSeconds: 2 });
    const socket = await connectWithToken(shortLived.token);
    const closed = await socket.closedPromise();
    expect(closed.code).toBe(CloseCode.TOKEN_EXPIRED);
    await expect(connectWithToken(shortLived.token)).rejects.toThrow();
  });

  it('refuses to mint permissions the key lacks, or topics of another account', async () => {
    const reader = await t.newAccount({ scopes: ['tokens:write', 'messages:read', 'conversations:read'] });
    await expect(reader.rest.call('tokens.create', { subject: 'u', topics: ['account'], permissions: ['messages:write'] })).rejects.toMatchObject({
      code: 'INSUFFICIENT_PERMISSIONS',
      details: { missing: ['messages:write'] },
    });
    await expect(reader.rest.call('tokens.create', { subject: 'u', topics: [`conversation:${convId}`], permissions: ['messages:read'] })).rejects.toMatchObject(
      {
        code: 'RESOURCE_NOT_FOUND',
      },
    );
    await expect(
      t.rest.call('tokens.create', { subject: 'u', topics: [`conversation:${convId}`], permissions: ['messages:read'], ttl_seconds: 999_999 }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
    });
  });

  it('tracks presence per user across several connections, with join and leave events', async () => {
    const topic = `conversation:${convId}`;
    const agent = await t.connect();
    const seen = recorder(agent, topic, { ephemeral: true });
    await agent.subscribe(topic);
    const { token } = await mint('user_presence');
    const tabA = await connectWithToken(token);
    const tabB = await connectWithToken(token);
    await tabA.subscribe(topic);
    await tabB.subscribe(topic);
    const presence = await t.rest.call('presence.get', { topic });
    expect(presence.members).toContainEqual({ subject: 'user_presence', connections: 2 });
    await tabA.close();
    expect((await t.rest.call('presence.get', { topic })).members).toContainEqual({ subject: 'user_presence', connections: 1 });
    await tabB.close();
    await seen.waitFor((events) => events.some((e) => e.event === 'presence.left' && (e.data as { subject: string }).subject === 'user_presence'));
    const mine = seen.events.filter((e) => (e.data as { subject?: string }).subject === 'user_presence');
    expect(mine.map((e) => [e.event, e.seq, e.ephemeral])).toEqual([
      ['presence.joined', 0, true],
      ['presence.left', 0, true],
    ]);
    expect((await t.rest.call('presence.get', { topic })).members.some((m) => m.subject === 'user_presence')).toBe(false);
  });

  it('sends typing as an ephemeral event that takes no seq and is not replayed', async () => {
    const topic = `conversation:${convId}`;
    const agent = await t.connect();
    const seen = recorder(agent, topic, { ephemeral: true });
    const subscribed = await agent.subscribe(topic);
    const { token } = await mint('typist');
    const widget = await connectWithToken(token);
    await widget.call('conversations.typing', { conversation_id: convId });
    await t.rest.call('messages.create', { conversation_id: convId, content: 'after typing' });
    await seen.waitFor((events) => events.some((e) => e.event === 'message.created'));
    const typing = seen.named('typing')[0]!;
    expect(typing).toMatchObject({ seq: 0, ephemeral: true, data: { subject: 'typist', typing: true } });
    const created = seen.named('message.created')[0]!;
    expect(created.seq).toBe(subscribed.seq + 1);
    const replay = await t.connect();
    const replayed = recorder(replay, topic, { ephemeral: true });
    await replay.subscribe(topic, undefined, { since: subscribed.seq, epoch: subscribed.epoch });
    await replay.ping();
    expect(replayed.events.map((e) => e.event)).toEqual(['message.created']);
  });
});
