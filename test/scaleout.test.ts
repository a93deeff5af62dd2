import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, SUBPROTOCOL, type EventFrame } from '../protocol/index.js';
import type { GatewaySocket } from '../clients/index.js';
import { postgresProblem } from './helpers/backends.js';
import { GatewayNodes } from './helpers/nodes.js';
import { LocalRedisCluster } from './helpers/redis-cluster.js';
import { REDIS_URL, redisAvailable } from './helpers/redis.js';

/**
 * Three gateway processes sharing one PostgreSQL and one Redis (then a 3-primary Redis Cluster):
 * subscribers on every node must see the same events, with the same seq, in the same order, none
 * missing and none twice, whichever node the writes went through.
 */
const pgProblem = await postgresProblem();
if (pgProblem && process.env.CI === 'true') throw new Error(`CI=true requires PostgreSQL for the scale-out suite: ${pgProblem}`);
if (pgProblem) process.stderr.write(`\n[stategate tests] SKIPPING the scale-out suite: ${pgProblem}\n\n`);
const available = !pgProblem && (await redisAvailable('the scale-out suite'));

interface Seen {
  seq: number;
  epoch: string;
  event: string;
  messageId: string | undefined;
}

const seen = (frame: EventFrame): Seen => ({
  seq: frame.seq,
  epoch: frame.epoch,
  event: frame.event,
  messageId: (frame.data as { message?: { id: string } }).message?.id,
});

/** Numbered events only: presence and typing signals (ephemeral, seq 0) come and go between them. */
const durable =
  (listener: (frame: EventFrame) => void) =>
  (frame: EventFrame): void => {
    if (!frame.ephemeral) listener(frame);
  };

async function until(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Agent and conversation created through node 0; returns the conversation's topic. */
async function newConversation(nodes: GatewayNodes): Promise<{ conversationId: string; topic: string }> {
  const rest = nodes.rest(0);
  const agent = await rest.call('agents.create', { name: 'Scale-out agent' });
  const conversation = await rest.call('conversations.create', { agent_id: agent.id, channel: 'web' });
  return { conversationId: conversation.id, topic: `conversation:${conversation.id}` };
}

/** A bare JSON WebSocket client, for the resume frame (`since` + `epoch`) that GatewaySocket does not send yet. */
async function rawClient(url: string, apiKey: string) {
  const ws = new WebSocket(url, [SUBPROTOCOL.json], { headers: { 'x-api-key': apiKey } });
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    frames,
    events: () => frames.filter((frame) => frame.type === 'event' && !frame.ephemeral) as unknown as EventFrame[],
    send: (frame: Record<string, unknown>) => ws.send(JSON.stringify(frame)),
    close: () => ws.close(),
  };
}

