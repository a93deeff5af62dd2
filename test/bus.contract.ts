import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusEvent } from '../src/bus/index.js';

/**
 * The behaviour every bus backend must have: a carrier of events already numbered by the event
 * log. Each backend's test file calls this with a factory that opens a fresh bus (and a second one
 * on the same backend, standing for another node).
 */
export interface BusFactory {
  name: string;
  /** A new bus; buses from one factory share their backend (two nodes of one cluster). */
  open(): Promise<Bus>;
  /** Whether two buses from open() see each other's events (false for the in-process bus). */
  shared: boolean;
}

let counter = 0;
const uniqueTopic = (label: string) => `acct_test/${label}:${process.pid}-${Date.now()}-${counter++}`;

function event(topic: string, seq: number, data: unknown = { seq }, extra: Partial<BusEvent> = {}): BusEvent {
  return { topic, seq, epoch: 'ep1', id: seq ? `evt_${seq}` : '', event: 'message.created', data, ts: new Date().toISOString(), ...extra };
}

function collector() {
  const events: BusEvent[] = [];
  return {
    events,
    listener: (received: BusEvent) => events.push(received),
    async waitFor(count: number, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return events;
    },
  };
}

export function busContract(factory: BusFactory): void {
  describe(`bus contract: ${factory.name}`, () => {
    const opened: Bus[] = [];
    const open = async () => {
      const bus = await factory.open();
      opened.push(bus);
      return bus;
    };
    beforeEach(() => {
      opened.length = 0;
    });
    afterEach(async () => {
      await Promise.all(opened.map((bus) => bus.close()));
    });

    it('delivers every field of each event, in publish order', async () => {
      const bus = await open();
      const topic = uniqueTopic('order');
      const got = collector();
      await bus.subscribe(topic, got.listener);
      const published = Array.from({ length: 20 }, (_, i) => event(topic, i + 1, { i, text: 'héllo ✓', nested: { list: [1, 'two', null] } }));
      await bus.publish(published.slice(0, 5));
      for (const one of published.slice(5)) await bus.publish([one]);
      expect(await got.waitFor(20)).toEqual(published);
    });

    it('keeps topics apart', async () => {
      const bus = await open();
      const [a, b] = [uniqueTopic('a'), uniqueTopic('b')];
      const gotA = collector();
      const gotB = collector();
      await bus.subscribe(a, gotA.listener);
      await bus.subscribe(b, gotB.listener);
      await bus.publish([event(a, 1), event(b, 1), event(a, 2)]);
      expect((await gotA.waitFor(2)).map((e) => e.seq)).toEqual([1, 2]);
      expect((await gotB.waitFor(1)).map((e) => [e.topic, e.seq])).toEqual([[b, 1]]);
      await new Promise((r) => setTimeout(r, 50));
      expect(gotA.events).toHaveLength(2);
    });

    it('marks ephemeral signals (seq 0) as such', async () => {
      const bus = await open();
      const topic = uniqueTopic('signal');
      const got = collector();
      await bus.subscribe(topic, got.listener);
      await bus.publish([event(topic, 0, { typing: true }, { event: 'typing', ephemeral: true, epoch: '' })]);
      expect(await got.waitFor(1)).toEqual([expect.objectContaining({ seq: 0, ephemeral: true, event: 'typing', data: { typing: true } })]);
    });

    it('stops delivering to a listener once it unsubscribes, and keeps the others', async () => {
      const bus = await open();
      const topic = uniqueTopic('unsub');
      const first = collector();
      const second = collector();
      const stop = await bus.subscribe(topic, first.listener);
      await bus.subscribe(topic, second.listener);
      await bus.publish([event(topic, 1)]);
      await first.waitFor(1);
      stop();
      await bus.publish([event(topic, 2)]);
      expect((await second.waitFor(2)).map((e) => e.seq)).toEqual([1, 2]);
      await new Promise((r) => setTimeout(r, 50));
      expect(first.events.map((e) => e.seq)).toEqual([1]);
    });

    it.runIf(factory.shared)("delivers one node's events to every other node, once each", async () => {
      const [one, two] = [await open(), await open()];
      const topic = uniqueTopic('shared');
      const onOne = collector();
      const onTwo = collector();
      await one.subscribe(topic, onOne.listener);
      await two.subscribe(topic, onTwo.listener);
      await one.publish([event(topic, 1)]);
      await two.publish([event(topic, 2)]);
      expect((await onOne.waitFor(2)).map((e) => e.seq).sort()).toEqual([1, 2]);
      expect((await onTwo.waitFor(2)).map((e) => e.seq).sort()).toEqual([1, 2]);
      await new Promise((r) => setTimeout(r, 50));
      expect(onOne.events).toHaveLength(2);
      expect(onTwo.events).toHaveLength(2);
    });

    it('says it is healthy, and refuses to publish once closed', async () => {
      const bus = await open();
      expect(bus.health().ok).toBe(true);
      await bus.close();
      if (bus.kind === 'redis') await expect(bus.publish([event(uniqueTopic('closed'), 1)])).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    });
  });
}
