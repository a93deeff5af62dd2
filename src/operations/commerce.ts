import { ORDER_TRANSITIONS, type EventName, type Order, type OrderStatus, type Return } from '../../protocol/index.js';
import { ApiFailure, notFound } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import { topicsOf } from '../realtime/topics.js';
import type { StoreTx } from '../store/store.js';
import type { HandlerTable } from './context.js';

type CommerceHandlers = Pick<
  HandlerTable,
  | 'orders.create'
  | 'orders.get'
  | 'orders.list'
  | 'orders.update'
  | 'returns.create'
  | 'returns.get'
  | 'returns.list'
  | 'returns.approve'
  | 'returns.reject'
  | 'returns.complete'
>;

const ORDER_EVENT: Record<OrderStatus, EventName> = {
  created: 'order.created',
  paid: 'order.paid',
  shipped: 'order.shipped',
  delivered: 'order.delivered',
  cancelled: 'order.cancelled',
};

/** Orders that have left the warehouse can be returned; earlier ones are cancelled instead. */
const RETURNABLE: readonly OrderStatus[] = ['shipped', 'delivered'];

const orderNotFound = (id: string) => notFound('order', 'order_id', id);
const returnNotFound = (id: string) => notFound('return', 'return_id', id);

function impossible(resource: 'order' | 'return', id: string, from: string, to: string, allowed: readonly string[]): ApiFailure {
  return new ApiFailure(
    'CONFLICT',
    `A ${from} ${resource} cannot become ${to}${allowed.length ? ` (it can become: ${allowed.join(', ')})` : ` (${from} is final)`}`,
    {
      [`${resource}_id`]: id,
      status: from,
      requested_status: to,
      allowed: [...allowed],
    },
  );
}

type Capability = 'can_process_returns' | 'can_issue_refunds';

/**
 * How an agent acts: a request that names `agent_id` is made on that agent's behalf, so it may do
 * only what the agent's capabilities allow (403 otherwise). Without `agent_id` the API key acts,
 * and its `returns:write` permission is what counts.
 */
async function checkAgent(tx: StoreTx, accountId: string, agentId: string | undefined, needs: Capability[]): Promise<string | null> {
  if (agentId === undefined) return null;
  const agent = await tx.agents.get(accountId, agentId);
  if (!agent) throw notFound('agent', 'agent_id', agentId);
  if (agent.status !== 'active') {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `Agent ${agentId} is inactive and cannot act`, { agent_id: agentId, status: agent.status });
  }
  for (const capability of needs) {
    if (agent.capabilities[capability] !== true) {
      throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `Agent ${agentId} lacks the ${capability} capability`, { agent_id: agentId, required: capability });
    }
  }
  return agentId;
}

/** Quantities of each sku still returnable: ordered minus what open or finished returns hold. */
function returnable(order: Order, returns: readonly Return[]): Map<string, number> {
  const left = new Map(order.items.map((item) => [item.sku, item.quantity]));
  for (const ret of returns) {
    if (ret.status === 'rejected') continue;
    for (const item of ret.items) left.set(item.sku, (left.get(item.sku) ?? 0) - item.quantity);
  }
  return left;
}

