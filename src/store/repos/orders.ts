import type { Order, OrderCreateInput, OrderListInput, ORDER_LIST_FIELDS, OrderStatus, Page, SortOrder } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, withShorthands, type ColumnMap, type ListInput } from '../query/filter.js';
import { buildUpdate } from './update.js';

interface OrderRow {
  pk: number;
  id: string;
  customer_id: string | null;
  status: OrderStatus;
  currency: string;
  items: Order['items'];
  total_amount: number | string;
  refunded_amount: number | string;
  tracking_number: string | null;
  metadata: Order['metadata'];
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'pk, id, customer_id, status, currency, items, total_amount, refunded_amount, tracking_number, metadata, created_at, updated_at';

const DEFAULT_SORT: SortOrder = { field: 'created_at', descending: true };

const LIST_COLUMNS: ColumnMap<typeof ORDER_LIST_FIELDS> = {
  status: { column: 'status', type: 'text' },
  customer_id: { column: 'customer_id', type: 'text' },
  currency: { column: 'currency', type: 'text' },
  total_amount: { column: 'total_amount', type: 'numeric' },
  created_at: { column: 'created_at', type: 'timestamptz' },
  updated_at: { column: 'updated_at', type: 'timestamptz' },
};

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    customer_id: row.customer_id,
    status: row.status,
    currency: row.currency,
    items: row.items,
    total_amount: Number(row.total_amount),
    refunded_amount: Number(row.refunded_amount),
    tracking_number: row.tracking_number,
    metadata: row.metadata,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export interface OrderChanges {
  status?: OrderStatus | undefined;
  tracking_number?: string | null | undefined;
  metadata?: Order['metadata'] | undefined;
}

export class OrderRepo {
  constructor(private readonly db: SqlExecutor) {}

  async create(accountId: string, id: string, input: OrderCreateInput): Promise<Order> {
    const items = input.items.map((item) => ({ sku: item.sku, name: item.name ?? null, quantity: item.quantity, unit_amount: item.unit_amount }));
    const total = items.reduce((sum, item) => sum + item.quantity * item.unit_amount, 0);
    const [row] = await this.db.query<OrderRow>(
      `insert into orders (id, account_id, customer_id, currency, items, total_amount, metadata)
       values ($1, $2, $3, $4, $5, $6, $7) returning ${COLUMNS}`,
      [id, accountId, input.customer_id ?? null, input.currency, JSON.stringify(items), total, JSON.stringify(input.metadata ?? {})],
    );
    return toOrder(row!);
  }

  /** With `lock`, the row stays locked until the transaction ends (a lifecycle step reads, checks, writes). */
  async get(accountId: string, id: string, lock = false): Promise<Order | null> {
    const [row] = await this.db.query<OrderRow>(`select ${COLUMNS} from orders where id = $1 and account_id = $2${lock ? ' for update' : ''}`, [id, accountId]);
    return row ? toOrder(row) : null;
  }

  async list(accountId: string, input: ListInput<OrderListInput>): Promise<Page<Order>> {
    const query = withShorthands(withDefaultSort(input, DEFAULT_SORT), { status: input.status, customer_id: input.customer_id });
    const params = new Params();
    const scope = `account_id = ${params.add(accountId)}`;
    const sql = keysetSql(LIST_COLUMNS, query, params);
    const rows = await this.db.query<OrderRow & { sort_value: string }>(
      `select ${COLUMNS}, ${sql.sortSelect} from orders
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)}`,
      params.values,
    );
    return keysetPage(rows, query, toOrder);
  }

  async update(accountId: string, id: string, changes: OrderChanges): Promise<Order | null> {
    const update = buildUpdate({ ...changes }, ['status', 'tracking_number', 'metadata'], 3);
    const [row] = await this.db.query<OrderRow>(`update orders set ${update.assignments} where id = $1 and account_id = $2 returning ${COLUMNS}`, [
      id,
      accountId,
      ...update.values,
    ]);
    return row ? toOrder(row) : null;
  }

  async addRefund(accountId: string, id: string, amount: number): Promise<Order> {
    const [row] = await this.db.query<OrderRow>(
      `update orders set refunded_amount = refunded_amount + $3, updated_at = now() where id = $1 and account_id = $2 returning ${COLUMNS}`,
      [id, accountId, amount],
    );
    return toOrder(row!);
  }
}
