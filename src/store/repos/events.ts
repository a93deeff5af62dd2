import type { EventDraft, TopicEvent, TopicPosition } from '../../kernel/topic-event.js';
import type { SqlExecutor } from '../driver.js';
import { GroupCommit } from '../group-commit.js';

/**
 * Numbers and stores events in the caller's transaction. One statement: the topics' rows in
 * `topic_positions` are bumped (in topic order, so two writers never lock them in opposite
 * orders) and each event gets the next seqs of its topics; the rows stay locked until commit.
 * A topic seen for the first time gets a fresh epoch.
 */
/**
 * A CTE moving each topic of `counts (topic, n)` on by n, created at n with a new epoch if new;
 * in topic order, so that concurrent writers lock topics in one order. Its rows: the topic's
 * last seq after the bump and its epoch (the batch owns seqs (seq - n, seq]).
 */
export const BUMP_POSITIONS = `bumped as (
    insert into topic_positions as p (topic, seq, epoch)
    select topic, n, substr(md5(random()::text || clock_timestamp()::text), 1, 8) from counts order by topic
    on conflict (topic) do update set seq = p.seq + excluded.seq, updated_at = now()
    returning p.topic, p.seq, p.epoch
  )`;

const APPEND = `
  with drafts as (
    select * from json_to_recordset($1::json) as d(n int, id text, type text, data json)
  ), input as (
    select t.ord::int as ord, t.n::int as n, t.topic from unnest($2::int[], $3::int[], $4::text[]) as t(ord, n, topic)
  ), counts as (
    select topic, count(*)::bigint as n from input group by topic
  ), ${BUMP_POSITIONS}, numbered as (
    select i.ord, i.n, i.topic, b.epoch,
           b.seq - c.n + row_number() over (partition by i.topic order by i.ord) as seq
      from input i join counts c using (topic) join bumped b using (topic)
  ), logged as (
    insert into event_log (topic, seq, id, type, data, created_at)
    select x.topic, x.seq, d.id, d.type, d.data, $5::timestamptz from numbered x join drafts d using (n)
  )
  select ord, seq, epoch from numbered order by ord`;

/** Adds the events to the transaction `db` runs in; returns them numbered, one per topic each. */
export async function appendEvents(db: SqlExecutor, drafts: readonly EventDraft[], ts = new Date().toISOString()): Promise<TopicEvent[]> {
  // Each event's data goes once; its topics go as plain arrays (ord, event number, topic).
  const bodies: { n: number; id: string; type: string; data: unknown }[] = [];
  const ords: number[] = [];
  const ns: number[] = [];
  const topics: string[] = [];
  const events: TopicEvent[] = [];
  drafts.forEach((draft, n) => {
    bodies.push({ n, id: draft.id, type: draft.event, data: draft.data });
    for (const topic of new Set(draft.topics)) {
      ords.push(events.length);
      ns.push(n);
      topics.push(topic);
      events.push({ topic, seq: 0, epoch: '', id: draft.id, event: draft.event, data: draft.data, ts });
    }
  });
  if (events.length === 0) return [];
  const numbered = await db.query<{ ord: number; seq: number | string; epoch: string }>(APPEND, [JSON.stringify(bodies), ords, ns, topics, ts]);
  for (const row of numbered) {
    const event = events[row.ord]!;
    event.seq = Number(row.seq);
    event.epoch = row.epoch;
  }
  return events;
}

export interface HistoryRead {
  /**
   * True when `events` holds every event after `since` in `epoch`, up to `position`. False when
   * the epoch differs or the log no longer reaches back to `since + 1` (or more than `max` are
   * missing): then `events` is empty, never a partial replay, and the subscriber must refetch.
   */
  recovered: boolean;
  events: TopicEvent[];
  position: TopicPosition;
}

interface LogRow {
  seq: number | string;
  id: string;
  type: string;
  data: unknown;
  created_at: Date | string;
}

/**
 * The event log: the outbox that nodes announce from and the window that subscribers resume
 * from. Events written outside a handler's own transaction (stream deltas, expiries) go through
 * a group commit, a batch per statement, in submission order.
 */
export class EventLog {
  private readonly writer: GroupCommit<EventDraft, TopicEvent[]>;

  constructor(
    private readonly db: SqlExecutor,
    options: { maxBatch: number },
  ) {
    this.writer = new GroupCommit<EventDraft, TopicEvent[]>({
      maxBatch: options.maxBatch,
      // One batch at a time keeps seq order equal to submission order on this node.
      maxInFlight: 1,
      write: async (drafts) => {
        const events = await appendEvents(this.db, drafts);
        const byId = new Map<string, TopicEvent[]>();
        for (const event of events) {
          let list = byId.get(event.id);
          if (!list) byId.set(event.id, (list = []));
          list.push(event);
        }
        return drafts.map((draft) => byId.get(draft.id) ?? []);
      },
    });
  }