export const commerceHandlers: CommerceHandlers = {
  'orders.create': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const order = await tx.orders.create(ctx.principal.accountId, newId('order'), input);
      if (order.total_amount > Number.MAX_SAFE_INTEGER) throw new ApiFailure('VALIDATION_ERROR', 'The order total is too large');
      emit(topicsOf.order(), 'order.created', { order });
      return order;
    }),

  'orders.get': async (ctx, { order_id }) => {
    const order = await ctx.store.orders.get(ctx.principal.accountId, order_id);
    if (!order) throw orderNotFound(order_id);
    return order;
  },

  'orders.list': (ctx, input) => ctx.store.orders.list(ctx.principal.accountId, input),

  'orders.update': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const accountId = ctx.principal.accountId;
      const before = await tx.orders.get(accountId, input.order_id, true);
      if (!before) throw orderNotFound(input.order_id);
      // Asking for the state it is in changes nothing: a retried update is harmless.
      const moves = input.status !== undefined && input.status !== before.status;
      if (moves) {
        const allowed = ORDER_TRANSITIONS[before.status];
        if (!allowed.includes(input.status!)) throw impossible('order', before.id, before.status, input.status!, allowed);
      }
      const other = input.tracking_number !== undefined || input.metadata !== undefined;
      if (!moves && !other) return before;
      const order = await tx.orders.update(accountId, before.id, {
        status: moves ? input.status : undefined,
        tracking_number: input.tracking_number,
        metadata: input.metadata,
      });
      emit(topicsOf.order(), moves ? (ORDER_EVENT[order!.status] as 'order.updated') : 'order.updated', { order: order! });
      return order!;
    }),

  'returns.create': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const accountId = ctx.principal.accountId;
      const agentId = await checkAgent(tx, accountId, input.agent_id, ['can_process_returns']);
      // Locked: two requests for the same order cannot both take the last returnable unit.
      const order = await tx.orders.get(accountId, input.order_id, true);
      if (!order) throw orderNotFound(input.order_id);
      if (!RETURNABLE.includes(order.status)) {
        throw new ApiFailure('CONFLICT', `A ${order.status} order cannot be returned (only shipped or delivered orders can)`, {
          order_id: order.id,
          status: order.status,
        });
      }
      const left = returnable(order, await tx.returns.ofOrder(accountId, order.id));
      input.items.forEach((item, index) => {
        const available = left.get(item.sku);
        if (available === undefined) {
          throw new ApiFailure('VALIDATION_ERROR', `items.${index}.sku: ${item.sku} is not an item of order ${order.id}`, {
            field: `items.${index}.sku`,
            sku: item.sku,
          });
        }
        if (item.quantity > available) {
          throw new ApiFailure('VALIDATION_ERROR', `items.${index}.quantity: only ${available} of ${item.sku} can still be returned`, {
            field: `items.${index}.quantity`,
            sku: item.sku,
            returnable: available,
          });
        }
      });
      const ret = await tx.returns.create(accountId, {
        id: newId('return'),
        orderId: order.id,
        items: input.items,
        reason: input.reason ?? null,
        agentId,
        metadata: input.metadata ?? {},
      });
      emit(topicsOf.return(), 'return.requested', { return: ret });
      return ret;
    }),

  'returns.get': async (ctx, { return_id }) => {
    const ret = await ctx.store.returns.get(ctx.principal.accountId, return_id);
    if (!ret) throw returnNotFound(return_id);
    return ret;
  },

  'returns.list': (ctx, input) => ctx.store.returns.list(ctx.principal.accountId, input),

  'returns.approve': (ctx, input) => decide(ctx, input, 'approved'),
  'returns.reject': (ctx, input) => decide(ctx, input, 'rejected'),

  'returns.complete': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const accountId = ctx.principal.accountId;
      const refund = input.refund_amount ?? 0;
      const agentId = await checkAgent(tx, accountId, input.agent_id, refund > 0 ? ['can_process_returns', 'can_issue_refunds'] : ['can_process_returns']);
      const found = await tx.returns.get(accountId, input.return_id);
      if (!found) throw returnNotFound(input.return_id);
      // Order first, then the return: the same lock order as returns.create.
      const order = (await tx.orders.get(accountId, found.order_id, true))!;
      const ret = (await tx.returns.get(accountId, found.id, true))!;
      if (ret.status !== 'approved') throw impossible('return', ret.id, ret.status, 'completed', ret.status === 'requested' ? ['approved', 'rejected'] : []);
      const refundable = order.total_amount - order.refunded_amount;
      if (refund > refundable) {
        throw new ApiFailure('VALIDATION_ERROR', `refund_amount ${refund} is more than the ${refundable} left to refund of order ${order.id}`, {
          field: 'refund_amount',
          refund_amount: refund,
          order_total: order.total_amount,
          already_refunded: order.refunded_amount,
          refundable,
        });
      }
      const completed = await tx.returns.settle(accountId, ret.id, {
        status: 'completed',
        agentId,
        note: input.note ?? null,
        refundAmount: input.refund_amount ?? null,
      });
      const updated = refund > 0 ? await tx.orders.addRefund(accountId, order.id, refund) : order;
      emit(topicsOf.return(), 'return.completed', { return: completed, order: updated });
      return completed;
    }),
};

function decide(
  ctx: Parameters<HandlerTable['returns.approve']>[0],
  input: Parameters<HandlerTable['returns.approve']>[1],
  status: 'approved' | 'rejected',
): Promise<Return> {
  return ctx.write(async (tx, emit) => {
    const accountId = ctx.principal.accountId;
    const agentId = await checkAgent(tx, accountId, input.agent_id, ['can_process_returns']);
    const found = await tx.returns.get(accountId, input.return_id);
    if (!found) throw returnNotFound(input.return_id);
    await tx.orders.get(accountId, found.order_id, true);
    const ret = (await tx.returns.get(accountId, found.id, true))!;
    if (ret.status !== 'requested') throw impossible('return', ret.id, ret.status, status, ret.status === 'approved' ? ['completed'] : []);
    const settled = await tx.returns.settle(accountId, ret.id, { status, agentId, note: input.note ?? null });
    emit(topicsOf.return(), status === 'approved' ? 'return.approved' : 'return.rejected', { return: settled });
    return settled;
  });
}
