import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusEvent } from '../src/bus/index.js';

/**
 * The behaviour every bus backend must have. Each backend's test file calls this with a factory
 * that opens a fresh bus (and a second one on the same backend, standing for another node).
 */
export interface BusFactory {
  name: string;
  /** A new bus; buses from one factory share their backend (two nodes of one cluster). */
  open(limits: { maxEvents: number; ttlMs: number }): Promise<Bus>;
  /** Whether two buses from open() see each other's events (false for the in-process bus). */
  shared: boolean;
}

let counter = 0;
const uniqueTopic = (label: string) => `acct_test/${label}:${process.pid}-${Date.now()}-${counter++}`;

function collector() {
  const events: BusEvent[] = [];
  return {
    events,
    listener: (event: BusEvent) => events.push(event),
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
    const open = async (limits = { maxEvents: 100, ttlMs: 60_000 }) => {
      const bus = await factory.open(limits);
      opened.push(bus);
      return bus;
    };
    beforeEach(() => {
      opened.length = 0;
    });
    afterEach(async () => {
      await Promise.all(opened.map((bus) => bus.close()));
    });

    it('numbers events 1, 2, 3 per topic, with one epoch, and delivers them in order', async () => {
      const bus = await open();
      const topic = uniqueTopic('order');
      const got = collector();
      await bus.subscribe(topic, got.listener);
      const published = [];
      for (let i = 0; i < 20; i++) published.push(await bus.publish(topic, 'message.created', { i }));
      expect(published.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const received = await got.waitFor(20);
      expect(received.map((e) => [e.seq, (e.data as { i: number }).i])).toEqual(published.map((e, i) => [e.seq, i]));
      expect(new Set(received.map((e) => e.epoch)).size).toBe(1);
      expect(await bus.position(topic)).toEqual({ seq: 20, epoch: published[0]!.epoch });
    });

    it('keeps topics apart', async () => {
      const bus = await open();
      const a = uniqueTopic('a');
      const b = uniqueTopic('b');
      const got = collector();
      await bus.subscribe(a, got.listener);
      await bus.publish(b, 'x', {});
      const first = await bus.publish(a, 'y', {});
      await got.waitFor(1);
      expect(got.events.map((e) => e.event)).toEqual(['y']);
      expect(first.seq).toBe(1);
    });

    it('numbers concurrent publishes without gaps or repeats', async () => {
      const bus = await open();
      const topic = uniqueTopic('concurrent');
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.publish(topic, 'e', { i })));
      expect(results.map((e) => e.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    });

    it('replays exactly the events after `since` from the history window', async () => {
      const bus = await open();
      const topic = uniqueTopic('history');
      const published = [];
      for (let i = 0; i < 10; i++) published.push(await bus.publish(topic, 'e', { i }));
      const epoch = published[0]!.epoch;
      const result = await bus.history(topic, 6, epoch);
      expect(result.recovered).toBe(true);
      expect(result.events.map((e) => e.seq)).toEqual([7, 8, 9, 10]);
      expect(result.events.map((e) => e.data)).toEqual([{ i: 6 }, { i: 7 }, { i: 8 }, { i: 9 }]);
      expect(result.position).toEqual({ seq: 10, epoch });
      expect(await bus.history(topic, 10, epoch)).toMatchObject({ recovered: true, events: [] });
      expect(await bus.history(topic, 0, epoch)).toMatchObject({ recovered: true });
      expect((await bus.history(topic, 0, epoch)).events).toHaveLength(10);
    });

    it('refuses, never partly replays, a resume the window no longer covers', async () => {
      const bus = await open({ maxEvents: 5, ttlMs: 60_000 });
      const topic = uniqueTopic('window');
      let epoch = '';
      for (let i = 0; i < 12; i++) epoch = (await bus.publish(topic, 'e', { i })).epoch;
      expect(await bus.history(topic, 2, epoch)).toMatchObject({ recovered: false, events: [], position: { seq: 12, epoch } });
      const covered = await bus.history(topic, 7, epoch);
      expect(covered.recovered).toBe(true);
      expect(covered.events.map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
    });

    it('refuses a resume from another epoch or from the future', async () => {
      const bus = await open();
      const topic = uniqueTopic('epoch');
      const { epoch } = await bus.publish(topic, 'e', {});
      expect(await bus.history(topic, 0, `${epoch}x`)).toMatchObject({ recovered: false, events: [] });
      expect(await bus.history(topic, 5, epoch)).toMatchObject({ recovered: false, events: [] });
    });

    it('lists the numbered events still in the window, oldest first', async () => {
      const bus = await open({ maxEvents: 5, ttlMs: 60_000 });
      const topic = uniqueTopic('recent');
      expect(await bus.recent(topic)).toEqual([]);
      for (let i = 0; i < 8; i++) await bus.publish(topic, 'e', { i });
      await bus.publish(topic, 'typing', {}, { ephemeral: true });
      const recent = await bus.recent(topic);
      // The window keeps at least the last 5 (a trimmed Redis stream may keep a few more).
      expect(recent.length).toBeGreaterThanOrEqual(5);
      expect(recent.map((e) => e.seq)).toEqual(recent.map((_, i) => 9 - recent.length + i));
      expect(recent.at(-1)!.data).toEqual({ i: 7 });
    });

    it('expires history by age', async () => {
      const bus = await open({ maxEvents: 100, ttlMs: 1000 });
      const topic = uniqueTopic('ttl');
      const { epoch } = await bus.publish(topic, 'e', {});
      await new Promise((r) => setTimeout(r, 1300));
      await bus.publish(topic, 'e', {});
      expect(await bus.history(topic, 0, epoch)).toMatchObject({ recovered: false });
      expect((await bus.history(topic, 1, epoch)).events.map((e) => e.seq)).toEqual([2]);
    });

    it('delivers ephemeral events live only, without a seq or a place in history', async () => {
      const bus = await open();
      const topic = uniqueTopic('ephemeral');
      const got = collector();
      await bus.subscribe(topic, got.listener);
      await bus.publish(topic, 'e', { n: 1 });
      const typing = await bus.publish(topic, 'typing', { who: 'u1' }, { ephemeral: true });
      await bus.publish(topic, 'e', { n: 2 });
      expect(typing).toMatchObject({ seq: 0, ephemeral: true });
      await got.waitFor(3);
      expect(got.events.map((e) => [e.event, e.seq])).toEqual([['e', 1], ['typing', 0], ['e', 2]]);
      const { epoch } = await bus.position(topic);
      expect((await bus.history(topic, 0, epoch)).events.map((e) => e.seq)).toEqual([1, 2]);
    });

    it('stops delivering to a listener once it unsubscribes', async () => {
      const bus = await open();
      const topic = uniqueTopic('unsub');
      const got = collector();
      const stop = await bus.subscribe(topic, got.listener);
      await bus.publish(topic, 'e', { n: 1 });
      await got.waitFor(1);
      stop();
      await bus.publish(topic, 'e', { n: 2 });
      await new Promise((r) => setTimeout(r, 100));
      expect(got.events).toHaveLength(1);
    });

    it.runIf(factory.shared)('gives two nodes the same numbers, in the same order, once each', async () => {
      const nodeA = await open();
      const nodeB = await open();
      const topic = uniqueTopic('nodes');
      const onA = collector();
      const onB = collector();
      await nodeA.subscribe(topic, onA.listener);
      await nodeB.subscribe(topic, onB.listener);
      await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? nodeA : nodeB).publish(topic, 'e', { i })));
      const a = await onA.waitFor(30);
      const b = await onB.waitFor(30);
      expect(a.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(b.map((e) => [e.seq, e.data])).toEqual(a.map((e) => [e.seq, e.data]));
      await new Promise((r) => setTimeout(r, 100));
      expect(onA.events).toHaveLength(30);
      expect(await nodeB.history(topic, 25, a[0]!.epoch)).toMatchObject({ recovered: true });
    });
  });
}
