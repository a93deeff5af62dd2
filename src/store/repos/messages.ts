import type { Message, MessageCreateInput, MessageListInput, MESSAGE_LIST_FIELDS, Page, SortOrder } from '../../../protocol/index.js';
import type { TopicEvent } from '../../kernel/topic-event.js';
import type { SqlDriver } from '../driver.js';
import { GroupCommit } from '../group-commit.js';
import { BUMP_POSITIONS } from './events.js';
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
 * The rest of the batch in one statement: the messages (one array per column, in submission order,
 * `created_at` read from the clock after the lock), the conversations' counters, the topics' next
 * seqs (`topic_positions` rows bumped in topic order and locked until commit) and the event rows,
 * whose data is built here from the inserted rows instead of being sent again. Each event copy
 * comes with its rank on its topic within the batch (counted by the caller), so its seq is the
 * topic's first new seq plus that rank: no sort, no window. Answers one row: the messages'
 * created_at in submission order and each topic's last seq and epoch (the caller derives the
 * events' seqs). Column arrays, not JSON rows: PostgreSQL parses them several times faster.
 */
const WRITE_BATCH = `
  with input as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
      with ordinality as v(id, account_id, conversation_id, role, content, metadata, event_id, event_type, extra, o)
  ), ins as (
    insert into messages (id, account_id, conversation_id, role, content, metadata, created_at)
    select id, account_id, conversation_id, role, content, metadata::jsonb, clock_timestamp() from input order by o
    returning id, conversation_id, role, content, metadata, created_at
  ), counted as (
    update conversations c set message_count = c.message_count + n.added, updated_at = now()
      from (select conversation_id, count(*)::int as added from input group by conversation_id) n
     where c.id = n.conversation_id
  ), stored as (
    select o, created_at, event_id, event_type,
           case when extra is null then json_build_object('message', body) else ('{"message":' || body::text || ',' || substr(extra, 2))::json end as data
      from (
        select v.o, i.created_at, v.event_id, v.event_type, v.extra,
               json_build_object('id', i.id, 'conversation_id', i.conversation_id, 'role', i.role, 'content', i.content, 'metadata', i.metadata,
                                 'created_at', to_char(i.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) as body
          from ins i join input v using (id)
      ) s
  ), targets as (
    select * from unnest($10::int[], $11::text[], $12::int[]) as t(o, topic, r)
  ), counts as (
    select * from unnest($13::text[], $14::int[]) as c(topic, n)
  ), ${BUMP_POSITIONS}, numbered as (
    -- The batch takes seqs (seq - n, seq] of each topic; r is the event's rank among them.
    select t.o, t.topic, b.epoch, b.seq - c.n + t.r as seq from targets t join bumped b using (topic) join counts c using (topic)
  ), logged as (
    insert into event_log (topic, seq, id, type, data, created_at)
    select x.topic, x.seq, s.event_id, s.event_type, s.data, $15::timestamptz from numbered x join stored s using (o)
  )
  select (select array_agg(created_at order by o) from stored) as created_at,
         (select array_agg(topic) from bumped) as topics, (select array_agg(seq) from bumped) as seqs, (select array_agg(epoch) from bumped) as epochs`;

export class MessageRepo {
  /** One group commit per stream; a conversation's writes always go to the same one. */
  private readonly writers: GroupCommit<NewMessage, CommittedMessage>[];

  constructor(
    private readonly db: SqlDriver,
    private readonly options: { maxBatch: number; streams: number; onWritten?: (rows: number) => void },
  ) {
    // One batch in flight per stream: a stream's batches commit in the order they were formed,
    // so a conversation's messages are numbered (pk, created_at, event seq) in submission order.
    // Streams run side by side on separate connections (PostgreSQL); they never share a
    // conversation, and the locks taken by each batch order them where they share a topic.
    this.writers = Array.from(
      { length: Math.max(1, options.streams) },
      () => new GroupCommit<NewMessage, CommittedMessage>({ maxBatch: options.maxBatch, maxInFlight: 1, write: (items) => this.writeBatch(items) }),
    );
  }

  /** Resolves after the row has committed; rejects with MissingConversation when it has nowhere to go. */
  create(message: NewMessage): Promise<CommittedMessage> {
    const writers = this.writers;
    const writer = writers.length === 1 ? writers[0]! : writers[streamOf(message.input.conversation_id, writers.length)]!;
    return writer.submit(message);
  }

