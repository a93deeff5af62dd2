import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import type { EventFrame, WebhookEndpointWithSecret } from '../protocol/index.js';
import type { RestClient } from '../clients/index.js';
import { newId } from '../src/kernel/ids.js';
import { prepareDelivery, resourceKey } from '../src/webhooks/payload.js';
import { availableBackends } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { sleep } from './helpers/events.js';
import { until, WebhookReceiver, type Received } from './helpers/webhook-receiver.js';

const backends = await availableBackends();

/** Short schedules so that retries happen within a test. */
const FAST = {
  WEBHOOKS_ALLOW_PRIVATE: 'true',
  WEBHOOK_POLL_MS: '50',
  WEBHOOK_RETRY_BASE_MS: '20',
  WEBHOOK_RETRY_MAX_MS: '100',
  WEBHOOK_TIMEOUT_MS: '1000',
  SESSION_SWEEP_INTERVAL_MS: '100',
};

const ITEMS = [{ sku: 'shoe', quantity: 2, unit_amount: 5000 }];

describe.each(backends)('webhooks on %s', (backend) => {
  let t: TestGateway;
  const receivers: WebhookReceiver[] = [];

  beforeAll(async () => {
    t = await startTestGateway(backend, FAST);
  });
  afterAll(async () => {
    await t.stop();
    for (const receiver of receivers) await receiver.stop();
  });

  async function endpoint(rest: RestClient, events: string[] = ['*']): Promise<{ receiver: WebhookReceiver; hook: WebhookEndpointWithSecret }> {
    const receiver = await WebhookReceiver.start();
    receivers.push(receiver);
    const hook = await rest.call('webhooks.create', { url: receiver.url, events, metadata: { environment: 'test' } });
    receiver.secret = hook.secret;
    return { receiver, hook };
  }

  it('delivers every event of a scripted scenario once, verified by the document’s snippet and standardwebhooks, in order per resource', async () => {
    const account = await t.newAccount();
    const rest = account.rest;
    const socket = await t.connect({ apiKey: account.apiKey });
    const live: EventFrame[] = [];
    await socket.subscribe('account', (frame) => {
      if (!frame.ephemeral) live.push(frame);
    });
    const { receiver, hook } = await endpoint(rest);
    const orders = await endpoint(rest, ['order.created', 'order.shipped']);
    // Every fourth request fails: retries must neither reorder a resource's events nor lose one.
    receiver.respond = (_request, n) => (n % 4 === 3 ? 503 : 200);

    const agent = await rest.call('agents.create', { name: 'Support', capabilities: { can_process_returns: true, can_issue_refunds: true } });
    const conversation = await rest.call('conversations.create', { agent_id: agent.id });
    for (const content of ['hello', 'where is my order?', 'thanks']) await rest.call('messages.create', { conversation_id: conversation.id, content });
    await rest.call('conversations.update', { conversation_id: conversation.id, status: 'escalated' });
    const order = await rest.call('orders.create', { items: ITEMS });
    await rest.call('orders.update', { order_id: order.id, status: 'paid' });
    await rest.call('orders.update', { order_id: order.id, status: 'shipped' });
    const ret = await rest.call('returns.create', { order_id: order.id, items: [{ sku: 'shoe', quantity: 1 }], agent_id: agent.id });
    await rest.call('returns.approve', { return_id: ret.id, agent_id: agent.id });
    await rest.call('returns.complete', { return_id: ret.id, refund_amount: 5000, agent_id: agent.id });
    await rest.call('conversations.update', { conversation_id: conversation.id, status: 'closed' });
    const session = await rest.call('sessions.create', { agent_id: 'support', ttl_seconds: 1 });
    await rest.call('sessions.update_state', { session_id: session.id, state: { step: 1 } });
    await until(() => live.some((e) => e.event === 'session.expired'), 10_000, 'the session to expire');

    await until(() => receiver.delivered().length >= live.length, 20_000, 'every event delivered');
    await new Promise((r) => setTimeout(r, 300));
    const delivered = receiver.delivered();
    // The same ids as on the WebSocket, each delivered (2xx) exactly once.
    expect(delivered.map((r) => r.body.id).sort()).toEqual(live.map((e) => e.id).sort());
    const successes = receiver.received.filter((r) => r.answered === 200).map((r) => r.body.id);
    expect(new Set(successes).size).toBe(successes.length);
    expect(receiver.received.some((r) => r.answered === 503)).toBe(true);
    expect(live.map((e) => e.event)).toEqual([
      'agent.created',
      'conversation.started',
      'message.created',
      'message.created',
      'message.created',
      'conversation.escalated',
      'order.created',
      'order.paid',
      'order.shipped',
      'return.requested',
      'return.approved',
      'return.completed',
      'conversation.closed',
      'session.created',
      'session.updated',
      'session.expired',
    ]);
    for (const request of receiver.received) {
      expect(request.verified).toEqual({ stateset: true, standard: true });
      expect(request.headers['webhook-id']).toBe(request.body.id);
      expect(request.headers['x-stateset-event']).toBe(request.body.type);
      expect(request.body.account_id).toBe(account.accountId);
    }
    // Data is the resource as REST returns it.
    const byId = new Map(live.map((e) => [e.id, e]));
    for (const request of delivered) {
      expect(request.body.data).toEqual(byId.get(request.body.id)!.data);
      expect(request.body.type).toBe(byId.get(request.body.id)!.event);
    }
    // In order per resource: successful deliveries of one resource follow the log's order.
    const seqOf = new Map(live.map((e) => [e.id, e.seq]));
    const groups = new Map<string, number[]>();
    for (const request of delivered) {
      const key = resourceKey(request.body.type, request.body.data);
      groups.set(key, [...(groups.get(key) ?? []), seqOf.get(request.body.id)!]);
    }
    expect(groups.get(`conversation:${conversation.id}`)).toHaveLength(6);
    expect(groups.get(`order:${order.id}`)).toHaveLength(3);
    for (const seqs of groups.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));

    // The filtered endpoint got only its two event types.
    await until(() => orders.receiver.delivered().length >= 2, 5000, 'the filtered endpoint');
    expect(orders.receiver.delivered().map((r) => r.body.type)).toEqual(['order.created', 'order.shipped']);
    expect(hook.events).toEqual(['*']);
  }, 60_000);

  it('retries a receiver that fails five times and records every attempt; the sixth succeeds', async () => {
    const account = await t.newAccount();
    const { receiver, hook } = await endpoint(account.rest, ['order.created']);
    receiver.responseBody = 'x'.repeat(5000);
    receiver.respond = (_request, n) => (n < 5 ? 500 : 200);
    const order = await account.rest.call('orders.create', { items: ITEMS });
    await until(() => receiver.delivered().length === 1, 15_000, 'the sixth attempt');
    expect(receiver.received).toHaveLength(6);
    expect(new Set(receiver.received.map((r) => r.raw)).size).toBe(1);
    const eventId = receiver.received[0]!.body.id;
    expect(receiver.received[0]!.body.data.order.id).toBe(order.id);

    await until(async () => (await account.rest.call('webhooks.attempts', { webhook_id: hook.id })).data.length === 6, 5000, 'six attempts recorded');
    const history = await account.rest.call('webhooks.attempts', { webhook_id: hook.id, event_id: eventId });
    expect(history.data.map((a) => a.attempt)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(history.data.map((a) => a.status_code)).toEqual([200, 500, 500, 500, 500, 500]);
    expect(history.data.map((a) => a.succeeded)).toEqual([true, false, false, false, false, false]);
    for (const attempt of history.data) {
      expect(attempt.response_body).toBe('x'.repeat(1024));
      expect(attempt.latency_ms).toBeGreaterThanOrEqual(0);
      expect(attempt).toMatchObject({ webhook_id: hook.id, event_id: eventId, event_type: 'order.created' });
    }
    // Paged like every list.
    const page = await account.rest.call('webhooks.attempts', { webhook_id: hook.id, limit: 4 });
    const next = await account.rest.call('webhooks.attempts', { webhook_id: hook.id, limit: 4, cursor: page.next_cursor! });
    expect([...page.data, ...next.data].map((a) => a.id)).toEqual(history.data.map((a) => a.id));

    // By hand: the event again, on a fresh schedule.
    const again = await account.rest.call('webhooks.redeliver', { webhook_id: hook.id, event_id: eventId });
    expect(again).toMatchObject({ status: 'pending', event_id: eventId, attempts: 0 });
    await until(() => receiver.received.length === 7, 5000, 'the redelivery');
    expect(receiver.received[6]!.raw).toBe(receiver.received[0]!.raw);
    expect((await failureOf(account.rest.call('webhooks.redeliver', { webhook_id: hook.id, event_id: 'evt_nope' }))).code).toBe('RESOURCE_NOT_FOUND');
  }, 30_000);

  it('records a time-out, and a 410 disables the endpoint with a reason', async () => {
    const account = await t.newAccount();
    const { receiver, hook } = await endpoint(account.rest, ['order.created']);
    receiver.respond = (_request, n) => (n === 0 ? new Promise((r) => setTimeout(() => r(200), 3000)) : 410);
    await account.rest.call('orders.create', { items: ITEMS });
    await until(async () => !(await account.rest.call('webhooks.get', { webhook_id: hook.id })).enabled, 15_000, 'the endpoint to be disabled');
    const disabled = await account.rest.call('webhooks.get', { webhook_id: hook.id });
    expect(disabled.disabled_reason).toMatch(/410/);
    const attempts = (await account.rest.call('webhooks.attempts', { webhook_id: hook.id })).data;
    expect(attempts.map((a) => a.status_code)).toEqual([410, null]);
    expect(attempts[1]!.error).toMatch(/timed out after 1000 ms/);
    // Disabled: later events are not sent.
    await account.rest.call('orders.create', { items: ITEMS });
    await new Promise((r) => setTimeout(r, 400));
    expect(receiver.received).toHaveLength(2);
    // Re-enabled: events from then on.
    receiver.respond = () => 200;
    const enabled = await account.rest.call('webhooks.update', { webhook_id: hook.id, enabled: true });
    expect(enabled).toMatchObject({ enabled: true, disabled_reason: null });
    const third = await account.rest.call('orders.create', { items: ITEMS });
    await until(() => receiver.delivered().some((r) => r.body.data.order.id === third.id), 5000, 'delivery after re-enabling');
  }, 30_000);

  it('sends a signed ping with webhooks.test, and rotates the secret with an overlap', async () => {
    const account = await t.newAccount();
    const { receiver, hook } = await endpoint(account.rest, ['order.created']);
    const ping = await account.rest.call('webhooks.test', { webhook_id: hook.id });
    expect(ping).toMatchObject({ status_code: 200, succeeded: true, event_type: 'webhook.test', attempt: 1 });
    expect(receiver.received[0]!.body).toMatchObject({ type: 'webhook.test', data: { webhook_id: hook.id } });
    expect(receiver.received[0]!.verified).toEqual({ stateset: true, standard: true });

    const rotated = await account.rest.call('webhooks.rotate_secret', { webhook_id: hook.id, overlap_seconds: 3600 });
    expect(rotated.secret).not.toBe(hook.secret);
    expect(rotated.secret_hint).toBe(`…${rotated.secret.slice(-4)}`);
    expect(Date.parse(rotated.previous_secret_expires_at!)).toBeGreaterThan(Date.now() + 3500_000);
    await account.rest.call('webhooks.test', { webhook_id: hook.id });
    const during = receiver.received[1]!;
    // A receiver still on the old secret and one already on the new both verify.
    const headers = {
      'webhook-id': String(during.headers['webhook-id']),
      'webhook-timestamp': String(during.headers['webhook-timestamp']),
      'webhook-signature': String(during.headers['webhook-signature']),
    };
    expect(() => new Webhook(hook.secret).verify(during.raw, headers)).not.toThrow();
    expect(() => new Webhook(rotated.secret).verify(during.raw, headers)).not.toThrow();
    expect(during.headers['x-stateset-signature']).toBe(createHmac('sha256', rotated.secret).update(during.raw).digest('hex'));
    expect(during.headers['x-stateset-signature-previous']).toBe(createHmac('sha256', hook.secret).update(during.raw).digest('hex'));

    // Without overlap the old secret stops at once.
    await account.rest.call('webhooks.rotate_secret', { webhook_id: hook.id, overlap_seconds: 0 });
    await account.rest.call('webhooks.test', { webhook_id: hook.id });
    const after = receiver.received[2]!;
    const afterHeaders = {
      'webhook-id': String(after.headers['webhook-id']),
      'webhook-timestamp': String(after.headers['webhook-timestamp']),
      'webhook-signature': String(after.headers['webhook-signature']),
    };
    expect(() => new Webhook(rotated.secret).verify(after.raw, afterHeaders)).toThrow();
    expect(after.headers['x-stateset-signature-previous']).toBeUndefined();
  });

  it('manages endpoints: secret shown once, list, update, delete, tenant isolation and bad input', async () => {
    const account = await t.newAccount();
    const created = await account.rest.call('webhooks.create', {
      url: 'https://example.com/hooks',
      events: ['order.created', 'order.created', 'return.requested'],
    });
    expect(created).toMatchObject({ url: 'https://example.com/hooks', events: ['order.created', 'return.requested'], enabled: true, metadata: {} });
    expect(created.secret).toMatch(/^whsec_/);
    const got = await account.rest.call('webhooks.get', { webhook_id: created.id });
    expect(got).not.toHaveProperty('secret');
    expect(JSON.stringify(await account.rest.call('webhooks.list', {}))).not.toContain(created.secret);
    const updated = await account.rest.call('webhooks.update', { webhook_id: created.id, events: ['*'], metadata: { env: 'prod' }, enabled: false });
    expect(updated).toMatchObject({ events: ['*'], metadata: { env: 'prod' }, enabled: false, disabled_reason: null });

    const other = await t.newAccount();
    expect((await failureOf(other.rest.call('webhooks.get', { webhook_id: created.id }))).type).toBe('webhook_not_found');
    expect((await failureOf(other.rest.call('webhooks.attempts', { webhook_id: created.id }))).code).toBe('RESOURCE_NOT_FOUND');
    expect((await failureOf(other.rest.call('webhooks.delete', { webhook_id: created.id }))).code).toBe('RESOURCE_NOT_FOUND');
    expect((await other.rest.call('webhooks.list', {})).data).toEqual([]);

    const bad: [unknown, string][] = [
      [{ url: 'ftp://example.com/x', events: ['*'] }, 'url'],
      [{ url: 'not a url', events: ['*'] }, 'url'],
      [{ url: `https://example.com/${'a'.repeat(2100)}`, events: ['*'] }, 'url'],
      [{ url: 'https://example.com/x', events: ['order.exploded'] }, 'events.0'],
      [{ url: 'https://example.com/x', events: ['typing'] }, 'events.0'],
      [{ url: 'https://example.com/x', events: [] }, 'events'],
    ];
    for (const [input, path] of bad) {
      const failure = await failureOf(account.rest.call('webhooks.create', input as never));
      expect(failure.code).toBe('VALIDATION_ERROR');
      expect((failure.details as { issues: { path: string }[] }).issues[0]!.path).toBe(path);
    }
    expect((await failureOf(account.rest.call('webhooks.create', { url: 'https://user:pw@example.com/x', events: ['*'] }))).message).toMatch(/credentials/);
    expect((await account.rest.call('webhooks.list', {})).data).toHaveLength(1);

    expect(await account.rest.call('webhooks.delete', { webhook_id: created.id })).toEqual({ id: created.id, deleted: true });
    expect((await failureOf(account.rest.call('webhooks.get', { webhook_id: created.id }))).code).toBe('RESOURCE_NOT_FOUND');
    const reader = await t.newAccount({ scopes: ['webhooks:read'] });
    expect((await failureOf(reader.rest.call('webhooks.create', { url: 'https://example.com', events: ['*'] }))).details).toEqual({
      required: 'webhooks:write',
    });
  });
});

