import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeCodeFor } from '../protocol/index.js';
import { ClientTokens } from '../src/auth/client-tokens.js';
import type { Principal } from '../src/auth/keys.js';
import { sleep, until } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { deepJson, socketDrivers, type SocketConnection } from './helpers/socket-drivers.js';

/**
 * One behavioural suite for every socket transport (/v1/ws and graphql-ws), so that neither can
 * drift from the connection policy: credential expiry and revocation, the slow-consumer close,
 * frame size and rate limits, rate limits, bad input and another account's resources. Each
 * transport closes with its own protocol's code for the same reason (`closeCodeFor`). REST and
 * GraphQL over HTTP take the cases that apply to them at the end.
 */
const LIMITS = {
  WS_MAX_BACKPRESSURE_BYTES: '65536',
  WS_MAX_FRAMES_PER_SECOND: '50',
  WS_MAX_FRAME_BYTES: '65536',
  WS_EXPIRY_NOTICE_MS: '1500',
};

let t: TestGateway;
let tokens: ClientTokens;
let minter: Principal;
let agentId: string;

beforeAll(async () => {
  t = await startTestGateway('pglite', LIMITS);
  tokens = await ClientTokens.open(t.gateway.store);
  const { token } = await t.rest.call('tokens.create', { subject: 'minter', topics: ['account'], permissions: ['messages:read'] });
  minter = { ...(await tokens.verify(token))!, scopes: ['*'] };
  agentId = (await t.rest.call('agents.create', { name: 'Parity' })).id;
});
afterAll(() => t.stop());

const newConversation = async () => (await t.rest.call('conversations.create', { agent_id: agentId })).id;
/** An ephemeral event on the conversation: what a graphql-ws subscription is probed with until it flows. */
const typingIn = (conversationId: string) => () => t.rest.call('conversations.typing', { conversation_id: conversationId, typing: true });
const numbered = (connection: SocketConnection) => connection.events.filter((event) => !event.ephemeral);

/** A client token with any lifetime (the API's minimum is a minute). */
const tokenFor = async (conversationId: string, ttlSeconds: number) =>
  (
    await tokens.mint(minter, {
      subject: `visitor-${conversationId}`,
      topics: [`conversation:${conversationId}`],
      permissions: ['conversations:read', 'messages:read', 'messages:write'],
      ttlSeconds,
    })
  ).token;

