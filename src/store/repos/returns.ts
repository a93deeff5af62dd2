import type { Page, Return, RETURN_LIST_FIELDS, ReturnListInput, ReturnStatus, SortOrder } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, withShorthands, type ColumnMap, type ListInput } from '../query/filter.js';

interface ReturnRow {
  pk: number;
  id: string;
  order_id: string;
  status: ReturnStatus;
  items: Return['items'];
  reason: string | null;
  agent_id: string | null;
  refund_amount: number | string | null;
  resolution_note: string | null;
  metadata: Return['metadata'];
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'pk, id, order_id, status, items, reason, agent_id, refund_amount, resolution_note, metadata, created_at, updated_at';

const DEFAULT_SORT: SortOrder = { field: 'created_at', descending: true };

const LIST_COLUMNS: ColumnMap<typeof RETURN_LIST_FIELDS> = {
  order_id: { column: 'order_id', type: 'text' },
  status: { column: 'status', type: 'text' },
  agent_id: { column: 'agent_id', type: 'text' },
  created_at: { column: 'created_at', type: 'timestamptz' },
  updated_at: { column: 'updated_at', type: 'timestamptz' },
};

function toReturn(row: ReturnRow): Return {
  return {
    id: row.id,
    order_id: row.order_id,
    status: row.status,
    items: row.items,
    reason: row.reason,
    agent_id: row.agent_id,
    refund_amount: row.refund_amount === null ? null : Number(row.refund_amount),
    resolution_note: row.resolution_note,
    metadata: row.metadata,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export interface NewReturn {
  id: string;
  orderId: string;
  items: Return['items'];
  reason: string | null;
  agentId: string | null;
  metadata: Return['metadata'];
}

export class ReturnRepo {
  constructor(private readonly db: SqlExecutor) {}

  async create(accountId: string, input: NewReturn): Promise<Return> {
    const [row] = await this.db.query<ReturnRow>(
      `insert into returns (id, account_id, order_id, items, reason, agent_id, metadata)
       values ($1, $2, $3, $4, $5, $6, $7) returning ${COLUMNS}`,
      [input.id, accountId, input.orderId, JSON.stringify(input.items), input.reason, input.agentId, JSON.stringify(input.metadata)],
    );
    return toReturn(row!);
  }

  async get(accountId: string, id: string, lock = false): Promise<Return | null> {
    const [row] = await this.db.query<ReturnRow>(`select ${COLUMNS} from returns where id = $1 and account_id = $2${lock ? ' for update' : ''}`, [
      id,
      accountId,
    ]);
    return row ? toReturn(row) : null;
  }

  /** Every return of an order, to count what is already being returned. */
  async ofOrder(accountId: string, orderId: string): Promise<Return[]> {
    const rows = await this.db.query<ReturnRow>(`select ${COLUMNS} from returns where order_id = $1 and account_id = $2 order by pk`, [orderId, accountId]);
    return rows.map(toReturn);
  }

  async list(accountId: string, input: ListInput<ReturnListInput>): Promise<Page<Return>> {
    const query = withShorthands(withDefaultSort(input, DEFAULT_SORT), { order_id: input.order_id, status: input.status });
    const params = new Params();
    const scope = `account_id = ${params.add(accountId)}`;
    const sql = keysetSql(LIST_COLUMNS, query, params);
    const rows = await this.db.query<ReturnRow & { sort_value: string }>(
      `select ${COLUMNS}, ${sql.sortSelect} from returns
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)}`,
      params.values,
    );
    return keysetPage(rows, query, toReturn);
  }

  /** A step of the return's lifecycle; the caller has checked it is allowed (row locked). */
  async settle(
    accountId: string,
    id: string,
    step: { status: ReturnStatus; agentId: string | null; note: string | null; refundAmount?: number | null },
  ): Promise<Return> {
    const [row] = await this.db.query<ReturnRow>(
      `update returns set status = $3, agent_id = coalesce($4, agent_id), resolution_note = coalesce($5, resolution_note),
              refund_amount = coalesce($6, refund_amount), updated_at = now()
        where id = $1 and account_id = $2 returning ${COLUMNS}`,
      [id, accountId, step.status, step.agentId, step.note, step.refundAmount ?? null],
    );
    return toReturn(row!);
  }
}
