import type { Page, WebhookAttempt, WebhookAttemptListInput, WebhookDelivery } from '../../../protocol/index.js';
import type { SqlDriver, SqlExecutor } from '../driver.js';
import { decodeCursor, iso, toPage } from '../paging.js';

/** An event of the log as an endpoint will receive it. */
export interface LoggedEvent {
  seq: number;
  id: string;
  type: string;
  data: unknown;
  ts: string;
  accountId: string;
}

/** What the worker makes of an event: the exact body to send, and the resource whose order it keeps. */
export interface PreparedDelivery {
  body: string;
  resourceKey: string;
}

/** A delivery claimed by this node until `leaseId` expires, with what it takes to send it. */
export interface ClaimedDelivery {
  pk: number;
  id: string;
  endpointId: string;
  accountId: string;
  eventId: string;
  eventType: string;
  body: string;
  attempt: number;
  leaseId: string;
  url: string;
  /** Current secret first; the rotated-out one while its overlap lasts. */
  secrets: string[];
  scheduleStartedAt: Date;
}

export interface AttemptRecord {
  id: string;
  endpointId: string;
  accountId: string;
  eventId: string;
  eventType: string;
  attempt: number;
  statusCode: number | null;
  succeeded: boolean;
  error: string | null;
  latencyMs: number;
  responseBody: string | null;
}

/** What happens to a delivery after an attempt. */
export type Verdict =
  | { kind: 'succeeded' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'failed' }
  /** 410 Gone: the receiver asked never to be called again. */
  | { kind: 'gone' };

interface AttemptRow {
  pk: number;
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  status_code: number | null;
  succeeded: boolean;
  error: string | null;
  latency_ms: number;
  response_body: string | null;
  created_at: Date;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDelivery['status'];
  attempts: number;
  next_attempt_at: Date;
  created_at: Date;
  updated_at: Date;
}

const toAttempt = (row: AttemptRow): WebhookAttempt => ({
  id: row.id,
  webhook_id: row.endpoint_id,
  event_id: row.event_id,
  event_type: row.event_type,
  attempt: row.attempt,
  status_code: row.status_code,
  succeeded: row.succeeded,
  error: row.error,
  latency_ms: row.latency_ms,
  response_body: row.response_body,
  created_at: iso(row.created_at),
});

const toDelivery = (row: DeliveryRow): WebhookDelivery => ({
  id: row.id,
  webhook_id: row.endpoint_id,
  event_id: row.event_id,
  event_type: row.event_type,
  status: row.status,
  attempts: row.attempts,
  next_attempt_at: row.status === 'pending' ? iso(row.next_attempt_at) : null,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
});

const DELIVERY_COLUMNS = 'id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, created_at, updated_at';

/** Events read per endpoint per round when turning the log into deliveries. */
const MATERIALIZE_BATCH = 500;

/**
 * The delivery queue. Every statement works on PGlite and PostgreSQL alike; `for update skip
 * locked` lets any number of workers on any number of nodes take disjoint work (on PGlite,
 * one connection, it simply never skips).
 */
export class WebhookDeliveryRepo {
  constructor(private readonly db: SqlDriver) {}

  /** Statements outside a transaction (the test ping's attempt). */
  get executor(): SqlExecutor {
    return this.db;
  }

  /**
   * Turns events the enabled endpoints have not seen yet into pending deliveries and moves their
   * cursors, in one transaction per round. An endpoint another worker is materializing is skipped.
   * Resolves with how many deliveries were created.
   */
  async materialize(prepare: (event: LoggedEvent) => PreparedDelivery, newId: () => string, endpoints = 20): Promise<number> {
    return this.db.transaction(async (tx) => {
      const due = await tx.query<{ id: string; account_id: string; events: string[]; cursor_seq: number | string }>(
        `select e.id, e.account_id, e.events, e.cursor_seq from webhook_endpoints e
           join topic_positions p on p.topic = e.account_id || '/account'
          where e.enabled and p.seq > e.cursor_seq
          order by e.pk limit $1
          for update of e skip locked`,
        [endpoints],
      );
      let created = 0;
      for (const endpoint of due) {
        const rows = await tx.query<{ seq: number | string; id: string; type: string; data: unknown; created_at: Date | string }>(
          `select seq, id, type, data, created_at from event_log where topic = $1 and seq > $2 order by seq limit $3`,
          [`${endpoint.account_id}/account`, endpoint.cursor_seq, MATERIALIZE_BATCH],
        );
        if (rows.length === 0) continue;
        const wanted = new Set(endpoint.events);
        const deliveries = rows
          .filter((row) => wanted.has('*') || wanted.has(row.type))
          .map((row, ord) => {
            const event: LoggedEvent = {
              seq: Number(row.seq),
              id: row.id,
              type: row.type,
              data: typeof row.data === 'string' ? JSON.parse(row.data) : row.data,
              ts: new Date(row.created_at).toISOString(),
              accountId: endpoint.account_id,
            };
            const prepared = prepare(event);
            return { ord, id: newId(), event_id: event.id, event_type: event.type, resource_key: prepared.resourceKey, body: prepared.body };
          });
        if (deliveries.length > 0) {
          // In seq order, so pk order within a resource is the order the events happened in.
          await tx.query(
            `insert into webhook_deliveries (id, endpoint_id, account_id, event_id, event_type, resource_key, body)
             select v.id, $2, $3, v.event_id, v.event_type, v.resource_key, v.body
               from json_to_recordset($1::json) as v(ord int, id text, event_id text, event_type text, resource_key text, body text)
              order by v.ord
             on conflict (endpoint_id, event_id) do nothing`,
            [JSON.stringify(deliveries), endpoint.id, endpoint.account_id],
          );
          created += deliveries.length;
        }
        await tx.query('update webhook_endpoints set cursor_seq = $2 where id = $1', [endpoint.id, Number(rows.at(-1)!.seq)]);
      }
      return created;
    });
  }

