import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { availableBackends } from './helpers/backends.js';
import { GatewayNodes } from './helpers/nodes.js';
import { until, WebhookReceiver } from './helpers/webhook-receiver.js';

/**
 * Webhooks across processes: a gateway SIGKILLed between the commit and the delivery still
 * delivers after a restart (the delivery is a row, its lease expires), and two nodes on one
 * PostgreSQL share the queue without sending any event twice.
 */
const backends = await availableBackends();

const ENV = {
  WEBHOOKS_ALLOW_PRIVATE: 'true',
  WEBHOOK_POLL_MS: '20',
  WEBHOOK_RETRY_BASE_MS: '20',
  WEBHOOK_RETRY_MAX_MS: '100',
  // Lease = 2 x timeout + 1 s: a dead node's claim is taken over after 5 s.
  WEBHOOK_TIMEOUT_MS: '2000',
};
const ITEMS = [{ sku: 'shoe', quantity: 1, unit_amount: 100 }];

describe('webhooks across processes', () => {
  const dirs: string[] = [];
  const receivers: WebhookReceiver[] = [];
  afterAll(async () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    for (const receiver of receivers) await receiver.stop();
  });

  it.each(backends)(
    'on %s: a SIGKILL between commit and delivery, then a restart, still delivers every event',
    async (backend) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'stategate-wh-kill-'));
      dirs.push(dataDir);
      const env = backend === 'pglite' ? { ...ENV, DATABASE_URL: '', DATA_DIR: dataDir } : ENV;
      const nodes = await GatewayNodes.start({ count: 1, env, readyTimeoutMs: 60_000 });
      const receiver = await WebhookReceiver.start();
      receivers.push(receiver);
      try {
        const rest = nodes.rest(0);
        const hook = await rest.call('webhooks.create', { url: receiver.url, events: ['order.created', 'order.paid'] });
        receiver.secret = hook.secret;
        // The first request is never answered: the node is mid-delivery when it dies.
        receiver.respond = (_request, n) => (n === 0 ? -1 : 200);
        const order = await rest.call('orders.create', { items: ITEMS });
        await until(() => receiver.received.length >= 1, 10_000, 'the first delivery to start');
        // Committed and acknowledged, not yet delivered: the node dies right after.
        await rest.call('orders.update', { order_id: order.id, status: 'paid' });
        await nodes.node(0).kill();

        await nodes.node(0).start(60_000);
        await until(() => receiver.delivered().length === 2, 20_000, 'both events after the restart');
        const delivered = receiver.delivered();
        expect(delivered.map((r) => r.body.type)).toEqual(['order.created', 'order.paid']);
        expect(delivered.every((r) => r.body.data.order.id === order.id)).toBe(true);
        expect(receiver.received.every((r) => r.verified.stateset && r.verified.standard)).toBe(true);
        // The worker records an attempt once the answer has reached it, a moment after the receiver sent it.
        const succeeded = async () =>
          (await nodes.rest(0).call('webhooks.attempts', { webhook_id: hook.id })).data
            .filter((a) => a.succeeded)
            .map((a) => a.event_type)
            .sort();
        await until(async () => (await succeeded()).length >= 2, 5000, 'both successful attempts recorded');
        expect(await succeeded()).toEqual(['order.created', 'order.paid']);
      } finally {
        await nodes.stop();
      }
    },
    180_000,
  );

  it.runIf(backends.includes('postgres'))(
    'two nodes on one PostgreSQL deliver each event exactly once',
    async () => {
      const nodes = await GatewayNodes.start({ count: 2, env: ENV });
      const receiver = await WebhookReceiver.start();
      receivers.push(receiver);
      try {
        const hook = await nodes.rest(0).call('webhooks.create', { url: receiver.url, events: ['*'] });
        receiver.secret = hook.secret;
        // Slow answers keep deliveries in flight, so both nodes' workers are busy at once.
        receiver.respond = () => new Promise((resolve) => setTimeout(() => resolve(200), 20));
        const ids: string[] = [];
        await Promise.all(
          [0, 1].map(async (node) => {
            for (let i = 0; i < 30; i++) ids.push((await nodes.rest(node).call('orders.create', { items: ITEMS, customer_id: `n${node}` })).id);
          }),
        );
        await until(() => receiver.received.length >= 60, 30_000, 'sixty deliveries');
        await new Promise((r) => setTimeout(r, 500));
        expect(receiver.received).toHaveLength(60);
        expect(receiver.received.map((r) => r.body.data.order.id).sort()).toEqual([...ids].sort());
        expect(receiver.received.every((r) => r.verified.stateset && r.verified.standard)).toBe(true);
      } finally {
        await nodes.stop();
      }
    },
    120_000,
  );
});