  /** Waits for every accepted write to commit. */
  async flush(): Promise<void> {
    await Promise.all(this.writers.map((writer) => writer.drain()));
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
      const found = await tx.query<{ id: string; account_id: string; agent_id: string | null }>(LOCK_CONVERSATIONS, [conversationIds], 'message_batch_lock');
      const conversations = new Map(found.map((row) => [row.id, row]));
      // Per item: its message (created_at comes back from the statement) and its events (their seqs too).
      const results: (CommittedMessage | Error)[] = [];
      const byOrd: CommittedMessage[] = [];
      // One array per column: PostgreSQL parses these far faster than the same rows as JSON.
      const ids: string[] = [];
      const accounts: string[] = [];
      const conversationCol: string[] = [];
      const roles: string[] = [];
      const contents: string[] = [];
      const metadata: string[] = [];
      const eventIds: (string | null)[] = [];
      const eventTypes: (string | null)[] = [];
      const extras: (string | null)[] = [];
      const targetOrds: number[] = [];
      const targetTopics: string[] = [];
      const targetRanks: number[] = [];
      const perTopic = new Map<string, number>();
      const ranked: { event: TopicEvent; rank: number }[] = [];
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
        const announcement = item.announce?.(conversation.agent_id);
        const extra = announcement?.extra && Object.keys(announcement.extra).length > 0 ? announcement.extra : null;
        const topics = announcement ? [...new Set(announcement.topics)] : [];
        // Each event's rank on its topic within the batch: its seq is the topic's first new seq plus that.
        const ranks = topics.map((topic) => {
          const rank = (perTopic.get(topic) ?? 0) + 1;
          perTopic.set(topic, rank);
          return rank;
        });
        ids.push(item.id);
        accounts.push(item.accountId);
        conversationCol.push(message.conversation_id);
        roles.push(message.role);
        contents.push(message.content);
        metadata.push(JSON.stringify(message.metadata));
        eventIds.push(announcement?.id ?? null);
        eventTypes.push(announcement?.event ?? null);
        extras.push(extra ? JSON.stringify(extra) : null);
        for (let index = 0; index < topics.length; index++) {
          targetOrds.push(byOrd.length); // 1-based, as `with ordinality` numbers the input
          targetTopics.push(topics[index]!);
          targetRanks.push(ranks[index]!);
        }
        if (!announcement) continue;
        const data = extra ? { message, ...extra } : { message };
        topics.forEach((topic, index) => {
          const event: TopicEvent = { topic, seq: 0, epoch: '', id: announcement.id, event: announcement.event, data, ts };
          committed.events.push(event);
          ranked.push({ event, rank: ranks[index]! });
        });
      }
      if (byOrd.length === 0) return { written: 0, results };
      const [row] = await tx.query<{ created_at: (Date | string)[]; topics: string[] | null; seqs: (number | string)[] | null; epochs: string[] | null }>(
        WRITE_BATCH,
        [
          ids,
          accounts,
          conversationCol,
          roles,
          contents,
          metadata,
          eventIds,
          eventTypes,
          extras,
          targetOrds,
          targetTopics,
          targetRanks,
          [...perTopic.keys()],
          [...perTopic.values()],
          ts,
        ],
        // Prepared: planning this statement costs PGlite more than running it for a small batch.
        'message_batch',
      );
      // One row: the messages' created_at in submission order, and each topic's last seq after the batch.
      row!.created_at.forEach((createdAt, index) => {
        byOrd[index]!.message.created_at = iso(createdAt);
      });
      const lastSeqs = new Map<string, { seq: number; epoch: string }>();
      (row!.topics ?? []).forEach((topic, index) => lastSeqs.set(topic, { seq: Number(row!.seqs![index]), epoch: row!.epochs![index]! }));
      // The batch took each topic's seqs (last - count, last], in rank order.
      for (const { event, rank } of ranked) {
        const last = lastSeqs.get(event.topic)!;
        event.seq = last.seq - perTopic.get(event.topic)! + rank;
        event.epoch = last.epoch;
      }
      return { written: byOrd.length, results };
    });
    this.options.onWritten?.(written);
    return results;
  }
}

/** The stream a conversation's writes go to: FNV-1a of its id. */
function streamOf(conversationId: string, streams: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < conversationId.length; i++) hash = Math.imul(hash ^ conversationId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % streams;
}