  /** Stores one event on its own (committed when this resolves), numbered on each of its topics. */
  append(draft: EventDraft): Promise<TopicEvent[]> {
    return this.writer.submit(draft);
  }

  flush(): Promise<void> {
    return this.writer.drain();
  }

  /**
   * The topics' positions. A topic not seen before is created here with its epoch, so that a
   * subscriber told `seq 0` of an epoch can later resume in that same epoch.
   */
  async positions(topics: readonly string[]): Promise<Map<string, TopicPosition>> {
    const unique = [...new Set(topics)].sort();
    const result = new Map<string, TopicPosition>();
    if (unique.length === 0) return result;
    let rows = await this.db.query<{ topic: string; seq: number | string; epoch: string }>(
      'select topic, seq, epoch from topic_positions where topic = any($1::text[])',
      [unique],
    );
    if (rows.length < unique.length) {
      const found = new Set(rows.map((row) => row.topic));
      const missing = unique.filter((topic) => !found.has(topic));
      await this.db.query(
        `insert into topic_positions (topic, seq, epoch)
         select t, 0, substr(md5(random()::text || clock_timestamp()::text || t), 1, 8) from unnest($1::text[]) t
         on conflict (topic) do nothing`,
        [missing],
      );
      rows = await this.db.query('select topic, seq, epoch from topic_positions where topic = any($1::text[])', [unique]);
    }
    for (const row of rows) result.set(row.topic, { seq: Number(row.seq), epoch: row.epoch });
    return result;
  }

  async position(topic: string): Promise<TopicPosition> {
    return (await this.positions([topic])).get(topic)!;
  }

  /** Every event after `since` of `epoch`, oldest first, or recovered: false. At most `max`. */
  async history(topic: string, since: number, epoch: string, max: number): Promise<HistoryRead> {
    const position = await this.position(topic);
    if (epoch !== position.epoch || since > position.seq || since < 0 || position.seq - since > max) {
      return { recovered: false, events: [], position };
    }
    if (since === position.seq) return { recovered: true, events: [], position };
    const rows = await this.db.query<LogRow>('select seq, id, type, data, created_at from event_log where topic = $1 and seq > $2 and seq <= $3 order by seq', [
      topic,
      since,
      position.seq,
    ]);
    const events = rows.map((row) => toEvent(topic, position.epoch, row));
    // Retention may have trimmed the start: a replay is never partial.
    if (events.length !== position.seq - since || events[0]!.seq !== since + 1) return { recovered: false, events: [], position };
    return { recovered: true, events, position };
  }

  /** The last `limit` events of a topic, oldest first (for snapshots of replies being streamed). */
  async recent(topic: string, limit: number): Promise<TopicEvent[]> {
    const [head] = await this.db.query<{ epoch: string }>('select epoch from topic_positions where topic = $1', [topic]);
    if (!head) return [];
    const rows = await this.db.query<LogRow>('select seq, id, type, data, created_at from event_log where topic = $1 order by seq desc limit $2', [
      topic,
      limit,
    ]);
    return rows.reverse().map((row) => toEvent(topic, head.epoch, row));
  }

  /**
   * Deletes events older than `before`, a bounded chunk per statement; resolves with how many.
   * An account-topic event an enabled webhook endpoint has not turned into a delivery yet is
   * kept: it is still owed (deliveries carry their own body once made).
   */
  async trim(before: Date, chunk = 10_000): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.db.query<{ n: number | string }>(
        `with gone as (
           delete from event_log where ctid in (
             select l.ctid from event_log l
              where l.created_at < $1
                and not exists (select 1 from webhook_endpoints e where e.enabled and l.topic = e.account_id || '/account' and l.seq > e.cursor_seq)
              limit $2) returning 1
         ) select count(*) as n from gone`,
        [before.toISOString(), chunk],
      );
      const deleted = Number(rows[0]?.n ?? 0);
      total += deleted;
      if (deleted < chunk) return total;
    }
  }
}

function toEvent(topic: string, epoch: string, row: LogRow): TopicEvent {
  return {
    topic,
    seq: Number(row.seq),
    epoch,
    id: row.id,
    event: row.type,
    data: typeof row.data === 'string' ? JSON.parse(row.data) : row.data,
    ts: new Date(row.created_at).toISOString(),
  };
}