describe.each(socketDrivers)('$name under the connection policy', (driver) => {
  const codeFor = (reason: Parameters<typeof closeCodeFor>[1]) => closeCodeFor(driver.protocol, reason);

  it('tells the client before its token expires, then closes at the expiry: no event and no write after', async () => {
    const conversation = await newConversation();
    const connection = await driver.open(t.gateway.url, await tokenFor(conversation, 3));
    expect(await connection.subscribe(`conversation:${conversation}`, typingIn(conversation))).toEqual({ ok: true });
    expect(await connection.write(conversation, 'while valid')).toEqual({ ok: true });
    await until(() => connection.expiring.length > 0, 3000, 'the expiry notice');
    expect(Date.parse(connection.expiring[0]!) - Date.now()).toBeGreaterThan(300);
    const closed = await connection.closed;
    expect(closed.code).toBe(codeFor('credentials_expired'));
    const seen = connection.events.length;
    await t.rest.call('messages.create', { conversation_id: conversation, content: 'after expiry' });
    await sleep(200);
    expect(connection.events.length).toBe(seen);
  });

  it("closes a revoked key's socket at once, and it receives nothing after", async () => {
    const conversation = await newConversation();
    const created = await t.rest.call('keys.create', { name: `revoked-${driver.name}`, scopes: ['conversations:read', 'messages:read', 'messages:write'] });
    const connection = await driver.open(t.gateway.url, created.key);
    expect(await connection.subscribe(`conversation:${conversation}`, typingIn(conversation))).toEqual({ ok: true });
    await t.rest.call('keys.revoke', { key_id: created.id });
    const closed = await Promise.race([connection.closed, sleep(3000).then(() => null)]);
    expect(closed?.code).toBe(codeFor('credentials_revoked'));
    const seen = numbered(connection).length;
    await t.rest.call('messages.create', { conversation_id: conversation, content: 'after revocation' });
    await sleep(200);
    expect(numbered(connection).length).toBe(seen);
  });

  it('closes a slow consumer with the resumable code, and what it received before has no gap', async () => {
    const conversation = await newConversation();
    const connection = await driver.open(t.gateway.url, t.apiKey);
    expect(await connection.subscribe(`conversation:${conversation}`, typingIn(conversation))).toEqual({ ok: true });
    const open = t.gateway.server.connections;
    connection.pause();
    const content = 'x'.repeat(30_000);
    // Until the server gives up on it: the kernel's socket buffers take several MB first (how many
    // depends on the machine), then the server's 64 KiB allowance fills.
    let sent = 0;
    while (sent < 3000 && t.gateway.server.connections === open) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) => t.rest.call('messages.create', { conversation_id: conversation, content: `${sent + j}:${content}` })),
      );
      sent += 20;
    }
    expect(t.gateway.server.connections).toBe(open - 1);
    connection.resume();
    const closed = await Promise.race([connection.closed, sleep(10_000).then(() => null)]);
    // Events fanned out natively (/v1/ws) are checked by a sweep: a reader that stopped entirely
    // can pass uWS's hard limit between two sweeps and be dropped (1006, resumable too).
    expect(driver.protocol === 'stategate' ? [codeFor('slow_consumer'), 1006] : [codeFor('slow_consumer')]).toContain(closed?.code);
    const seqs = numbered(connection).map((event) => event.seq);
    expect(seqs.length).toBeLessThan(sent);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  });

  it('closes a socket that sends a frame over the size limit', async () => {
    const connection = await driver.open(t.gateway.url, t.apiKey);
    connection.sendRaw(JSON.stringify({ type: 'ping', padding: 'x'.repeat(70_000) }));
    expect((await connection.closed).code).toBe(codeFor('frame_too_big'));
  });

  it('closes a socket that floods frames past the rate limit', async () => {
    const connection = await driver.open(t.gateway.url, t.apiKey);
    for (let i = 0; i < 300 && connection.isOpen(); i++) connection.sendRaw(JSON.stringify({ type: 'ping' }));
    expect((await connection.closed).code).toBe(codeFor('too_many_frames'));
  });

  it('charges every request against the rate limit, even one that runs no operation', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const connection = await driver.open(t.gateway.url, starter.apiKey);
    const answers: string[] = [];
    // Under the frame rate (50/s, bursts of 100): what refuses them is the plan's 100 a minute.
    for (let i = 0; i < 150; i += 25) {
      answers.push(...(await Promise.all(Array.from({ length: 25 }, () => connection.cheap()))).map((answer) => (answer.ok ? 'ok' : answer.code)));
      await sleep(600);
    }
    expect(answers.filter((answer) => answer === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(40);
    expect(answers.filter((answer) => answer === 'ok').length).toBeLessThanOrEqual(100);
    expect(connection.isOpen()).toBe(true);
  });

  it('answers bad input with an error and keeps the socket open', async () => {
    const connection = await driver.open(t.gateway.url, t.apiKey);
    const syntax = await connection.bad('syntax');
    expect(syntax.ok).toBe(false);
    const deep = await connection.bad('deep');
    expect(deep).toEqual({ ok: false, code: 'VALIDATION_ERROR' });
    expect(connection.isOpen()).toBe(true);
    expect(await connection.cheap()).toEqual({ ok: true });
  });

  it("refuses another account's conversation exactly as one that does not exist", async () => {
    const other = await t.newAccount();
    const otherAgent = await other.rest.call('agents.create', { name: 'Theirs' });
    const theirs = (await other.rest.call('conversations.create', { agent_id: otherAgent.id })).id;
    const connection = await driver.open(t.gateway.url, t.apiKey);
    const noProbe = async () => {};
    expect(await connection.subscribe(`conversation:${theirs}`, noProbe)).toEqual({ ok: false, code: 'RESOURCE_NOT_FOUND' });
    expect(await connection.subscribe('conversation:conv_doesnotexist1', noProbe)).toEqual({ ok: false, code: 'RESOURCE_NOT_FOUND' });
    expect(await connection.write(theirs, 'not mine')).toEqual({ ok: false, code: 'RESOURCE_NOT_FOUND' });
    expect(connection.isOpen()).toBe(true);
  });
});

