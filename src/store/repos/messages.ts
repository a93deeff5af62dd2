import type { Message, MessageCreateInput, MessageListInput, MESSAGE_LIST_FIELDS, Page, SortOrder } from '../../../protocol/index.js';
import type { TopicEvent } from '../../kernel/topic-event.js';
import type { SqlDriver } from '../driver.js';
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
  /**
   * The event that announces this message, written in the same statement. Decided once the
   * conversation's agent is known but before the row exists: the store builds the event's data,
   * `{ message, ...extra }`, from the row it writes.
   */
  announce?: (agentId: string | null) => MessageAnnouncement;
}

/** A message's event before the message exists: its id, type, topics and data beside `message`. */
export interface MessageAnnouncement {
  id: string;
  event: string;
  topics: string[];
  extra?: Record<string, unknown>;
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
 * Locks the batch's conversations (in id order, so that two writers never wait on each other in
 * opposite orders) and reads their account and agent. Another batch sharing a conversation (on
 * another connection or node) waits here until this one commits, so the messages it numbers next
 * (pk, created_at, event seq) all come after this batch's.
 */
const LOCK_CONVERSATIONS = 'select id, account_id, agent_id from conversations where id = any($1::text[]) order by id for update';

/**
 * The rest of the batch in one statement: the messages (as column arrays, in submission order,
 * `created_at` read from the clock after the lock), the conversations' counters, the topics' next
 * seqs (`topic_positions` rows bumped in topic order and locked until commit) and the event rows,
 * whose data is built here from the inserted rows instead of being sent again. Answers one row
 * per message (kind 'm': its pk and created_at) and one per event copy (kind 'e': its seq, epoch).
 */
