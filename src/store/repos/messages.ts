import type { Message, MessageCreateInput, MessageListInput, MESSAGE_LIST_FIELDS, Page, SortOrder } from '../../../protocol/index.js';
import type { EventDraft, TopicEvent } from '../../kernel/topic-event.js';
import type { SqlDriver } from '../driver.js';
import { appendEvents } from './events.js';
import { GroupCommit } from '../group-commit.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, type ColumnMap, type ListInput } from '../query/filter.js';

interface MessageRow {
  pk: number;
  id: string;
  conversation_id: string;
  role: Message['role'];
  content: string;
  metadata: Message['metadata'];
  created_at: Date;
}

const COLUMNS = 'pk, id, conversation_id, role, content, metadata, created_at';

const DEFAULT_SORT: SortOrder = { field: 'created_at', descending: false };

const LIST_COLUMNS: ColumnMap<typeof MESSAGE_LIST_FIELDS> = {
  role: { column: 'role', type: 'text' },
  created_at: { column: 'created_at', type: 'timestamptz' },
};

function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    conversation_id: row.conversation_id,
    role: row.role,
    content: row.content,
    metadata: row.metadata,
    created_at: iso(row.created_at),
  };
}

export interface NewMessage {
  id: string;
  accountId: string;
  input: MessageCreateInput;
  /** The events that announce this message once stored, written in the same transaction. */
  announce?: (stored: StoredMessage) => EventDraft[];
}

/** A committed message and the agent of its conversation (events also go to the agent's topic). */
export interface StoredMessage {
  message: Message;
  agentId: string | null;
}

export interface CommittedMessage extends StoredMessage {
  /** Its events, numbered, committed with it. */
  events: TopicEvent[];
}

/** Marks a message whose conversation does not exist in its account. */
export class MissingConversation extends Error {}

/**
 * One statement writes a whole batch: rows go in through one jsonb parameter, only those whose
 * conversation exists in the same account are inserted, and the conversations' counters move in
 * the same statement.
 */
const INSERT_BATCH = `
  with input as (
    select * from jsonb_to_recordset($1::jsonb)
      as v(ord int, id text, account_id text, conversation_id text, role text, content text, metadata jsonb)
  ), ins as (
    insert into messages (id, account_id, conversation_id, role, content, metadata, created_at)
    select v.id, v.account_id, v.conversation_id, v.role, v.content, v.metadata, clock_timestamp()
      from input v join conversations c on c.id = v.conversation_id and c.account_id = v.account_id
     order by v.ord
    returning ${COLUMNS}
  ), counted as (
    update conversations c set message_count = c.message_count + n.added, updated_at = now()
      from (select conversation_id, count(*)::int as added from ins group by conversation_id) n
     where c.id = n.conversation_id
  )
  select ins.*, c.agent_id from ins join conversations c on c.id = ins.conversation_id`;

export class MessageRepo {
  private readonly writer: GroupCommit<NewMessage, CommittedMessage>;

  constructor(
    private readonly db: SqlDriver,
    private readonly options: { maxBatch: number; maxInFlight: number; onWritten?: (rows: number) => void },
  ) {
    this.writer = new GroupCommit({ ...options, write: (items) => this.writeBatch(items) });
  }

  /** Resolves after the row has committed; rejects with MissingConversation when it has nowhere to go. */
  create(message: NewMessage): Promise<CommittedMessage> {
    return this.writer.submit(message);
  }

  /** Waits for every accepted write to commit. */
  flush(): Promise<void> {
    return this.writer.drain();
  }

  async get(accountId: string, id: string): Promise<Message | null> {
    const [row] = await this.db.query<MessageRow>(`select ${COLUMNS} from messages where id = $1 and account_id = $2`, [id, accountId]);
    return row ? toMessage(row) : null;
  }

  /** Oldest first by default: the order in which they were written. */
  async list(accountId: string, input: ListInput<MessageListInput>): Promise<Page<Message>> {
    const query = withDefaultSort(input, DEFAULT_SORT);
    const params = new Params();
    const scope = `conversation_id = ${params.add(input.conversation_id)} and account_id = ${params.add(accountId)}`;
    const sql = keysetSql(LIST_COLUMNS, query, params);
    const rows = await this.db.query<MessageRow & { sort_value: string }>(
      `select ${COLUMNS}, ${sql.sortSelect} from messages
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)} offset ${params.add(sql.offset)}`,
      params.values,
    );
    return keysetPage(rows, query, toMessage);
  }

  /**
   * The newest `last` messages of each of these conversations, in one statement whatever their
   * number (batch loading); oldest first within a conversation.
   */
  async lastByConversations(accountId: string, conversationIds: readonly string[], last: number): Promise<Message[]> {
    // A lateral subquery per conversation: each reads only its newest rows from (conversation_id, created_at, pk).
    const rows = await this.db.query<MessageRow>(
      `select m.* from unnest($2::text[]) as parent(id)
       cross join lateral (
         select ${COLUMNS} from messages
          where conversation_id = parent.id and account_id = $1
          order by created_at desc, pk desc limit $3
       ) m
       order by m.conversation_id, m.created_at, m.pk`,
      [accountId, [...new Set(conversationIds)], last],
    );
    return rows.map(toMessage);
  }

  /** The batch's rows and their events in one transaction: a crash can lose neither one without the other. */
  private async writeBatch(items: NewMessage[]): Promise<(CommittedMessage | Error)[]> {
    const payload = items.map((item, ord) => ({
      ord,
      id: item.id,
      account_id: item.accountId,
      conversation_id: item.input.conversation_id,
      role: item.input.role,
      content: item.input.content,
      metadata: item.input.metadata ?? {},
    }));
    const conversations = [...new Set(items.map((item) => item.input.conversation_id))].sort();
    const { rows, events, draftIds } = await this.db.transaction(async (tx) => {
      // Batches that share a conversation (from other nodes) take turns from here to commit, so
      // that its messages' pk and created_at (clock time after the lock) follow their event seqs.
      // (PGlite is one process with one connection: its transactions already take turns.)
      if (this.db.kind === 'postgres') await tx.query('select 1 from conversations where id = any($1::text[]) order by id for update', [conversations]);
      const rows = await tx.query<MessageRow & { agent_id: string | null }>(INSERT_BATCH, [JSON.stringify(payload)]);
      const byId = new Map(rows.map((row) => [row.id, row]));
      const drafts: EventDraft[] = [];
      const draftIds = new Map<string, string[]>();
      for (const item of items) {
        const row = byId.get(item.id);
        if (!row) continue;
        const own = item.announce?.({ message: toMessage(row), agentId: row.agent_id }) ?? [];
        draftIds.set(
          item.id,
          own.map((draft) => draft.id),
        );
        drafts.push(...own);
      }
      return { rows: byId, events: await appendEvents(tx, drafts), draftIds };
    });
    this.options.onWritten?.(rows.size);
    const byEvent = new Map<string, TopicEvent[]>();
    for (const event of events) {
      const list = byEvent.get(event.id);
      if (list) list.push(event);
      else byEvent.set(event.id, [event]);
    }
    return items.map((item) => {
      const row = rows.get(item.id);
      if (!row) return new MissingConversation(item.input.conversation_id);
      const own = (draftIds.get(item.id) ?? []).flatMap((id) => byEvent.get(id) ?? []);
      return { message: toMessage(row), agentId: row.agent_id, events: own };
    });
  }
}
