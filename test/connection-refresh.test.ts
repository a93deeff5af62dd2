import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, type CredentialsExpiringFrame, type UnsubscribedFrame } from '../protocol/index.js';
import { GatewaySocket, ResilientClient, type WebSocketConstructor } from '../clients/index.js';
import { ClientTokens } from '../src/auth/client-tokens.js';
import type { Principal } from '../src/auth/keys.js';
import { recorder, sleep } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * Credentials have a lifetime on an open /v1/ws connection: the gateway says shortly before a
 * client token expires (`credentials_expiring`), the client hands over a fresh one in place
 * (`connection.refresh`) and keeps its connection and subscriptions; a token for someone else is
 * refused and the old one stays; a subscription the new token does not cover ends, with a reason.
 */
const NOTICE_MS = 1500;

describe('refreshing credentials in place on /v1/ws', () => {
  let t: TestGateway;
  let tokens: ClientTokens;
  let minter: Principal;
  let convA: string;
  let convB: string;

  beforeAll(async () => {
    t = await startTestGateway('pglite', { WS_EXPIRY_NOTICE_MS: String(NOTICE_MS) });
    const agent = await t.rest.call('agents.create', { name: 'Refresh host' });
    convA = (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
    convB = (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
    tokens = await ClientTokens.open(t.gateway.store);
    minter = await tokenPrincipal();
  });
  afterAll(() => t.stop());

  /** The account's key as a principal, to mint tokens of any lifetime (the API's minimum is a minute). */
  async function tokenPrincipal(): Promise<Principal> {
    const { token } = await t.rest.call('tokens.create', { subject: 'minter', topics: ['account'], permissions: ['messages:read'] });
    const principal = (await tokens.verify(token))!;
    return { ...principal, scopes: ['*'] };
  }

  const mint = async (ttlSeconds: number, options: { subject?: string; topics?: string[] } = {}) =>
    (
      await tokens.mint(minter, {
        subject: options.subject ?? 'visitor',
        topics: options.topics ?? [`conversation:${convA}`, `conversation:${convB}`],
        permissions: ['conversations:read', 'messages:read', 'messages:write'],
        ttlSeconds,
      })
    ).token;

  const connect = (token: string) =>
    GatewaySocket.connect({ url: `${t.gateway.wsUrl}?token=${token}`, WebSocket: WebSocket as unknown as WebSocketConstructor });

  function notices(socket: GatewaySocket) {
    const seen: (CredentialsExpiringFrame | UnsubscribedFrame)[] = [];
    socket.onNotice((frame) => seen.push(frame));
    return seen;
  }

  it('tells the client before its token expires; a fresh token keeps the connection and its subscriptions without a gap', async () => {
    const socket = await connect(await mint(3));
    const seen = notices(socket);
    const events = recorder(socket, `conversation:${convA}`);
    const subscribed = await socket.subscribe(`conversation:${convA}`);
    await t.rest.call('messages.create', { conversation_id: convA, content: 'before refresh' });

    // The notice comes NOTICE_MS before the expiry, not at it.
    const deadline = Date.now() + 3000;
    while (!seen.some((frame) => frame.type === 'credentials_expiring') && Date.now() < deadline) await sleep(20);
    const notice = seen.find((frame): frame is CredentialsExpiringFrame => frame.type === 'credentials_expiring');
    expect(notice).toBeDefined();
    expect(Date.parse(notice!.expires_at) - Date.now()).toBeGreaterThan(500);

    const refreshed = await socket.refresh(await mint(120));
    expect(refreshed).toMatchObject({ subject: 'visitor', ended: [] });
    expect(Date.parse(refreshed.expires_at!) - Date.now()).toBeGreaterThan(100_000);

    // Past the old token's expiry: still open, still subscribed, calls still allowed.
    await sleep(3200);
    expect(socket.isOpen).toBe(true);
    await socket.call('messages.create', { conversation_id: convA, content: 'after refresh' });
    await events.waitFor((list) => list.length === 2);
    expect(events.events.map((event) => [event.seq, (event.data as { message: { content: string } }).message.content])).toEqual([
      [subscribed.seq + 1, 'before refresh'],
      [subscribed.seq + 2, 'after refresh'],
    ]);
    await socket.close();
  });

  it('refuses a token for another subject or account, keeping the old credentials (closed with 4001 at their expiry)', async () => {
    const socket = await connect(await mint(2));
    await expect(socket.refresh(await mint(120, { subject: 'someone-else' }))).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
    const other = await t.newAccount();
    const { token: foreign } = await other.rest.call('tokens.create', { subject: 'visitor', topics: ['account'], permissions: ['messages:read'] });
    await expect(socket.refresh(foreign)).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
    await expect(socket.refresh('ey.not.a-token')).rejects.toMatchObject({ code: 'INVALID_API_KEY' });
    await expect(socket.call('connection.refresh' as never, { token: 5 } as never)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(socket.isOpen).toBe(true);
    const closed = await socket.closedPromise();
    expect(closed.code).toBe(CloseCode.TOKEN_EXPIRED);
  });

  it('ends, with a reason, the subscriptions the new token does not cover, and only those', async () => {
    const socket = await connect(await mint(120));
    const seen = notices(socket);
    const onA = recorder(socket, `conversation:${convA}`);
    const onB = recorder(socket, `conversation:${convB}`);
    await socket.subscribe(`conversation:${convA}`);
    await socket.subscribe(`conversation:${convB}`);

    const refreshed = await socket.refresh(await mint(120, { topics: [`conversation:${convA}`] }));
    expect(refreshed.ended).toEqual([`conversation:${convB}`]);
    expect(seen).toContainEqual(
      expect.objectContaining({ type: 'unsubscribed', topic: `conversation:${convB}`, error: expect.objectContaining({ code: 'INSUFFICIENT_PERMISSIONS' }) }),
    );

    await t.rest.call('messages.create', { conversation_id: convB, content: 'not for you any more' });
    await t.rest.call('messages.create', { conversation_id: convA, content: 'still yours' });
    await onA.waitFor((list) => list.length === 1);
    await socket.ping();
    expect(onB.events).toEqual([]);
    // The new token's scope holds for calls too.
    await expect(socket.call('messages.create', { conversation_id: convB, content: 'no' })).rejects.toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS' });
    await socket.close();
  });

  it('lets the resilient client refresh in place from its credentials function: no reconnect, no lost event', async () => {
    let minted = 0;
    const states: string[] = [];
    const client = await ResilientClient.connect({
      url: t.gateway.wsUrl,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      keyInQuery: true,
      credentials: async () => ({ apiKey: await mint(minted++ === 0 ? 3 : 120) }),
      onStateChange: (state) => states.push(state),
    });
    const received: number[] = [];
    await client.subscribe(`conversation:${convA}`, { onEvent: (event) => !event.ephemeral && received.push(event.seq) });
    const before = await t.rest.call('messages.create', { conversation_id: convA, content: 'one' });
    await sleep(3500);
    await t.rest.call('messages.create', { conversation_id: convA, content: 'two' });
    const deadline = Date.now() + 3000;
    while (received.length < 2 && Date.now() < deadline) await sleep(20);
    expect(before.content).toBe('one');
    expect(received).toHaveLength(2);
    expect(received[1]).toBe(received[0]! + 1);
    // Connected once, never dropped: the token was replaced on the open connection.
    expect(states).toEqual(['connecting', 'connected']);
    expect(minted).toBe(2);
    await client.close();
  });

  it('refuses an operation for a token past its expiry even on a connection still open (the pipeline checks, not only the timer)', async () => {
    const principal = (await tokens.verify(await mint(120)))!;
    const outcome = await t.gateway.operations.execute(
      'messages.list',
      { conversation_id: convA },
      { principal: { ...principal, expiresAt: Date.now() - 1 }, requestId: 'req_test', transport: 'ws' },
    );
    expect(outcome.failure?.code).toBe('INVALID_API_KEY');
  });
});
