import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../protocol/index.js';
import { ResilientClient, type WebSocketConstructor } from '../clients/index.js';
import { sleep } from './helpers/events.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * Random interleavings of publishing, dropping connections and resuming: whatever happens, every
 * subscriber's received sequence must equal the published sequence: nothing lost, nothing twice,
 * nothing out of order.
 */
type Command = { kind: 'publish'; count: number } | { kind: 'drop'; subscriber: number } | { kind: 'pause'; ms: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('publish' as const), count: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), subscriber: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: 40 }) }) },
);

describe('delivery under random disconnects (property)', () => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
  });
  afterAll(() => t.stop());

  it('gives every subscriber exactly the published sequence', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 3, maxLength: 14 }), async (commands) => {
        const agent = await t.rest.call('agents.create', { name: 'Prop' });
        const conv = await t.rest.call('conversations.create', { agent_id: agent.id });
        const topic = `conversation:${conv.id}`;
        const received: EventFrame[][] = [[], [], []];
        const clients = await Promise.all(
          received.map(async (events) => {
            const client = await ResilientClient.connect({
              url: t.gateway.wsUrl,
              apiKey: t.apiKey,
              WebSocket: WebSocket as unknown as WebSocketConstructor,
              backoff: { initialMs: 5, maxMs: 50 },
            });
            await client.subscribe(topic, { onEvent: (event) => events.push(event), onReset: () => events.push({ reset: true } as never) });
            return client;
          }),
        );
        const published: string[] = [];
        const writes: Promise<unknown>[] = [];
        for (const step of commands) {
          if (step.kind === 'publish') {
            for (let i = 0; i < step.count; i++) {
              const content = `m${published.length}`;
              published.push(content);
              // Sequential per conversation, so publish order is the order we record.
              writes.push(t.rest.call('messages.create', { conversation_id: conv.id, content }));
              await writes.at(-1);
            }
          } else if (step.kind === 'drop') {
            clients[step.subscriber]!.drop();
          } else {
            await sleep(step.ms);
          }
        }
        await Promise.all(writes);
        const deadline = Date.now() + 10_000;
        while (received.some((events) => events.filter((e) => e.event === 'message.created').length < published.length) && Date.now() < deadline) {
          await sleep(20);
        }
        await sleep(50); // anything extra (a duplicate) would have arrived by now
        for (const events of received) {
          expect(events.some((e) => (e as { reset?: boolean }).reset)).toBe(false);
          const created = events.filter((e) => e.event === 'message.created');
          expect(created.map((e) => (e.data as { message: { content: string } }).message.content)).toEqual(published);
          const seqs = created.map((e) => e.seq);
          expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
        }
        await Promise.all(clients.map((client) => client.close()));
      }),
      { numRuns: 12 },
    );
  }, 120_000);
});