const WRITE_BATCH = `
  with input as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
      with ordinality as v(id, account_id, conversation_id, role, content, metadata, ord)
  ), ins as (
    insert into messages (id, account_id, conversation_id, role, content, metadata, created_at)
    select id, account_id, conversation_id, role, content, metadata::jsonb, clock_timestamp() from input order by ord
    returning id, conversation_id, role, content, metadata, created_at, pk
  ), counted as (
    update conversations c set message_count = c.message_count + n.added, updated_at = now()
      from (select conversation_id, count(*)::int as added from input group by conversation_id) n
     where c.id = n.conversation_id
  ), stored as (
    select v.ord, i.pk, i.created_at,
           json_build_object('id', i.id, 'conversation_id', i.conversation_id, 'role', i.role, 'content', i.content, 'metadata', i.metadata,
                             'created_at', to_char(i.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) as body
      from ins i join input v using (id)
  ), announced as (
    select * from unnest($7::int[], $8::text[], $9::text[], $10::text[]) as a(ord, id, type, extra)
  ), targets as (
    select * from unnest($11::int[], $12::text[]) with ordinality as t(ord, topic, k)
  ), counts as (
    select topic, count(*)::bigint as n from targets group by topic
  ), bumped as (
    insert into topic_positions as p (topic, seq, epoch)
    select topic, n, substr(md5(random()::text || clock_timestamp()::text), 1, 8) from counts order by topic
    on conflict (topic) do update set seq = p.seq + excluded.seq, updated_at = now()
    returning p.topic, p.seq, p.epoch
  ), numbered as (
    select t.k, t.ord, t.topic, b.epoch, b.seq - c.n + row_number() over (partition by t.topic collate "C" order by t.k) as seq
      from targets t join counts c using (topic) join bumped b using (topic)
  ), logged as (
    insert into event_log (topic, seq, id, type, data, created_at)
    select x.topic, x.seq, a.id, a.type,
           case when a.extra is null then json_build_object('message', s.body)
                else ('{"message":' || s.body::text || ',' || substr(a.extra, 2))::json end,
           $13::timestamptz
      from numbered x join announced a on a.ord = x.ord join stored s on s.ord = x.ord
  )
  select 'm' as kind, ord, pk, created_at, null::bigint as seq, null::text as epoch from stored
  union all
  select 'e', k, null, null, seq, epoch from numbered`;

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

  /**
   * The batch's rows and their events in one transaction (a crash can lose neither one without
   * the other): the lock, then one statement for the rest.
   */
  private async writeBatch(items: NewMessage[]): Promise<(CommittedMessage | Error)[]> {
    const conversationIds = [...new Set(items.map((item) => item.input.conversation_id))].sort();
    const ts = new Date().toISOString();
    const { written, results } = await this.db.transaction(async (tx) => {
      const found = await tx.query<{ id: string; account_id: string; agent_id: string | null }>(LOCK_CONVERSATIONS, [conversationIds]);
      const conversations = new Map(found.map((row) => [row.id, row]));
      // Column arrays: one parameter per column, whatever the batch size.
      const ids: string[] = [];
      const accounts: string[] = [];
      const conversationCol: string[] = [];
      const roles: string[] = [];
      const contents: string[] = [];
      const metadata: string[] = [];
      const announcedOrd: number[] = [];
      const announcedId: string[] = [];
      const announcedType: string[] = [];
      const announcedExtra: (string | null)[] = [];
      const targetOrd: number[] = [];
      const targetTopic: string[] = [];
      // Per item: its message (without created_at yet) and its events (without seq yet), or why it failed.
      const results: (CommittedMessage | Error)[] = [];
      const byOrd: CommittedMessage[] = [];
      const eventsByK: TopicEvent[] = [];
      for (const item of items) {
        const conversation = conversations.get(item.input.conversation_id);
        if (!conversation || conversation.account_id !== item.accountId) {
          results.push(new MissingConversation(item.input.conversation_id));
          continue;
        }
        const message: Message = {
          id: item.id,
          conversation_id: item.input.conversation_id,
          role: item.input.role,
          content: item.input.content,
          metadata: item.input.metadata ?? {},
          created_at: '',
        };
        const committed: CommittedMessage = { message, agentId: conversation.agent_id, events: [] };
        results.push(committed);
        byOrd.push(committed);
        const ord = byOrd.length; // 1-based, as `with ordinality` numbers the input
        ids.push(item.id);
        accounts.push(item.accountId);
        conversationCol.push(message.conversation_id);
        roles.push(message.role);
        contents.push(message.content);
        metadata.push(JSON.stringify(message.metadata));
        const announcement = item.announce?.(conversation.agent_id);
        if (!announcement) continue;
        announcedOrd.push(ord);
        announcedId.push(announcement.id);
        announcedType.push(announcement.event);
        const extra = announcement.extra && Object.keys(announcement.extra).length > 0 ? announcement.extra : null;
        announcedExtra.push(extra ? JSON.stringify(extra) : null);
        const data = extra ? { message, ...extra } : { message };
        for (const topic of new Set(announcement.topics)) {
          targetOrd.push(ord);
          targetTopic.push(topic);
          const event: TopicEvent = { topic, seq: 0, epoch: '', id: announcement.id, event: announcement.event, data, ts };
          committed.events.push(event);
          eventsByK.push(event);
        }
      }
      if (byOrd.length === 0) return { written: 0, results };
      const rows = await tx.query<{
        kind: 'm' | 'e';
        ord: number | string;
        pk: number | null;
        created_at: Date | null;
        seq: number | string | null;
        epoch: string | null;
      }>(WRITE_BATCH, [
        ids,
        accounts,
        conversationCol,
        roles,
        contents,
        metadata,
        announcedOrd,
        announcedId,
        announcedType,
        announcedExtra,
        targetOrd,
        targetTopic,
        ts,
      ]);
      for (const row of rows) {
        const index = Number(row.ord) - 1;
        if (row.kind === 'm') byOrd[index]!.message.created_at = iso(row.created_at!);
        else {
          const event = eventsByK[index]!;
          event.seq = Number(row.seq);
          event.epoch = row.epoch!;
        }
      }
      return { written: byOrd.length, results };
    });
    this.options.onWritten?.(written);
    return results;
  }
}
