import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { closeCodeFor, CloseCode } from '../protocol/index.js';
import { GatewaySocket, RestClient, type WebSocketConstructor } from '../clients/index.js';
import { postgresProblem } from './helpers/backends.js';
import { startTestGateway } from './helpers/gateway.js';
import { GatewayNodes } from './helpers/nodes.js';
import { REDIS_URL, redisAvailable } from './helpers/redis.js';
import { graphqlWsDriver } from './helpers/socket-drivers.js';

const connectWith = (url: string, apiKey: string) => GatewaySocket.connect({ url, apiKey, WebSocket: WebSocket as unknown as WebSocketConstructor });

describe('key revocation', () => {
  it('closes the WebSocket connections of a revoked key with 4003 and refuses the key at once', async () => {
    const t = await startTestGateway('pglite');
    try {
      const created = await t.rest.call('keys.create', { name: 'short-lived', scopes: ['agents:read'] });
      const socket = await connectWith(t.gateway.wsUrl, created.key);
      expect((await socket.call('agents.list', {})).data).toEqual([]);
      const closed = socket.closedPromise();
      await t.rest.call('keys.revoke', { key_id: created.id });
      expect((await closed).code).toBe(CloseCode.UNAUTHORIZED);
      await expect(new RestClient({ baseUrl: t.gateway.url, apiKey: created.key }).call('agents.list', {})).rejects.toMatchObject({ status: 401 });
    } finally {
      await t.stop();
    }
  });
});

const pgProblem = await postgresProblem();
if (pgProblem && process.env.CI === 'true') throw new Error(`CI=true requires PostgreSQL for the revocation suite: ${pgProblem}`);
const multiNode = !pgProblem && (await redisAvailable('the cross-node revocation test'));

describe.runIf(multiNode)('writes seen at once on every node', () => {
  let nodes: GatewayNodes | null = null;
  afterAll(() => nodes?.stop());

  it('a key revoked on one node stops working on the others at once, their sockets included', async () => {
    nodes = await GatewayNodes.start({ count: 2, redisUrl: REDIS_URL });
    const created = await nodes.rest(0).call('keys.create', { name: 'roaming', scopes: ['agents:read'] });
    const onB = new RestClient({ baseUrl: nodes.nodes[1]!.url, apiKey: created.key });
    // Node B has now resolved and cached the key.
    expect((await onB.call('agents.list', {})).data).toEqual([]);
    const socket = await connectWith(nodes.nodes[1]!.wsUrl, created.key);
    const closed = socket.closedPromise();
    // graphql-ws is under the same connection policy: closed too, with its protocol's code.
    const graphqlSocket = await graphqlWsDriver.open(nodes.nodes[1]!.url, created.key);
    await nodes.rest(0).call('keys.revoke', { key_id: created.id });
    expect((await closed).code).toBe(CloseCode.UNAUTHORIZED);
    expect((await graphqlSocket.closed).code).toBe(closeCodeFor('graphql-ws', 'credentials_revoked'));
    await expect(onB.call('agents.list', {})).rejects.toMatchObject({ status: 401 });
  });

  it('an agent changed on one node is read fresh on the others (cached reads are evicted everywhere)', async () => {
    const onA = nodes!.rest(0);
    const onB = nodes!.rest(1);
    const agent = await onA.call('agents.create', { name: 'Before' });
    // Read twice on node B: the second read comes from its cache.
    expect((await onB.call('agents.get', { agent_id: agent.id })).name).toBe('Before');
    expect((await onB.call('agents.get', { agent_id: agent.id })).name).toBe('Before');
    await onA.call('agents.update', { agent_id: agent.id, name: 'After' });
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'After'; i++) {
      seen = (await onB.call('agents.get', { agent_id: agent.id })).name;
      if (seen !== 'After') await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(seen).toBe('After');
    await onA.call('agents.delete', { agent_id: agent.id });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(onB.call('agents.get', { agent_id: agent.id })).rejects.toMatchObject({ status: 404 });
  });

  it('counts presence across nodes: one subject connected to two nodes is one member with two connections', async () => {
    const agent = await nodes!.rest(0).call('agents.create', { name: 'Presence' });
    const conversation = await nodes!.rest(0).call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const onA = await nodes!.connect(0);
    const onB = await nodes!.connect(1);
    await onA.subscribe(topic);
    await onB.subscribe(topic);
    let members: { subject: string; connections: number }[] = [];
    for (let i = 0; i < 50 && members[0]?.connections !== 2; i++) {
      members = (await nodes!.rest(1).call('presence.get', { topic })).members;
      if (members[0]?.connections !== 2) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(members).toHaveLength(1);
    expect(members[0]!.connections).toBe(2);
    await onB.close();
    for (let i = 0; i < 50 && members[0]?.connections !== 1; i++) {
      members = (await nodes!.rest(0).call('presence.get', { topic })).members;
      if (members[0]?.connections !== 1) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(members[0]!.connections).toBe(1);
  });

  it('gives a subscriber on another node the text so far of a reply being streamed', async () => {
    const agent = await nodes!.rest(0).call('agents.create', { name: 'Streamer' });
    const conversation = await nodes!.rest(0).call('conversations.create', { agent_id: agent.id });
    const topic = `conversation:${conversation.id}`;
    const sender = await nodes!.connect(0);
    const { stream_id } = await sender.call('streams.start', { conversation_id: conversation.id });
    for (const delta of ['Your order ', 'ships ', 'tomor']) await sender.call('streams.append', { stream_id, delta });
    const viewer = await nodes!.connect(1);
    const deltas: { index: number; delta: string }[] = [];
    viewer.on(topic, (event) => {
      if (event.event === 'message.delta') deltas.push(event.data as { index: number; delta: string });
    });
    const joined = await viewer.subscribe(topic);
    expect(joined.streams).toEqual([expect.objectContaining({ stream_id, text: 'Your order ships tomor', index: 2 })]);
    await sender.call('streams.append', { stream_id, delta: 'row.' });
    const message = await sender.call('streams.end', { stream_id });
    for (let i = 0; i < 50 && !deltas.some((d) => d.index === 3); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const snapshot = joined.streams![0]!;
    expect(
      snapshot.text +
        deltas
          .filter((d) => d.index > snapshot.index)
          .map((d) => d.delta)
          .join(''),
    ).toBe(message.content);
  });
});