function scaleOutSuite(name: string, redisUrl: () => string): void {
  describe.runIf(available)(`scale-out: 3 gateway processes on ${name}`, () => {
    let nodes: GatewayNodes;
    beforeAll(async () => {
      nodes = await GatewayNodes.start({ count: 3, redisUrl: redisUrl() });
    }, 60_000);
    afterAll(async () => {
      await nodes?.stop();
    }, 30_000);

    it('reports the Redis bus as ready on every node', async () => {
      for (const node of nodes.nodes) {
        expect(await node.readyz()).toMatchObject({ status: 200, body: { status: 'ready', checks: { bus: 'redis', store: 'ok' } } });
      }
    });

    it('gives every subscriber on every node the same events, in order, once each', async () => {
      const { conversationId, topic } = await newConversation(nodes);
      const subscribers: { node: number; socket: GatewaySocket; events: Seen[]; start: number }[] = [];
      for (const node of [0, 1, 2]) {
        for (let i = 0; i < 2; i++) {
          const socket = await nodes.connect(node);
          const events: Seen[] = [];
          const result = await socket.subscribe(
            topic,
            durable((frame) => events.push(seen(frame))),
          );
          subscribers.push({ node, socket, events, start: result.seq });
        }
      }
      // Every subscription started at the same position, whichever node it is on.
      expect(new Set(subscribers.map((s) => s.start)).size).toBe(1);
      const start = subscribers[0]!.start;

      // Three writers: REST on node 1, WebSocket calls on nodes 2 and 0, all at once.
      const perWriter = 12;
      const restWriter = nodes.rest(1);
      const wsWriters = [await nodes.connect(2), await nodes.connect(0)];
      const written = await Promise.all([
        (async () => {
          const ids: string[] = [];
          for (let i = 0; i < perWriter; i++)
            ids.push((await restWriter.call('messages.create', { conversation_id: conversationId, content: `rest ${i}` })).id);
          return ids;
        })(),
        ...wsWriters.map(async (writer, w) => {
          const ids: string[] = [];
          for (let i = 0; i < perWriter; i++) ids.push((await writer.call('messages.create', { conversation_id: conversationId, content: `ws${w} ${i}` })).id);
          return ids;
        }),
      ]);
      const total = perWriter * 3;
      await until(
        () => subscribers.every((s) => s.events.length >= total),
        10_000,
        () => `events: ${subscribers.map((s) => `node ${s.node}: ${s.events.length}`).join(', ')} of ${total}`,
      );
      await new Promise((r) => setTimeout(r, 200)); // a duplicate would arrive by now

      const reference = subscribers[0]!.events;
      expect(reference.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => start + i + 1));
      expect(new Set(reference.map((e) => e.epoch)).size).toBe(1);
      expect(reference.every((e) => e.event === 'message.created')).toBe(true);
      expect(new Set(reference.map((e) => e.messageId))).toEqual(new Set(written.flat()));
      for (const subscriber of subscribers) expect(subscriber.events).toEqual(reference);
      // Each writer's messages appear in the order it wrote them.
      for (const ids of written) expect(reference.map((e) => e.messageId).filter((id) => ids.includes(id!))).toEqual(ids);
    });

    // Uses the resume protocol (subscribe with `since` + `epoch`, answered `recovered: true`, then the replay).
    it('resumes a subscriber on another node from where it left off', async () => {
      const { conversationId, topic } = await newConversation(nodes);
      const first = await nodes.connect(0);
      const before: Seen[] = [];
      await first.subscribe(
        topic,
        durable((frame) => before.push(seen(frame))),
      );
      const writer = nodes.rest(1);
      for (let i = 0; i < 5; i++) await writer.call('messages.create', { conversation_id: conversationId, content: `before ${i}` });
      await until(
        () => before.length === 5,
        5000,
        () => `${before.length} of 5 events before the move`,
      );
      await first.close();

      // Missed while away.
      for (let i = 0; i < 4; i++) await writer.call('messages.create', { conversation_id: conversationId, content: `away ${i}` });

      const last = before.at(-1)!;
      const second = await rawClient(nodes.node(2).wsUrl, nodes.apiKey);
      try {
        second.send({ type: 'subscribe', id: 1, topic, since: last.seq, epoch: last.epoch });
        await until(
          () => second.frames.some((f) => f.type === 'result' && f.id === 1),
          5000,
          () => 'the subscribe result',
        );
        expect(second.frames.find((f) => f.id === 1)).toMatchObject({ type: 'result', data: { topic, subscribed: true, recovered: true, epoch: last.epoch } });
        for (let i = 0; i < 3; i++) await writer.call('messages.create', { conversation_id: conversationId, content: `after ${i}` });
        await until(
          () => second.events().length >= 7,
          5000,
          () => `${second.events().length} of 7 events after the move`,
        );
        await new Promise((r) => setTimeout(r, 200));
        expect(second.events().map((e) => e.seq)).toEqual(Array.from({ length: 7 }, (_, i) => last.seq + 1 + i));
        expect(new Set(second.events().map((e) => e.epoch))).toEqual(new Set([last.epoch]));
      } finally {
        second.close();
      }
    });

    // Last: it stops node 2.
    it('drains a node on SIGTERM with 1001, and its subscribers resume on another node', async () => {
      const { conversationId, topic } = await newConversation(nodes);
      const socket = await nodes.connect(2);
      const events: Seen[] = [];
      await socket.subscribe(
        topic,
        durable((frame) => events.push(seen(frame))),
      );
      const writer = nodes.rest(0);
      for (let i = 0; i < 3; i++) await writer.call('messages.create', { conversation_id: conversationId, content: `m ${i}` });
      await until(
        () => events.length === 3,
        5000,
        () => `${events.length} of 3 events`,
      );

      const closed = socket.closedPromise();
      const exit = nodes.node(2).stop();
      expect((await closed).code).toBe(CloseCode.GOING_AWAY);
      expect(await exit).toBe(0);
      for (let i = 0; i < 2; i++) await writer.call('messages.create', { conversation_id: conversationId, content: `while moving ${i}` });

      const last = events.at(-1)!;
      const resumed = await rawClient(nodes.node(1).wsUrl, nodes.apiKey);
      try {
        resumed.send({ type: 'subscribe', id: 1, topic, since: last.seq, epoch: last.epoch });
        await until(
          () => resumed.events().length >= 2,
          5000,
          () => `${resumed.events().length} of 2 replayed events`,
        );
        expect(resumed.frames.find((f) => f.id === 1)).toMatchObject({ data: { recovered: true } });
        expect(resumed.events().map((e) => e.seq)).toEqual([last.seq + 1, last.seq + 2]);
      } finally {
        resumed.close();
      }
    });
  });
}

scaleOutSuite('one Redis', () => REDIS_URL);

describe.runIf(available)('with a Redis Cluster', () => {
  let cluster: LocalRedisCluster | null = null;
  beforeAll(async () => {
    cluster = await LocalRedisCluster.start();
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  scaleOutSuite('a 3-primary Redis Cluster', () => cluster!.url);
});
