import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventFrame, SubscribeResult } from '../protocol/index.js';
import type { GatewaySocket } from '../clients/index.js';
import { availableBackends } from './helpers/backends.js';
import { GatewayNodes } from './helpers/nodes.js';
import { redisAvailable, REDIS_URL } from './helpers/redis.js';
import { until } from './helpers/events.js';

/**
 * Crash between commit and publish: the gateway is SIGKILLed while writes stream in, so some
 * writes are committed with their events and never announced by the dead process. After a
 * restart on the same data, a subscriber that resumes from its last position must get every
 * acknowledged write's event exactly once, in order, with no gap; and on PostgreSQL with Redis a
 * subscriber on a surviving node gets them without even reconnecting (the nodes fill from the log).
 */
const backends = await availableBackends();
const withRedis = backends.includes('postgres') && (await redisAvailable('the durable events suite'));

const messageId = (frame: EventFrame) => (frame.data as { message: { id: string } }).message.id;

/** Follows a topic, keeping numbered events only (presence signals come and go). */
async function follow(
  socket: GatewaySocket,
  topic: string,
  resume?: { since: number; epoch: string },
): Promise<{ events: EventFrame[]; result: SubscribeResult }> {
  const events: EventFrame[] = [];
  const result = await socket.subscribe(
    topic,
    (frame) => {
      if (!frame.ephemeral) events.push(frame);
    },
    resume,
  );
  return { events, result };
}

/** Writes over REST until stopped; collects what was acknowledged. */
function writeUntilStopped(nodes: GatewayNodes, node: number, conversationId: string) {
  const acknowledged: string[] = [];
  let writing = true;
  const done = Promise.all(
    Array.from({ length: 4 }, async (_, writer) => {
      const rest = nodes.rest(node);
      for (let n = 0; writing; n++) {
        try {
          acknowledged.push((await rest.call('messages.create', { conversation_id: conversationId, content: `w${writer}-${n}` })).id);
        } catch {
          // The node died under this request: not acknowledged, so it may or may not be stored.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  return {
    acknowledged,
    stop: async () => {
      writing = false;
      await done;
    },
  };
}

/** Every acknowledged id exactly once among the events, seqs gap-free and in one epoch. */
function expectExactlyOnce(events: EventFrame[], acknowledged: string[]): void {
  const ids = events.map(messageId);
  expect(new Set(ids).size).toBe(ids.length);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => events[0]!.seq + i));
  expect(new Set(events.map((e) => e.epoch)).size).toBe(1);
  const seen = new Set(ids);
  expect(acknowledged.filter((id) => !seen.has(id))).toEqual([]);
}

describe('durable events across a SIGKILL', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('on PGlite: a subscriber resuming after the restart gets every acknowledged event once, in order', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'stategate-kill-'));
    dirs.push(dataDir);
    const nodes = await GatewayNodes.start({ count: 1, env: { DATABASE_URL: '', DATA_DIR: dataDir }, readyTimeoutMs: 60_000 });
    try {
      const rest = nodes.rest(0);
      const agent = await rest.call('agents.create', { name: 'Crash agent' });
      const conversation = await rest.call('conversations.create', { agent_id: agent.id });
      const topic = `conversation:${conversation.id}`;
      const before = await follow(await nodes.connect(0), topic);
      const writes = writeUntilStopped(nodes, 0, conversation.id);
      await until(() => before.events.length >= 20, 20_000, 'events before the kill');
      await nodes.node(0).kill();
      await writes.stop();
      const last = before.events.at(-1)!;

      await nodes.node(0).start(60_000);
      const after = await follow(await nodes.connect(0), topic, { since: last.seq, epoch: last.epoch });
      expect(after.result).toMatchObject({ recovered: true, epoch: last.epoch });
      await until(() => after.events.length === after.result.replayed, 10_000, 'the replay');
      expectExactlyOnce([...before.events, ...after.events], writes.acknowledged);
    } finally {
      await nodes.stop();
    }
  }, 180_000);

  it.runIf(withRedis)(
    'on PostgreSQL with Redis: a surviving node delivers the dead node’s committed events, and a resume after restart agrees',
    async () => {
      const nodes = await GatewayNodes.start({ count: 2, redisUrl: REDIS_URL, env: { EVENT_RECONCILE_MS: '200' } });
      try {
        const rest = nodes.rest(1);
        const agent = await rest.call('agents.create', { name: 'Crash agent' });
        const conversation = await rest.call('conversations.create', { agent_id: agent.id });
        const topic = `conversation:${conversation.id}`;
        const survivor = await follow(await nodes.connect(1), topic);
        const writes = writeUntilStopped(nodes, 0, conversation.id);
        await until(() => survivor.events.length >= 20, 20_000, 'events before the kill');
        const resumeFrom = survivor.events.at(-1)!;
        await nodes.node(0).kill();
        await writes.stop();
        // The survivor never reconnected: what the dead node committed but never published comes from the log.
        const committed = await rest.call('conversations.get', { conversation_id: conversation.id });
        await until(() => survivor.events.length === committed.message_count, 10_000, 'every committed event on the surviving node');
        expectExactlyOnce(survivor.events, writes.acknowledged);

        await nodes.node(0).start(30_000);
        const resumed = await follow(await nodes.connect(0), topic, { since: resumeFrom.seq, epoch: resumeFrom.epoch });
        expect(resumed.result).toMatchObject({ recovered: true });
        await until(() => resumed.events.length === resumed.result.replayed, 10_000, 'the replay');
        expect(resumed.events).toEqual(survivor.events.filter((e) => e.seq > resumeFrom.seq));
      } finally {
        await nodes.stop();
      }
    },
    120_000,
  );
});