describe.each(['rest', 'graphql'] as const)('%s over HTTP under the same rules', (transport) => {
  /** One metered read with a credential: status and error code. */
  async function read(credential: string | undefined, body: { conversation?: string; deep?: boolean } = {}) {
    const headers: Record<string, string> = credential ? { authorization: `Bearer ${credential}` } : {};
    let response: Response;
    if (transport === 'rest') {
      response = body.deep
        ? await fetch(`${t.gateway.url}/v1/agents`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: `{"name": "deep", "metadata": ${deepJson(100)}}`,
          })
        : await fetch(`${t.gateway.url}/v1/conversations/${body.conversation ?? 'conv_doesnotexist1'}`, { headers });
      const json = (await response.json()) as { error?: { code: string } };
      return { status: response.status, code: json.error?.code ?? 'ok' };
    }
    const query = body.deep ? '{ __typename }' : 'query($id: ID!) { conversation(id: $id) { id } }';
    response = await fetch(`${t.gateway.url}/graphql`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: body.deep
        ? `{"query": ${JSON.stringify(query)}, "variables": {"deep": ${deepJson(100_000)}}}`
        : JSON.stringify({ query, variables: { id: body.conversation ?? 'conv_doesnotexist1' } }),
    });
    const json = (await response.json()) as { errors?: { extensions: { code: string } }[] };
    return { status: response.status, code: json.errors?.[0]?.extensions.code ?? 'ok' };
  }

  it('refuses no, expired and revoked credentials with 401', async () => {
    const conversation = await newConversation();
    expect(await read(undefined, { conversation })).toMatchObject({ status: 401, code: 'INVALID_API_KEY' });
    const expired = await tokenFor(conversation, 1);
    await sleep(2100);
    expect(await read(expired, { conversation })).toMatchObject({ status: 401, code: 'INVALID_API_KEY' });
    const created = await t.rest.call('keys.create', { name: `revoked-${transport}`, scopes: ['conversations:read'] });
    expect((await read(created.key, { conversation })).code).toBe('ok');
    await t.rest.call('keys.revoke', { key_id: created.id });
    expect(await read(created.key, { conversation })).toMatchObject({ status: 401, code: 'INVALID_API_KEY' });
  });

  it('refuses input nested too deep with 400, before any work', async () => {
    expect(await read(t.apiKey, { deep: true })).toMatchObject({ status: 400, code: 'VALIDATION_ERROR' });
  });

  it("answers another account's conversation as not found", async () => {
    const other = await t.newAccount();
    const otherAgent = await other.rest.call('agents.create', { name: 'Theirs' });
    const theirs = (await other.rest.call('conversations.create', { agent_id: otherAgent.id })).id;
    expect((await read(t.apiKey, { conversation: theirs })).code).toBe('RESOURCE_NOT_FOUND');
  });

  it('refuses requests past the plan with 429', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const statuses: number[] = [];
    for (let i = 0; i < 150; i += 25) statuses.push(...(await Promise.all(Array.from({ length: 25 }, () => read(starter.apiKey)))).map((r) => r.status));
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(40);
  });
});