describe('event log retention with webhook endpoints', () => {
  let t: TestGateway;
  beforeAll(async () => {
    // No worker: events stay owed until this test materializes them by hand.
    t = await startTestGateway('pglite', { WEBHOOKS_ENABLED: 'false', WEBHOOKS_ALLOW_PRIVATE: 'true' });
  });
  afterAll(() => t.stop());

  it('keeps account events an enabled endpoint still owes when the log is trimmed, and trims them once delivered or not owed', async () => {
    const hook = await t.rest.call('webhooks.create', { url: 'http://127.0.0.1:9/x', events: ['*'] });
    const agent = await t.rest.call('agents.create', { name: 'A' });
    const accountTopic = `${t.accountId}/account`;
    const agentTopic = `${t.accountId}/agent:${agent.id}`;
    const count = async (key: string) => (await t.gateway.store.events.recent(key, 100)).length;
    expect(await count(accountTopic)).toBe(1);
    await t.gateway.store.events.trim(new Date(Date.now() + 60_000));
    expect(await count(agentTopic)).toBe(0);
    expect(await count(accountTopic)).toBe(1);
    // Materialized: the delivery carries its own body, the log may let go.
    expect(await t.gateway.store.webhookDeliveries.materialize(prepareDelivery, () => newId('webhookDelivery'))).toBe(1);
    expect(await t.gateway.store.webhookDeliveries.pendingCount()).toBe(1);
    await t.gateway.store.events.trim(new Date(Date.now() + 60_000));
    expect(await count(accountTopic)).toBe(0);
    // A disabled endpoint is owed nothing.
    await t.rest.call('webhooks.update', { webhook_id: hook.id, enabled: false });
    await t.rest.call('agents.create', { name: 'B' });
    await t.gateway.store.events.trim(new Date(Date.now() + 60_000));
    expect(await count(accountTopic)).toBe(0);
  });
});

