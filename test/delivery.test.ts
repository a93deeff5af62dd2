import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubscribeResult } from '../protocol/index.js';
import type { Principal } from '../src/auth/keys.js';
import type { TopicEvent } from '../src/kernel/topic-event.js';
import type { Subscriber } from '../src/realtime/delivery.js';
import { topicKey } from '../src/realtime/topics.js';
import { sleep } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * One behavioural suite for delivery, run against each kind of subscriber: a WebSocket through the
 * uWS transport (direct sends, then native topics fed by the uWS broadcast sink), and an in-memory
 * subscriber with no shared fan-out, as a GraphQL subscription or a webhook consumer would be.
 */
interface Received {
  topic: string;
  seq: number;
  epoch: string;
  id: string | undefined;
  event: string;
  content: string | undefined;
}

interface Follower {
  subscribe(topic: string, resume?: { since: number; epoch: string }): Promise<SubscribeResult>;
  unsubscribe(topic: string): Promise<void>;
  /** Numbered events received so far, in order. */
  readonly events: Received[];
  close(): Promise<void>;
}

interface SinkFactory {
  name: string;
  follower(t: TestGateway): Promise<Follower>;
}

const contentOf = (data: unknown) => (data as { message?: { content?: string } }).message?.content;

const websocketSink: SinkFactory = {
  name: 'WebSocket (uWS broadcast sink)',
  async follower(t) {
    const socket = await t.connect();
    const events: Received[] = [];
    socket.on('*', (frame) => {
      if (!frame.ephemeral)
        events.push({ topic: frame.topic, seq: frame.seq, epoch: frame.epoch, id: frame.id, event: frame.event, content: contentOf(frame.data) });
    });
    return {
      events,
      subscribe: (topic: string, resume?: { since: number; epoch: string }) => socket.subscribe(topic, undefined, resume),
      unsubscribe: async (topic: string) => {
        await socket.unsubscribe(topic);
      },
      close: async () => {
        await socket.close();
      },
    };
  },
};

let memoryIds = 0;
const memorySink: SinkFactory = {
  name: 'in-memory subscriber (taps only)',
  async follower(t) {
    const events: Received[] = [];
    let closed = false;
    const subscriber: Subscriber = {
      id: `memory-${memoryIds++}`,
      get closed() {
        return closed;
      },
      send(event: TopicEvent) {
        if (!event.ephemeral)
          events.push({
            topic: event.topic.slice(event.topic.indexOf('/') + 1),
            seq: event.seq,
            epoch: event.epoch,
            id: event.id,
            event: event.event,
            content: contentOf(event.data),
          });
      },
      resume() {
        closed = true;
      },
    };
    const owner = await principalOf(t);
    const run = async (name: string, input: unknown) => {
      const outcome = await t.gateway.operations.execute(name, input, { principal: owner, requestId: `req_${name}`, transport: 'ws', subscriber });
      if (outcome.failure) throw outcome.failure;
      // The reply "reaches" the subscriber here; what must follow it runs now.
      outcome.afterReply?.run();
      return outcome.data;
    };
    return {
      events,
      subscribe: (topic, resume) => run('topics.subscribe', { topic, ...(resume ?? {}) }) as Promise<SubscribeResult>,
      unsubscribe: async (topic) => {
        await run('topics.unsubscribe', { topic });
      },
      async close() {
        closed = true;
      },
    };
  },
};

