import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import type { WebhookDeliveryRepo } from '../src/store/repos/webhook-deliveries.js';
import { WebhookWorker } from '../src/webhooks/worker.js';
import { sleep, until } from './helpers/events.js';

/** Far longer than any wait below: a round within it was woken, not polled. */
const POLL_MS = 10_000;

/** A queue with nothing to deliver: counts rounds, and can hold one open until released. */
function emptyQueue() {
  const rounds: number[] = [];
  let hold: Promise<void> | null = null;
  const repo = {
    async materialize() {
      rounds.push(Date.now());
      if (hold) await hold;
      return 0;
    },
    claim: async () => [],
    pendingCount: async () => 0,
  } as unknown as WebhookDeliveryRepo;
  return {
    repo,
    rounds,
    /** The next round waits in `materialize` until the returned function is called. */
    holdNext(): () => void {
      let release!: () => void;
      hold = new Promise<void>((resolve) => (release = resolve));
      return () => {
        hold = null;
        release();
      };
    },
  };
}

describe('webhook worker wake-ups', () => {
  let worker: WebhookWorker | null = null;
  afterEach(async () => {
    await worker?.stop();
    worker = null;
  });

  function start(repo: WebhookDeliveryRepo): WebhookWorker {
    worker = new WebhookWorker(
      repo,
      {
        enabled: true,
        allowPrivate: true,
        concurrency: 4,
        pollMs: POLL_MS,
        timeoutMs: 1000,
        maxResponseBytes: 1024,
        retry: { baseMs: 1000, maxMs: 1000, windowMs: 60_000 },
        disableAfterMs: 60_000,
      },
      createLogger('silent'),
      new Registry(),
    );
    worker.start();
    return worker;
  }

  it('runs a round when account events commit, not for events of other topics only', async () => {
    const queue = emptyQueue();
    const running = start(queue.repo);
    await until(() => queue.rounds.length === 1, 1000, 'the first round');
    await sleep(100);
    running.eventsCommitted([{ topic: 'acct_1/conversation:conv_1' }, { topic: 'acct_1/agent:agt_1' }]);
    await sleep(200);
    expect(queue.rounds).toHaveLength(1);
    running.eventsCommitted([{ topic: 'acct_1/conversation:conv_1' }, { topic: 'acct_1/account' }]);
    await until(() => queue.rounds.length === 2, 500, 'a round woken by the commit');
  });

  it('does not lose a poke that comes during a round: another round follows it', async () => {
    const queue = emptyQueue();
    const running = start(queue.repo);
    await until(() => queue.rounds.length === 1, 1000, 'the first round');
    await sleep(100);
    const release = queue.holdNext();
    running.poke();
    await until(() => queue.rounds.length === 2, 500, 'the poked round');
    // Committed while that round is under way (it may already have read past these events).
    running.poke();
    release();
    await until(() => queue.rounds.length === 3, 500, 'one more round for the poke it missed');
    await sleep(200);
    expect(queue.rounds).toHaveLength(3);
  });

  it('spaces rounds while pokes keep coming', async () => {
    const queue = emptyQueue();
    const running = start(queue.repo);
    await until(() => queue.rounds.length === 1, 1000, 'the first round');
    const until500 = Date.now() + 500;
    while (Date.now() < until500) {
      running.poke();
      await sleep(2);
    }
    // About ten rounds of 50 ms in 500 ms, not one per poke (over a hundred).
    const rounds = queue.rounds.length - 1;
    expect(rounds).toBeGreaterThanOrEqual(3);
    expect(rounds).toBeLessThanOrEqual(12);
    const gaps = queue.rounds.slice(2).map((at, i) => at - queue.rounds[i + 1]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(45);
  });
});
