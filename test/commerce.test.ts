import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame, Order } from '../protocol/index.js';
import type { RestClient } from '../clients/index.js';
import { availableBackends } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { until } from './helpers/events.js';

const backends = await availableBackends();

const ITEMS = [
  { sku: 'shoe-42', name: 'Trail shoe', quantity: 2, unit_amount: 4500 },
  { sku: 'sock-m', quantity: 3, unit_amount: 500 },
];

describe.each(backends)('orders and returns on %s', (backend) => {
  let t: TestGateway;
  let rest: RestClient;

  beforeAll(async () => {
    t = await startTestGateway(backend);
    rest = (await t.newAccount()).rest;
  });
  afterAll(() => t.stop());

  async function shippedOrder(client = rest): Promise<Order> {
    const order = await client.call('orders.create', { items: ITEMS, customer_id: 'cus_1' });
    await client.call('orders.update', { order_id: order.id, status: 'paid' });
    return client.call('orders.update', { order_id: order.id, status: 'shipped', tracking_number: '1Z999' });
  }

  it('runs an order through its lifecycle, announcing each step on the account topic, over REST and WebSocket alike', async () => {
    const account = await t.newAccount();
    const socket = await t.connect({ apiKey: account.apiKey });
    const events: EventFrame[] = [];
    await socket.subscribe('account', (frame) => events.push(frame));

    const order = await socket.call('orders.create', { items: ITEMS, currency: 'EUR', metadata: { channel: 'web' } });
    expect(order).toMatchObject({ status: 'created', currency: 'eur', total_amount: 2 * 4500 + 3 * 500, refunded_amount: 0, customer_id: null });
    expect(order.items[1]).toEqual({ sku: 'sock-m', name: null, quantity: 3, unit_amount: 500 });
    expect(await account.rest.call('orders.get', { order_id: order.id })).toEqual(order);

    for (const status of ['paid', 'shipped', 'delivered'] as const) {
      const moved = await account.rest.call('orders.update', { order_id: order.id, status });
      expect(moved.status).toBe(status);
    }
    // The state it is already in changes nothing and announces nothing.
    expect((await account.rest.call('orders.update', { order_id: order.id, status: 'delivered' })).status).toBe('delivered');
    await account.rest.call('orders.update', { order_id: order.id, tracking_number: 'T-1' });

    await until(() => events.length >= 5, 5000, 'the order events');
    expect(events.map((e) => e.event)).toEqual(['order.created', 'order.paid', 'order.shipped', 'order.delivered', 'order.updated']);
    expect(events.map((e) => (e.data as { order: Order }).order.status)).toEqual(['created', 'paid', 'shipped', 'delivered', 'delivered']);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5].map((n) => events[0]!.seq + n - 1));
  });

  it('refuses impossible transitions with CONFLICT naming the allowed ones, and changes nothing', async () => {
    const order = await rest.call('orders.create', { items: ITEMS });
    const skip = await failureOf(rest.call('orders.update', { order_id: order.id, status: 'delivered' }));
    expect(skip).toMatchObject({
      code: 'CONFLICT',
      status: 409,
      details: { status: 'created', requested_status: 'delivered', allowed: ['paid', 'cancelled'] },
    });
    const shipped = await shippedOrder();
    const late = await failureOf(rest.call('orders.update', { order_id: shipped.id, status: 'cancelled', metadata: { a: 1 } }));
    expect(late).toMatchObject({ code: 'CONFLICT', details: { allowed: ['delivered'] } });
    expect(await rest.call('orders.get', { order_id: shipped.id })).toEqual(shipped);
    const cancelled = await rest.call('orders.update', { order_id: order.id, status: 'cancelled' });
    const final = await failureOf(rest.call('orders.update', { order_id: cancelled.id, status: 'paid' }));
    expect(final.message).toMatch(/cancelled is final/);
  });

  it('validates order input', async () => {
    const cases: [unknown, string][] = [
      [{ items: [] }, 'items'],
      [{ items: [{ sku: 'a', quantity: 0, unit_amount: 1 }] }, 'items.0.quantity'],
      [{ items: [{ sku: 'a', quantity: 1, unit_amount: -1 }] }, 'items.0.unit_amount'],
      [{ items: [{ sku: 'a', quantity: 1, unit_amount: 1.5 }] }, 'items.0.unit_amount'],
      [{ items: ITEMS, currency: 'euro' }, 'currency'],
      [{ items: [ITEMS[0], ITEMS[0]] }, 'items'],
    ];
    for (const [input, path] of cases) {
      const failure = await failureOf(rest.call('orders.create', input as never));
      expect(failure.code).toBe('VALIDATION_ERROR');
      expect((failure.details as { issues: { path: string }[] }).issues[0]!.path).toBe(path);
    }
  });

  it('lists orders with filters, sort and cursor', async () => {
    const account = await t.newAccount();
    const made: Order[] = [];
    for (const [i, amount] of [300, 100, 500, 200, 400].entries()) {
      made.push(await account.rest.call('orders.create', { items: [{ sku: `s${i}`, quantity: 1, unit_amount: amount }], customer_id: i % 2 ? 'odd' : 'even' }));
    }
    await account.rest.call('orders.update', { order_id: made[0]!.id, status: 'paid' });
    const first = await account.rest.call('orders.list', { sort: '-total_amount', limit: 2 });
    expect(first.data.map((o) => o.total_amount)).toEqual([500, 400]);
    const second = await account.rest.call('orders.list', { sort: '-total_amount', limit: 2, cursor: first.next_cursor! });
    expect(second.data.map((o) => o.total_amount)).toEqual([300, 200]);
    const third = await account.rest.call('orders.list', { sort: '-total_amount', limit: 2, cursor: second.next_cursor! });
    expect(third).toMatchObject({ has_more: false, next_cursor: null });
    expect(third.data.map((o) => o.total_amount)).toEqual([100]);
    expect((await account.rest.call('orders.list', { status: 'paid' })).data.map((o) => o.id)).toEqual([made[0]!.id]);
    const filtered = await account.rest.call('orders.list', { filter: { customer_id: 'odd', total_amount: { $gte: 150 } }, sort: 'total_amount' });
    expect(filtered.data.map((o) => o.total_amount)).toEqual([200]);
    const response = await fetch(`${t.gateway.url}/v1/orders?filter[status]=created&sort=total_amount`, { headers: { 'x-api-key': account.apiKey } });
    const body = (await response.json()) as { data: { data: Order[] } };
    expect(body.data.data.map((o) => o.total_amount)).toEqual([100, 200, 400, 500]);
    expect((await failureOf(account.rest.call('orders.list', { filter: { colour: 'red' } as never }))).code).toBe('VALIDATION_ERROR');
  });

  it('runs a return from request to completion with a refund, and refuses a refund over the order total', async () => {
    const order = await shippedOrder();
    const requested = await rest.call('returns.create', { order_id: order.id, items: [{ sku: 'shoe-42', quantity: 1 }], reason: 'too small' });
    expect(requested).toMatchObject({ status: 'requested', order_id: order.id, items: [{ sku: 'shoe-42', quantity: 1 }], refund_amount: null, agent_id: null });
    const early = await failureOf(rest.call('returns.complete', { return_id: requested.id, refund_amount: 100 }));
    expect(early).toMatchObject({ code: 'CONFLICT', details: { status: 'requested', allowed: ['approved', 'rejected'] } });
    const approved = await rest.call('returns.approve', { return_id: requested.id, note: 'ok' });
    expect(approved).toMatchObject({ status: 'approved', resolution_note: 'ok' });

    const over = await failureOf(rest.call('returns.complete', { return_id: requested.id, refund_amount: order.total_amount + 1 }));
    expect(over).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'refund_amount', refundable: order.total_amount } });
    // Nothing half-written: the return is still approved and nothing was refunded.
    expect((await rest.call('returns.get', { return_id: requested.id })).status).toBe('approved');
    expect((await rest.call('orders.get', { order_id: order.id })).refunded_amount).toBe(0);

    const completed = await rest.call('returns.complete', { return_id: requested.id, refund_amount: 4500 });
    expect(completed).toMatchObject({ status: 'completed', refund_amount: 4500 });
    expect((await rest.call('orders.get', { order_id: order.id })).refunded_amount).toBe(4500);
    const again = await failureOf(rest.call('returns.approve', { return_id: requested.id }));
    expect(again).toMatchObject({ code: 'CONFLICT', details: { status: 'completed', allowed: [] } });

    // A second return may refund only what is left.
    const second = await rest.call('returns.create', { order_id: order.id, items: [{ sku: 'sock-m', quantity: 3 }] });
    await rest.call('returns.approve', { return_id: second.id });
    const rest2 = await failureOf(rest.call('returns.complete', { return_id: second.id, refund_amount: order.total_amount - 4500 + 1 }));
    expect(rest2.details).toMatchObject({ already_refunded: 4500, refundable: order.total_amount - 4500 });
    const rejectedLater = await rest.call('returns.complete', { return_id: second.id });
    expect(rejectedLater).toMatchObject({ status: 'completed', refund_amount: null });
    const listed = await rest.call('returns.list', { order_id: order.id, sort: 'created_at' });
    expect(listed.data.map((r) => r.id)).toEqual([requested.id, second.id]);
  });

  it('refuses returns of unshipped orders, unknown items, too many units and other accounts’ orders', async () => {
    const fresh = await rest.call('orders.create', { items: ITEMS });
    expect(await failureOf(rest.call('returns.create', { order_id: fresh.id, items: [{ sku: 'shoe-42', quantity: 1 }] }))).toMatchObject({
      code: 'CONFLICT',
      details: { status: 'created' },
    });
    const order = await shippedOrder();
    const unknown = await failureOf(rest.call('returns.create', { order_id: order.id, items: [{ sku: 'hat', quantity: 1 }] }));
    expect(unknown).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'items.0.sku' } });
    const first = await rest.call('returns.create', { order_id: order.id, items: [{ sku: 'sock-m', quantity: 2 }] });
    const tooMany = await failureOf(rest.call('returns.create', { order_id: order.id, items: [{ sku: 'sock-m', quantity: 2 }] }));
    expect(tooMany).toMatchObject({ code: 'VALIDATION_ERROR', details: { returnable: 1 } });
    // A rejected return gives its units back.
    await rest.call('returns.reject', { return_id: first.id, note: 'worn' });
    expect((await rest.call('returns.create', { order_id: order.id, items: [{ sku: 'sock-m', quantity: 3 }] })).status).toBe('requested');

    const other = await t.newAccount();
    const foreign = await failureOf(other.rest.call('returns.create', { order_id: order.id, items: [{ sku: 'sock-m', quantity: 1 }] }));
    expect(foreign).toMatchObject({ code: 'RESOURCE_NOT_FOUND', type: 'order_not_found' });
    expect((await failureOf(other.rest.call('orders.get', { order_id: order.id }))).code).toBe('RESOURCE_NOT_FOUND');
    expect((await failureOf(other.rest.call('returns.get', { return_id: first.id }))).code).toBe('RESOURCE_NOT_FOUND');
    expect((await other.rest.call('orders.list', {})).data).toEqual([]);
  });

  it('enforces the acting agent’s capabilities: can_process_returns and can_issue_refunds', async () => {
    const clerk = await rest.call('agents.create', { name: 'Clerk', capabilities: { can_process_returns: true, can_issue_refunds: false } });
    const chat = await rest.call('agents.create', { name: 'Chat', capabilities: { can_create_tickets: true } });
    const cashier = await rest.call('agents.create', { name: 'Cashier', capabilities: { can_process_returns: true, can_issue_refunds: true } });
    const order = await shippedOrder();

    const denied = await failureOf(rest.call('returns.create', { order_id: order.id, items: [{ sku: 'shoe-42', quantity: 1 }], agent_id: chat.id }));
    expect(denied).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', status: 403, details: { agent_id: chat.id, required: 'can_process_returns' } });
    expect((await rest.call('returns.list', { order_id: order.id })).data).toEqual([]);

    const ret = await rest.call('returns.create', { order_id: order.id, items: [{ sku: 'shoe-42', quantity: 1 }], agent_id: clerk.id });
    expect(ret.agent_id).toBe(clerk.id);
    expect((await failureOf(rest.call('returns.approve', { return_id: ret.id, agent_id: chat.id }))).code).toBe('INSUFFICIENT_PERMISSIONS');
    await rest.call('returns.approve', { return_id: ret.id, agent_id: clerk.id });
    const noRefund = await failureOf(rest.call('returns.complete', { return_id: ret.id, refund_amount: 100, agent_id: clerk.id }));
    expect(noRefund).toMatchObject({ code: 'INSUFFICIENT_PERMISSIONS', details: { required: 'can_issue_refunds' } });
    expect((await rest.call('returns.get', { return_id: ret.id })).status).toBe('approved');
    const done = await rest.call('returns.complete', { return_id: ret.id, refund_amount: 100, agent_id: cashier.id });
    expect(done).toMatchObject({ status: 'completed', agent_id: cashier.id, refund_amount: 100 });

    const other = await t.newAccount();
    const foreignAgent = await other.rest.call('agents.create', { name: 'X', capabilities: { can_process_returns: true } });
    expect(
      (await failureOf(rest.call('returns.create', { order_id: order.id, items: [{ sku: 'sock-m', quantity: 1 }], agent_id: foreignAgent.id }))).code,
    ).toBe('RESOURCE_NOT_FOUND');
  });

  it('needs orders and returns permissions', async () => {
    const reader = await t.newAccount({ scopes: ['orders:read', 'returns:read'] });
    expect((await reader.rest.call('orders.list', {})).data).toEqual([]);
    expect(await failureOf(reader.rest.call('orders.create', { items: ITEMS }))).toMatchObject({
      code: 'INSUFFICIENT_PERMISSIONS',
      details: { required: 'orders:write' },
    });
    expect((await failureOf(reader.rest.call('returns.create', { order_id: 'ord_x', items: [{ sku: 'a', quantity: 1 }] }))).details).toEqual({
      required: 'returns:write',
    });
  });
});