describe('webhook URLs on private addresses', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway('pglite', { WEBHOOK_POLL_MS: '50' });
  });
  afterAll(() => t.stop());

  it('refuses loopback, private, link-local and mapped addresses unless WEBHOOKS_ALLOW_PRIVATE is set', async () => {
    for (const url of [
      'http://127.0.0.1:8080/x',
      'http://localhost/x',
      'http://10.1.2.3/x',
      'http://192.168.0.10/x',
      'http://172.16.5.5/x',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://[fe80::1]/x',
      'http://0.0.0.0/x',
    ]) {
      const failure = await failureOf(t.rest.call('webhooks.create', { url, events: ['*'] }));
      expect(failure.code, url).toBe('VALIDATION_ERROR');
      expect(failure.message, url).toMatch(/private, loopback or link-local/);
    }
    expect((await t.rest.call('webhooks.list', {})).data).toEqual([]);
  });

  it('refuses at delivery time too: an attempt to a blocked address is recorded as an error', async () => {
    const receiver = await WebhookReceiver.start();
    try {
      // Saved directly (as if DNS had answered a public address then), delivered to loopback.
      const hook = await t.gateway.store.webhooks.create(
        t.accountId,
        newId('webhook'),
        { url: receiver.url, events: ['order.created'], enabled: true },
        'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdA==',
      );
      await t.rest.call('orders.create', { items: ITEMS });
      await until(async () => (await t.rest.call('webhooks.attempts', { webhook_id: hook.id })).data.length > 0, 5000, 'an attempt');
      const [attempt] = (await t.rest.call('webhooks.attempts', { webhook_id: hook.id })).data;
      expect(attempt).toMatchObject({ status_code: null, succeeded: false });
      expect(attempt!.error).toMatch(/private, loopback or link-local/);
      expect(receiver.received).toEqual([] as Received[]);
    } finally {
      await receiver.stop();
    }
  });
});

