import { z } from 'zod';
import { Id, Metadata, Timestamp } from './common.js';
import { listParams, type FieldSpecs } from './query.js';

/**
 * Orders and returns: the resources behind the StateSet document's `order.*` and `return.*`
 * events. Amounts are integers in the currency's minor unit (cents), as payment APIs use, so
 * totals and refunds add up exactly.
 */

// ---------- Orders ----------

export const OrderStatus = z.enum(['created', 'paid', 'shipped', 'delivered', 'cancelled']);
export type OrderStatus = z.infer<typeof OrderStatus>;

/**
 * The lifecycle a shop expects: pay, ship, deliver; cancel only before shipment. Anything else
 * (back to an earlier state, out of a final state) is refused with CONFLICT.
 */
export const ORDER_TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  created: ['paid', 'cancelled'],
  paid: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: [],
  cancelled: [],
};

export const MAX_ORDER_ITEMS = 100;
/** 10 million in major units: far above any real order, far below 2^53. */
export const MAX_AMOUNT = 1_000_000_000;

export const Sku = z.string().trim().min(1).max(100);
export const Amount = z.number().int().min(0).max(MAX_AMOUNT);
export const Currency = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'must be a three-letter ISO 4217 code, e.g. usd')
  .transform((code) => code.toLowerCase());

export const OrderItem = z.object({
  sku: z.string(),
  name: z.string().nullable(),
  quantity: z.number().int(),
  unit_amount: z.number().int(),
});
export type OrderItem = z.infer<typeof OrderItem>;

export const Order = z.object({
  id: z.string(),
  customer_id: z.string().nullable(),
  status: OrderStatus,
  currency: z.string(),
  items: z.array(OrderItem),
  /** Sum of quantity x unit_amount over the items, in minor units. */
  total_amount: z.number().int(),
  /** Sum of the refunds of completed returns; never above total_amount. */
  refunded_amount: z.number().int(),
  tracking_number: z.string().nullable(),
  metadata: Metadata,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Order = z.infer<typeof Order>;

export const OrderItemInput = z.strictObject({
  sku: Sku,
  name: z.string().trim().min(1).max(200).optional(),
  quantity: z.number().int().min(1).max(10_000),
  unit_amount: Amount,
});

export const OrderCreateInput = z.strictObject({
  customer_id: z.string().trim().min(1).max(128).optional(),
  currency: Currency.default('usd'),
  items: z
    .array(OrderItemInput)
    .min(1)
    .max(MAX_ORDER_ITEMS)
    .refine((items) => new Set(items.map((item) => item.sku)).size === items.length, { message: 'each sku may appear once' }),
  metadata: Metadata.optional(),
});
export type OrderCreateInput = z.infer<typeof OrderCreateInput>;

export const OrderUpdateInput = z.strictObject({
  order_id: Id,
  /** The next state in the lifecycle (see ORDER_TRANSITIONS). */
  status: OrderStatus.optional(),
  tracking_number: z.string().trim().min(1).max(200).nullable().optional(),
  metadata: Metadata.optional(),
});
export type OrderUpdateInput = z.infer<typeof OrderUpdateInput>;

export const ORDER_LIST_FIELDS = {
  status: { kind: 'text', values: OrderStatus.options },
  customer_id: { kind: 'text' },
  currency: { kind: 'text' },
  total_amount: { kind: 'number', sortable: true },
  created_at: { kind: 'timestamp', sortable: true },
  updated_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const OrderListInput = z.strictObject({
  ...listParams(ORDER_LIST_FIELDS, '-created_at'),
  /** Shorthands for filter[status] and filter[customer_id]. */
  status: OrderStatus.optional(),
  customer_id: z.string().max(128).optional(),
});
export type OrderListInput = z.infer<typeof OrderListInput>;

// ---------- Returns ----------

export const ReturnStatus = z.enum(['requested', 'approved', 'rejected', 'completed']);
export type ReturnStatus = z.infer<typeof ReturnStatus>;

export const ReturnItem = z.object({ sku: z.string(), quantity: z.number().int() });

export const Return = z.object({
  id: z.string(),
  order_id: z.string(),
  status: ReturnStatus,
  items: z.array(ReturnItem),
  reason: z.string().nullable(),
  /** The agent that last acted on the return, when one did. */
  agent_id: z.string().nullable(),
  /** Set when completed with a refund, in the order's currency's minor unit. */
  refund_amount: z.number().int().nullable(),
  resolution_note: z.string().nullable(),
  metadata: Metadata,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Return = z.infer<typeof Return>;

/**
 * `agent_id` names the agent acting on the customer's behalf. When given, the agent must be of
 * this account and hold `can_process_returns` (and `can_issue_refunds` for a refund), else 403.
 */
const ActingAgent = { agent_id: Id.optional() };

export const ReturnCreateInput = z.strictObject({
  order_id: Id,
  items: z
    .array(z.strictObject({ sku: Sku, quantity: z.number().int().min(1).max(10_000) }))
    .min(1)
    .max(MAX_ORDER_ITEMS)
    .refine((items) => new Set(items.map((item) => item.sku)).size === items.length, { message: 'each sku may appear once' }),
  reason: z.string().trim().min(1).max(2000).optional(),
  metadata: Metadata.optional(),
  ...ActingAgent,
});
export type ReturnCreateInput = z.infer<typeof ReturnCreateInput>;

export const ReturnDecisionInput = z.strictObject({
  return_id: Id,
  note: z.string().trim().min(1).max(2000).optional(),
  ...ActingAgent,
});
export type ReturnDecisionInput = z.infer<typeof ReturnDecisionInput>;

export const ReturnCompleteInput = z.strictObject({
  return_id: Id,
  /** Refund in minor units; with what was refunded before, at most the order's total. */
  refund_amount: Amount.optional(),
  note: z.string().trim().min(1).max(2000).optional(),
  ...ActingAgent,
});
export type ReturnCompleteInput = z.infer<typeof ReturnCompleteInput>;

export const RETURN_LIST_FIELDS = {
  order_id: { kind: 'text' },
  status: { kind: 'text', values: ReturnStatus.options },
  agent_id: { kind: 'text' },
  created_at: { kind: 'timestamp', sortable: true },
  updated_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const ReturnListInput = z.strictObject({
  ...listParams(RETURN_LIST_FIELDS, '-created_at'),
  order_id: Id.optional(),
  status: ReturnStatus.optional(),
});
export type ReturnListInput = z.infer<typeof ReturnListInput>;