  /**
   * Takes up to `limit` due deliveries for this worker until `leaseMs` from now: each the oldest
   * still pending of its endpoint and resource, so a resource's events arrive in order.
   */
  async claim(limit: number, leaseId: string, leaseMs: number): Promise<ClaimedDelivery[]> {
    if (limit <= 0) return [];
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{
        pk: number;
        id: string;
        endpoint_id: string;
        account_id: string;
        event_id: string;
        event_type: string;
        body: string;
        attempts: number;
        schedule_started_at: Date;
      }>(
        `with due as (
           select d.pk from webhook_deliveries d
             join webhook_endpoints e on e.id = d.endpoint_id and e.enabled
            where d.status = 'pending' and d.next_attempt_at <= now()
              and (d.leased_until is null or d.leased_until < now())
              and not exists (
                select 1 from webhook_deliveries p
                 where p.endpoint_id = d.endpoint_id and p.resource_key = d.resource_key and p.status = 'pending' and p.pk < d.pk)
            order by d.next_attempt_at, d.pk
            limit $1
            for update of d skip locked
         )
         update webhook_deliveries d
            set lease_id = $2, leased_until = now() + $3 * interval '1 millisecond', attempts = d.attempts + 1, updated_at = now()
           from due where d.pk = due.pk
         returning d.pk, d.id, d.endpoint_id, d.account_id, d.event_id, d.event_type, d.body, d.attempts, d.schedule_started_at`,
        [limit, leaseId, leaseMs],
      );
      if (rows.length === 0) return [];
      const endpoints = await tx.query<{ id: string; url: string; secret: string; previous_secret: string | null; overlap: boolean | null }>(
        `select id, url, secret, previous_secret, previous_secret_expires_at > now() as overlap from webhook_endpoints where id = any($1::text[])`,
        [[...new Set(rows.map((row) => row.endpoint_id))]],
      );
      const byId = new Map(endpoints.map((endpoint) => [endpoint.id, endpoint]));
      return rows
        .sort((a, b) => Number(a.pk) - Number(b.pk))
        .map((row) => {
          const endpoint = byId.get(row.endpoint_id)!;
          return {
            pk: Number(row.pk),
            id: row.id,
            endpointId: row.endpoint_id,
            accountId: row.account_id,
            eventId: row.event_id,
            eventType: row.event_type,
            body: row.body,
            attempt: row.attempts,
            leaseId,
            url: endpoint.url,
            secrets: endpoint.previous_secret && endpoint.overlap ? [endpoint.secret, endpoint.previous_secret] : [endpoint.secret],
            scheduleStartedAt: new Date(row.schedule_started_at),
          };
        });
    });
  }

  /**
   * Records an attempt and its consequence, in one transaction. A late answer for a lease that
   * expired (another worker took the delivery over) is recorded but changes nothing else.
   */
  async record(delivery: Pick<ClaimedDelivery, 'pk' | 'leaseId'>, attempt: AttemptRecord, verdict: Verdict, disableAfterMs: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.insertAttempt(tx, attempt);
      const status = verdict.kind === 'succeeded' ? 'succeeded' : verdict.kind === 'retry' ? 'pending' : 'failed';
      const delayMs = verdict.kind === 'retry' ? verdict.delayMs : 0;
      const owned = await tx.query(
        `update webhook_deliveries set status = $3, next_attempt_at = now() + $4 * interval '1 millisecond',
                lease_id = null, leased_until = null, updated_at = now()
          where pk = $1 and lease_id = $2 returning pk`,
        [delivery.pk, delivery.leaseId, status, delayMs],
      );
      if (owned.length === 0) return;
      if (verdict.kind === 'succeeded') {
        await tx.query('update webhook_endpoints set failing_since = null where id = $1 and failing_since is not null', [attempt.endpointId]);
      } else if (verdict.kind === 'gone') {
        await tx.query(`update webhook_endpoints set enabled = false, disabled_reason = 'The endpoint answered 410 Gone', updated_at = now() where id = $1`, [
          attempt.endpointId,
        ]);
      } else {
        // Failing without a success for longer than disableAfterMs: disabled, with the reason.
        await tx.query(
          `update webhook_endpoints set failing_since = coalesce(failing_since, now()),
                  enabled = case when failing_since < now() - $2 * interval '1 millisecond' then false else enabled end,
                  disabled_reason = case when failing_since < now() - $2 * interval '1 millisecond'
                    then 'Every delivery failed since ' || to_char(failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') else disabled_reason end,
                  updated_at = now()
            where id = $1`,
          [attempt.endpointId, disableAfterMs],
        );
      }
    });
  }

  async insertAttempt(db: SqlExecutor, attempt: AttemptRecord): Promise<WebhookAttempt> {
    const [row] = await db.query<AttemptRow>(
      `insert into webhook_attempts (id, endpoint_id, account_id, event_id, event_type, attempt, status_code, succeeded, error, latency_ms, response_body)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       returning pk, id, endpoint_id, event_id, event_type, attempt, status_code, succeeded, error, latency_ms, response_body, created_at`,
      [
        attempt.id,
        attempt.endpointId,
        attempt.accountId,
        attempt.eventId,
        attempt.eventType,
        attempt.attempt,
        attempt.statusCode,
        attempt.succeeded,
        attempt.error,
        attempt.latencyMs,
        attempt.responseBody,
      ],
    );
    return toAttempt(row!);
  }

  /** Attempts of one endpoint of the account, newest first; null when the endpoint is not the account's. */
  async attempts(accountId: string, input: WebhookAttemptListInput): Promise<Page<WebhookAttempt> | null> {
    const owner = await this.db.query('select 1 from webhook_endpoints where id = $1 and account_id = $2', [input.webhook_id, accountId]);
    if (owner.length === 0) return null;
    const before = decodeCursor(input.cursor);
    const rows = await this.db.query<AttemptRow>(
      `select pk, id, endpoint_id, event_id, event_type, attempt, status_code, succeeded, error, latency_ms, response_body, created_at
         from webhook_attempts
        where endpoint_id = $1 and ($2::text is null or event_id = $2) and ($3::bigint is null or pk < $3)
        order by pk desc limit $4`,
      [input.webhook_id, input.event_id ?? null, before, input.limit + 1],
    );
    return toPage(
      rows.map((row) => ({ ...row, pk: Number(row.pk) })),
      input.limit,
      toAttempt,
    );
  }

  /**
   * Puts an event back in the endpoint's queue on a fresh schedule. An event the endpoint never
   * had a delivery for is taken from the log while the log still holds it. Null: no such event.
   */
  async redeliver(
    accountId: string,
    endpointId: string,
    eventId: string,
    prepare: (event: LoggedEvent) => PreparedDelivery,
    newId: () => string,
  ): Promise<WebhookDelivery | null> {
    return this.db.transaction(async (tx) => {
      const [reset] = await tx.query<DeliveryRow>(
        `update webhook_deliveries set status = 'pending', attempts = 0, next_attempt_at = now(), schedule_started_at = now(),
                lease_id = null, leased_until = null, updated_at = now()
          where endpoint_id = $1 and event_id = $2 and account_id = $3 returning ${DELIVERY_COLUMNS}`,
        [endpointId, eventId, accountId],
      );
      if (reset) return toDelivery(reset);
      const [logged] = await tx.query<{ seq: number | string; id: string; type: string; data: unknown; created_at: Date | string }>(
        `select seq, id, type, data, created_at from event_log where topic = $1 and id = $2 limit 1`,
        [`${accountId}/account`, eventId],
      );
      if (!logged) return null;
      const prepared = prepare({
        seq: Number(logged.seq),
        id: logged.id,
        type: logged.type,
        data: typeof logged.data === 'string' ? JSON.parse(logged.data) : logged.data,
        ts: new Date(logged.created_at).toISOString(),
        accountId,
      });
      const [row] = await tx.query<DeliveryRow>(
        `insert into webhook_deliveries (id, endpoint_id, account_id, event_id, event_type, resource_key, body)
         values ($1, $2, $3, $4, $5, $6, $7) returning ${DELIVERY_COLUMNS}`,
        [newId(), endpointId, accountId, logged.id, logged.type, prepared.resourceKey, prepared.body],
      );
      return toDelivery(row!);
    });
  }

  /** Deliveries still owed, for the queue-depth gauge. */
  async pendingCount(): Promise<number> {
    const [row] = await this.db.query<{ n: number | string }>(`select count(*) as n from webhook_deliveries where status = 'pending'`);
    return Number(row?.n ?? 0);
  }

  /** The secrets an endpoint signs with now (for the test ping); null when not the account's. */
  async signingTarget(accountId: string, endpointId: string): Promise<{ url: string; secrets: string[] } | null> {
    const [row] = await this.db.query<{ url: string; secret: string; previous_secret: string | null; overlap: boolean | null }>(
      `select url, secret, previous_secret, previous_secret_expires_at > now() as overlap from webhook_endpoints where id = $1 and account_id = $2`,
      [endpointId, accountId],
    );
    if (!row) return null;
    return { url: row.url, secrets: row.previous_secret && row.overlap ? [row.secret, row.previous_secret] : [row.secret] };
  }
}