describe.each(backends)('webhooks woken by a commit on %s', (backend) => {
  /** Far longer than any wait below: a delivery within it was woken by the commit, not the poll. */
  const POLL_MS = 10_000;
  const WITHIN_MS = 2000;
  let t: TestGateway;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    t = await startTestGateway(backend, { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_MS: String(POLL_MS) });
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await t.stop();
    await receiver.stop();
  });

  async function deliveredWithin(type: string, count: number, since: number): Promise<number> {
    await until(() => receiver.delivered().filter((r) => r.body.type === type).length >= count, WITHIN_MS, `${type} delivered within ${WITHIN_MS} ms`);
    return Date.now() - since;
  }

  it('delivers a new message, a streamed message and an order well before the next poll', async () => {
    const hook = await t.rest.call('webhooks.create', { url: receiver.url, events: ['message.created', 'order.created'] });
    receiver.secret = hook.secret;
    const agent = await t.rest.call('agents.create', { name: 'Support' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    // The worker's first round has run at start: it now sleeps for the whole poll interval.
    await sleep(200);

    let since = Date.now();
    const message = await t.rest.call('messages.create', { conversation_id: conversation.id, content: 'hello' });
    expect(await deliveredWithin('message.created', 1, since)).toBeLessThan(WITHIN_MS);
    expect(receiver.delivered().at(-1)!.body.data.message.id).toBe(message.id);

    // A streamed reply is stored through the same commit as a message.
    const socket = await t.connect();
    const started = await socket.call('streams.start', { conversation_id: conversation.id });
    await socket.call('streams.append', { stream_id: started.stream_id, delta: 'streamed' });
    since = Date.now();
    const streamed = await socket.call('streams.end', { stream_id: started.stream_id });
    expect(await deliveredWithin('message.created', 2, since)).toBeLessThan(WITHIN_MS);
    expect(receiver.delivered().at(-1)!.body.data.message.id).toBe(streamed.id);

    // Any other write's events commit through the same path.
    since = Date.now();
    const order = await t.rest.call('orders.create', { items: ITEMS });
    expect(await deliveredWithin('order.created', 1, since)).toBeLessThan(WITHIN_MS);
    expect(receiver.delivered().at(-1)!.body.data.order.id).toBe(order.id);
    expect(receiver.received.every((r) => r.verified.standard)).toBe(true);
  }, 30_000);
});
