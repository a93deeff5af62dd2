import type {
  Conversation,
  ConversationCreateInput,
  ConversationListInput,
  ConversationUpdateInput,
  CONVERSATION_LIST_FIELDS,
  Page,
  SortOrder,
} from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, withShorthands, type ColumnMap, type ListInput } from '../query/filter.js';
import { buildUpdate } from './update.js';

interface ConversationRow {
  pk: number;
  id: string;
  agent_id: string | null;
  channel: string;
  status: Conversation['status'];
  satisfaction_score: number | null;
  metadata: Conversation['metadata'];
  message_count: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'pk, id, agent_id, channel, status, satisfaction_score, metadata, message_count, created_at, updated_at';

/** A slice of each agent's conversations: `first` from the start or `last` from the end, between cursors. */
export interface ConversationSlice {
  first?: number | undefined;
  last?: number | undefined;
  after?: string | undefined;
  before?: string | undefined;
}

const DEFAULT_SORT: SortOrder = { field: 'created_at', descending: true };

const LIST_COLUMNS: ColumnMap<typeof CONVERSATION_LIST_FIELDS> = {
  agent_id: { column: 'agent_id', type: 'text' },
  channel: { column: 'channel', type: 'text' },
  status: { column: 'status', type: 'text' },
  satisfaction_score: { column: 'satisfaction_score', type: 'numeric' },
  message_count: { column: 'message_count', type: 'numeric' },
  created_at: { column: 'created_at', type: 'timestamptz' },
  updated_at: { column: 'updated_at', type: 'timestamptz' },
};

function toConversation(row: ConversationRow): Conversation {
  return {
    id: row.id,
    agent_id: row.agent_id,
    channel: row.channel,
    status: row.status,
    satisfaction_score: row.satisfaction_score,
    metadata: row.metadata,
    message_count: row.message_count,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export class ConversationRepo {
  constructor(private readonly db: SqlExecutor) {}

  /** Null when the agent does not exist in this account: checked in the same statement. */
  async create(accountId: string, id: string, input: ConversationCreateInput): Promise<Conversation | null> {
    const [row] = await this.db.query<ConversationRow>(
      `insert into conversations (id, account_id, agent_id, channel, metadata)
       select $1, $2, a.id, $4, $5 from agents a where a.id = $3 and a.account_id = $2
       returning ${COLUMNS}`,
      [id, accountId, input.agent_id, input.channel, JSON.stringify(input.metadata ?? {})],
    );
    return row ? toConversation(row) : null;
  }

  async get(accountId: string, id: string): Promise<Conversation | null> {
    const [row] = await this.db.query<ConversationRow>(`select ${COLUMNS} from conversations where id = $1 and account_id = $2`, [id, accountId]);
    return row ? toConversation(row) : null;
  }

  async exists(accountId: string, id: string): Promise<boolean> {
    const rows = await this.db.query('select 1 from conversations where id = $1 and account_id = $2', [id, accountId]);
    return rows.length > 0;
  }

  async list(accountId: string, input: ListInput<ConversationListInput>): Promise<Page<Conversation>> {
    const query = withShorthands(withDefaultSort(input, DEFAULT_SORT), { agent_id: input.agent_id, status: input.status });
    const params = new Params();
    const scope = `account_id = ${params.add(accountId)}`;
    const sql = keysetSql(LIST_COLUMNS, query, params);
    const rows = await this.db.query<ConversationRow & { sort_value: string }>(
      `select ${COLUMNS}, ${sql.sortSelect} from conversations
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)} offset ${params.add(sql.offset)}`,
      params.values,
    );
    return keysetPage(rows, query, toConversation);
  }

  /**
   * The newest `last` (or oldest `first`) conversations of each of these agents, strictly after
   * `after` and before `before` (conversation ids: a Relay connection's cursors), in one statement
   * whatever their number (batch loading); oldest first within an agent.
   */
  async lastByAgents(accountId: string, agentIds: readonly string[], page: ConversationSlice): Promise<Conversation[]> {
    const values: unknown[] = [accountId, [...new Set(agentIds)], page.first ?? page.last ?? 10];
    // A cursor is a conversation of the account: its (created_at, pk) bounds the slice; an unknown one matches nothing.
    const bound = (id: string | undefined, op: '>' | '<') => {
      if (id === undefined) return [];
      values.push(id);
      return [`(created_at, pk) ${op} (select created_at, pk from conversations where id = $${values.length} and account_id = $1)`];
    };
    const where = ['agent_id = parent.id', 'account_id = $1', ...bound(page.after, '>'), ...bound(page.before, '<')];
    const direction = page.first !== undefined ? 'asc' : 'desc';
    // A lateral subquery per agent: each reads only the rows it returns from (agent_id, created_at, pk).
    const rows = await this.db.query<ConversationRow>(
      `select c.* from unnest($2::text[]) as parent(id)
       cross join lateral (
         select ${COLUMNS} from conversations
          where ${where.join(' and ')}
          order by created_at ${direction}, pk ${direction} limit $3
       ) c
       order by c.agent_id, c.created_at, c.pk`,
      values,
    );
    return rows.map(toConversation);
  }

  /** Returns the conversation before and after, so callers can tell what changed. */
  async update(accountId: string, input: ConversationUpdateInput): Promise<{ before: Conversation; after: Conversation } | null> {
    const { conversation_id, ...fields } = input;
    const update = buildUpdate(fields, ['status', 'satisfaction_score', 'metadata'], 3);
    // The old row is read in the same statement (a CTE sees the snapshot before the update).
    const rows = await this.db.query<ConversationRow & { old_status: Conversation['status'] }>(
      `with old as (select status from conversations where id = $1 and account_id = $2 for update)
       update conversations c set ${update.assignments} from old
        where c.id = $1 and c.account_id = $2
       returning ${COLUMNS.split(', ')
         .map((column) => `c.${column}`)
         .join(', ')}, old.status as old_status`,
      [conversation_id, accountId, ...update.values],
    );
    const row = rows[0];
    if (!row) return null;
    const after = toConversation(row);
    return { before: { ...after, status: row.old_status }, after };
  }
}
