import type {
  Page,
  SortOrder,
  WEBHOOK_LIST_FIELDS,
  WebhookCreateInput,
  WebhookEndpoint,
  WebhookListInput,
  WebhookUpdateInput,
} from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, type ColumnMap, type ListInput } from '../query/filter.js';

interface EndpointRow {
  pk: number;
  id: string;
  url: string;
  events: string[];
  metadata: WebhookEndpoint['metadata'];
  enabled: boolean;
  disabled_reason: string | null;
  secret: string;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'pk, id, url, events, metadata, enabled, disabled_reason, secret, previous_secret_expires_at, created_at, updated_at';
const DEFAULT_SORT: SortOrder = { field: 'created_at', descending: true };
const LIST_COLUMNS: ColumnMap<typeof WEBHOOK_LIST_FIELDS> = {
  url: { column: 'url', type: 'text' },
  created_at: { column: 'created_at', type: 'timestamptz' },
  updated_at: { column: 'updated_at', type: 'timestamptz' },
};

/** The head of the account's `account` topic: a new or re-enabled endpoint starts after it. */
const ACCOUNT_HEAD = `coalesce((select seq from topic_positions where topic = account_id || '/account'), 0)`;

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  const overlap = row.previous_secret_expires_at && row.previous_secret_expires_at.getTime() > Date.now() ? iso(row.previous_secret_expires_at) : null;
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    metadata: row.metadata,
    enabled: row.enabled,
    disabled_reason: row.disabled_reason,
    secret_hint: `…${row.secret.slice(-4)}`,
    previous_secret_expires_at: overlap,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

/** Webhook endpoints as their owners manage them. Secrets leave this repository only at creation and rotation. */
export class WebhookRepo {
  constructor(private readonly db: SqlExecutor) {}

  async create(accountId: string, id: string, input: WebhookCreateInput, secret: string): Promise<WebhookEndpoint> {
    // Only events committed from now on: the topic's committed head is a prefix (commit order is seq order).
    const [row] = await this.db.query<EndpointRow>(
      `insert into webhook_endpoints (id, account_id, url, events, metadata, enabled, secret, cursor_seq)
       values ($1, $2::text, $3, $4::text[], $5, $6, $7, coalesce((select seq from topic_positions where topic = $2::text || '/account'), 0))
       returning ${COLUMNS}`,
      [id, accountId, input.url, input.events, JSON.stringify(input.metadata ?? {}), input.enabled, secret],
    );
    return toEndpoint(row!);
  }

  async get(accountId: string, id: string): Promise<WebhookEndpoint | null> {
    const [row] = await this.db.query<EndpointRow>(`select ${COLUMNS} from webhook_endpoints where id = $1 and account_id = $2`, [id, accountId]);
    return row ? toEndpoint(row) : null;
  }

  async list(accountId: string, input: ListInput<WebhookListInput>): Promise<Page<WebhookEndpoint>> {
    const query = withDefaultSort(input, DEFAULT_SORT);
    const params = new Params();
    const scope = `account_id = ${params.add(accountId)}`;
    const sql = keysetSql(LIST_COLUMNS, query, params);
    const rows = await this.db.query<EndpointRow & { sort_value: string }>(
      `select ${COLUMNS}, ${sql.sortSelect} from webhook_endpoints
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)}`,
      params.values,
    );
    return keysetPage(rows, query, toEndpoint);
  }

  /**
   * Re-enabling clears the reason and the failure streak and starts after the current head:
   * events of the disabled time are not owed (the log may have trimmed them).
   */
  async update(accountId: string, input: WebhookUpdateInput): Promise<WebhookEndpoint | null> {
    const [row] = await this.db.query<EndpointRow>(
      `update webhook_endpoints set
          url = coalesce($3, url),
          events = coalesce($4::text[], events),
          metadata = coalesce($5::jsonb, metadata),
          enabled = coalesce($6::boolean, enabled),
          disabled_reason = case when $6::boolean is null then disabled_reason else null end,
          failing_since = case when $6::boolean and not enabled then null else failing_since end,
          cursor_seq = case when $6::boolean and not enabled then ${ACCOUNT_HEAD} else cursor_seq end,
          updated_at = now()
        where id = $1 and account_id = $2 returning ${COLUMNS}`,
      [
        input.webhook_id,
        accountId,
        input.url ?? null,
        input.events ?? null,
        input.metadata === undefined ? null : JSON.stringify(input.metadata),
        input.enabled ?? null,
      ],
    );
    return row ? toEndpoint(row) : null;
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    const rows = await this.db.query('delete from webhook_endpoints where id = $1 and account_id = $2 returning id', [id, accountId]);
    return rows.length > 0;
  }

  /** The new secret signs from now on; the old one beside it until the overlap ends. */
  async rotate(accountId: string, id: string, secret: string, overlapSeconds: number): Promise<WebhookEndpoint | null> {
    const [row] = await this.db.query<EndpointRow>(
      `update webhook_endpoints set
          previous_secret = case when $4::int > 0 then secret else null end,
          previous_secret_expires_at = case when $4::int > 0 then now() + make_interval(secs => $4::int) else null end,
          secret = $3, updated_at = now()
        where id = $1 and account_id = $2 returning ${COLUMNS}`,
      [id, accountId, secret, overlapSeconds],
    );
    return row ? toEndpoint(row) : null;
  }
}
