import type { Conversation, ConversationCreateInput, ConversationListInput, ConversationUpdateInput, Page } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { decodeCursor, iso, toPage } from '../paging.js';
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
    const [row] = await this.db.query<ConversationRow>(`select ${COLUMNS} from conversations where id = $1 and account_id = $2`, [
      id,
      accountId,
    ]);
    return row ? toConversation(row) : null;
  }

  async exists(accountId: string, id: string): Promise<boolean> {
    const rows = await this.db.query('select 1 from conversations where id = $1 and account_id = $2', [id, accountId]);
    return rows.length > 0;
  }

  async list(accountId: string, input: ConversationListInput): Promise<Page<Conversation>> {
    const rows = await this.db.query<ConversationRow>(
      `select ${COLUMNS} from conversations
        where account_id = $1 and ($2::bigint is null or pk < $2)
          and ($3::text is null or agent_id = $3) and ($4::text is null or status = $4)
        order by pk desc limit $5`,
      [accountId, decodeCursor(input.cursor), input.agent_id ?? null, input.status ?? null, input.limit + 1],
    );
    return toPage(rows, input.limit, toConversation);
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
       returning ${COLUMNS.split(', ').map((column) => `c.${column}`).join(', ')}, old.status as old_status`,
      [conversation_id, accountId, ...update.values],
    );
    const row = rows[0];
    if (!row) return null;
    const after = toConversation(row);
    return { before: { ...after, status: row.old_status }, after };
  }
}