async function principalOf(t: TestGateway): Promise<Principal> {
  const resolved = await t.gateway.store.accounts.findKeyByHash((await import('../src/auth/keys.js')).hashApiKey(t.apiKey));
  return { accountId: t.accountId, keyId: resolved!.id, plan: 'enterprise', scopes: ['*'], subject: resolved!.id } as Principal;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

for (const sink of [websocketSink, memorySink]) {
  describe(`delivery: ${sink.name}`, () => {
    let t: TestGateway;
    beforeAll(async () => {
      t = await startTestGateway('pglite', { HISTORY_MAX_EVENTS: '50', EVENT_RECONCILE_MS: '100' });
    });
    afterAll(() => t.stop());

    async function conversation() {
      const agent = await t.rest.call('agents.create', { name: 'Delivery' });
      const conv = await t.rest.call('conversations.create', { agent_id: agent.id });
      return { id: conv.id, topic: `conversation:${conv.id}` };
    }
    const post = (conversationId: string, content: string) => t.rest.call('messages.create', { conversation_id: conversationId, content });

    it('delivers each event once, in seq order, with its id', async () => {
      const { id, topic } = await conversation();
      const follower = await sink.follower(t);
      const result = await follower.subscribe(topic);
      for (let i = 0; i < 10; i++) await post(id, `m${i}`);
      await waitFor(() => follower.events.length === 10, 'ten events');
      expect(follower.events.map((e) => e.content)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
      expect(follower.events.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => result.seq + 1 + i));
      for (const event of follower.events) expect(event.id).toMatch(/^evt_/);
      await follower.close();
    });

    it('resumes after `since` with no gap and no repeat while writes keep arriving', async () => {
      const { id, topic } = await conversation();
      const first = await sink.follower(t);
      await first.subscribe(topic);
      for (let i = 0; i < 3; i++) await post(id, `before ${i}`);
      await waitFor(() => first.events.length === 3, 'three events');
      const last = first.events.at(-1)!;
      await first.close();
      for (let i = 0; i < 5; i++) await post(id, `missed ${i}`);
      const second = await sink.follower(t);
      const writing = (async () => {
        for (let i = 0; i < 20; i++) await post(id, `during ${i}`);
      })();
      const result = await second.subscribe(topic, { since: last.seq, epoch: last.epoch });
      expect(result).toMatchObject({ recovered: true, epoch: last.epoch });
      await writing;
      await waitFor(() => second.events.at(-1)?.content === 'during 19', 'the last write');
      expect(second.events.map((e) => e.seq)).toEqual(second.events.map((_, i) => last.seq + 1 + i));
      expect(second.events.slice(0, 5).map((e) => e.content)).toEqual(Array.from({ length: 5 }, (_, i) => `missed ${i}`));
      await second.close();
    });

    it('says recovered: false for a position of another epoch, and replays nothing', async () => {
      const { id, topic } = await conversation();
      await post(id, 'one');
      const follower = await sink.follower(t);
      const result = await follower.subscribe(topic, { since: 1, epoch: 'not-this-one' });
      // conversation.started is 1, the message 2.
      expect(result).toMatchObject({ recovered: false, replayed: 0, seq: 2 });
      await sleep(50);
      expect(follower.events).toEqual([]);
      await follower.close();
    });

    it('says recovered: false once retention trimmed the events after `since`, and replays nothing', async () => {
      const { id, topic } = await conversation();
      const first = await sink.follower(t);
      await first.subscribe(topic);
      await post(id, 'kept, then trimmed');
      await waitFor(() => first.events.length === 1, 'the first event');
      const last = first.events[0]!;
      await first.close();
      await post(id, 'missed');
      // As the periodic trim does once HISTORY_TTL_SECONDS have passed.
      expect(await t.gateway.store.events.trim(new Date(Date.now() + 60_000))).toBeGreaterThan(0);
      const second = await sink.follower(t);
      const result = await second.subscribe(topic, { since: last.seq, epoch: last.epoch });
      expect(result).toMatchObject({ recovered: false, replayed: 0, seq: last.seq + 1, epoch: last.epoch });
      await sleep(50);
      expect(second.events).toEqual([]);
      await second.close();
    });

    it('stops delivering a topic once unsubscribed, and keeps the others', async () => {
      const a = await conversation();
      const b = await conversation();
      const follower = await sink.follower(t);
      await follower.subscribe(a.topic);
      await follower.subscribe(b.topic);
      await follower.unsubscribe(a.topic);
      await post(a.id, 'not for me');
      await post(b.id, 'for me');
      await waitFor(() => follower.events.length >= 1, 'the event of b');
      await sleep(100);
      expect(follower.events.map((e) => [e.topic, e.content])).toEqual([[b.topic, 'for me']]);
      await follower.close();
    });

    it('delivers, in order, an event committed but never carried by the bus (filled from the log)', async () => {
      const { id, topic } = await conversation();
      const follower = await sink.follower(t);
      await follower.subscribe(topic);
      await post(id, 'carried 1');
      // As if the writing node died between commit and publish: stored, numbered, never announced.
      await t.gateway.store.events.append({
        id: 'evt_lostonthebus0000001',
        topics: [topicKey(t.accountId, topic)],
        event: 'message.created',
        data: {
          message: { id: 'msg_lost', conversation_id: id, role: 'user', content: 'never announced', metadata: {}, created_at: new Date().toISOString() },
        },
      });
      await waitFor(() => follower.events.length === 2, 'the event filled by reconciliation');
      await post(id, 'carried 2');
      await waitFor(() => follower.events.length === 3, 'the next event');
      expect(follower.events.map((e) => e.content)).toEqual(['carried 1', 'never announced', 'carried 2']);
      expect(follower.events.map((e) => e.seq)).toEqual([1, 2, 3].map((n) => follower.events[0]!.seq + n - 1));
      await follower.close();
    });
  });
}
