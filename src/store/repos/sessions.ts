import type { Page, Session, SessionCreateInput, SessionListInput, State, StateVersion, VersionListInput } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { decodeCursor, iso, toPage } from '../paging.js';

export interface SessionRow {
  pk: number;
  id: string;
  agent_id: string;
  user_id: string | null;
  state: State;
  version: number;
  metadata: Session['metadata'];
  memory_count: number;
  turn_count: number;
  created_at: Date | string;
  updated_at: Date | string;
  ttl_expires_at: Date | string;
}

const FIELDS = ['pk', 'id', 'agent_id', 'user_id', 'state', 'version', 'metadata', 'memory_count', 'turn_count', 'created_at', 'updated_at', 'ttl_expires_at'];
const COLUMNS = FIELDS.join(', ');
const QUALIFIED = FIELDS.map((field) => `sessions.${field}`).join(', ');
/** Every query repeats this: an expired session is gone at once, swept or not. */
export const LIVE = 'ttl_expires_at > now()';

export function toSession(row: SessionRow): Session {
  return {
    id: row.id,
    agent_id: row.agent_id,
    user_id: row.user_id,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    state: row.state,
    metadata: row.metadata,
    memory_count: row.memory_count,
    turn_count: row.turn_count,
    ttl_expires_at: iso(row.ttl_expires_at),
  };
}

/** A session and the state version it now holds. */
export interface VersionedSession {
  session: Session;
  version: number;
}

/** Why a versioned write changed nothing. */
export type WriteMiss = { kind: 'missing' } | { kind: 'conflict'; current: number } | { kind: 'no_version'; latest: number };

export interface ExpiredSession {
  id: string;
  account_id: string;
  ttl_expires_at: string;
}

const versioned = (row: SessionRow): VersionedSession => ({ session: toSession(row), version: row.version });

// Writes that create a version do it in the same statement as the session row's update: the row
// lock serialises concurrent writers, and each one's `version + 1` is computed on the row as the
// previous writer left it (READ COMMITTED re-evaluation), so no version is lost or duplicated.
const RECORD_VERSION = `v as (insert into session_versions (session_id, version, state, reasoning) select id, version, state, $reasoning from s)`;

export class SessionRepo {
  constructor(private readonly db: SqlExecutor) {}

  async create(accountId: string, id: string, input: SessionCreateInput): Promise<Session> {
    const [row] = await this.db.query<SessionRow>(
      `with s as (
         insert into sessions (id, account_id, agent_id, user_id, state, metadata, ttl_expires_at)
         values ($1, $2, $3, $4, $5, $6, now() + $7::int * interval '1 second') returning ${COLUMNS}
       ), ${RECORD_VERSION.replace('$reasoning', 'null::text')}
       select * from s`,
      [id, accountId, input.agent_id, input.user_id ?? null, JSON.stringify(input.initial_state), JSON.stringify(input.metadata ?? {}), input.ttl_seconds],
    );
    return toSession(row!);
  }

  async get(accountId: string, id: string): Promise<VersionedSession | null> {
    const [row] = await this.db.query<SessionRow>(`select ${COLUMNS} from sessions where id = $1 and account_id = $2 and ${LIVE}`, [id, accountId]);
    return row ? versioned(row) : null;
  }

  async exists(accountId: string, id: string): Promise<boolean> {
    return (await this.db.query(`select 1 from sessions where id = $1 and account_id = $2 and ${LIVE}`, [id, accountId])).length > 0;
  }

  /** The identity key of a session of this account, for `starting_after`; null when it is not one. */
  async pagingKey(accountId: string, id: string): Promise<number | null> {
    // Expiry is not checked: a session that expired while a client paged still marks its place.
    const [row] = await this.db.query<{ pk: number }>('select pk from sessions where id = $1 and account_id = $2', [id, accountId]);
    return row ? Number(row.pk) : null;
  }

  async list(accountId: string, input: SessionListInput, afterPk: number | null): Promise<Page<Session>> {
    const rows = await this.db.query<SessionRow>(
      `select ${COLUMNS} from sessions
        where account_id = $1 and ${LIVE} and ($2::bigint is null or pk < $2)
          and ($3::text is null or agent_id = $3) and ($4::text is null or user_id = $4)
          and ($6::timestamptz is null or date_trunc('milliseconds', created_at) > $6) and ($7::timestamptz is null or date_trunc('milliseconds', created_at) < $7)
        order by pk desc limit $5`,
      [
        accountId,
        afterPk ?? decodeCursor(input.cursor),
        input.agent_id ?? null,
        input.user_id ?? null,
        input.limit + 1,
        input.created_after ?? null,
        input.created_before ?? null,
      ],
    );
    return toPage(rows, input.limit, toSession);
  }

  /** Versions, turns and memories go with it (foreign keys cascade). */
  async delete(accountId: string, id: string): Promise<boolean> {
    return (await this.db.query(`delete from sessions where id = $1 and account_id = $2 and ${LIVE} returning id`, [id, accountId])).length > 0;
  }

  async updateState(
    accountId: string,
    input: { session_id: string; state: State; reasoning?: string | undefined; expected_version?: number | undefined; ttl_seconds?: number | undefined },
    /** `merge`: the given top-level keys replace the current ones, the rest is kept (PATCH). */
    mode: 'replace' | 'merge' = 'replace',
  ): Promise<VersionedSession | WriteMiss> {
    const rows = await this.db.query<SessionRow>(
      `with s as (
         update sessions set state = ${mode === 'merge' ? 'state || $3::jsonb' : '$3'}, version = version + 1, updated_at = now(),
                ttl_expires_at = case when $5::int is null then ttl_expires_at else now() + $5::int * interval '1 second' end
          where id = $1 and account_id = $2 and ${LIVE} and ($4::int is null or version = $4::int)
         returning ${COLUMNS}
       ), ${RECORD_VERSION.replace('$reasoning', '$6::text')}
       select * from s`,
      [input.session_id, accountId, JSON.stringify(input.state), input.expected_version ?? null, input.ttl_seconds ?? null, input.reasoning ?? null],
    );
    return rows[0] ? versioned(rows[0]) : this.explainMiss(accountId, input.session_id, input.expected_version, null);
  }

  /** A new version holding version `target`'s state; history is never rewritten. */
  async rollback(
    accountId: string,
    input: { session_id: string; version: number; reasoning: string; expected_version?: number | undefined },
  ): Promise<VersionedSession | WriteMiss> {
    const rows = await this.db.query<SessionRow>(
      `with target as (
         select state from session_versions where session_id = $1 and version = $3
       ), s as (
         update sessions set state = target.state, version = sessions.version + 1, updated_at = now()
           from target
          where sessions.id = $1 and sessions.account_id = $2 and sessions.${LIVE} and ($4::int is null or sessions.version = $4::int)
         returning ${QUALIFIED}
       ), ${RECORD_VERSION.replace('$reasoning', '$5::text')}
       select * from s`,
      [input.session_id, accountId, input.version, input.expected_version ?? null, input.reasoning],
    );
    return rows[0] ? versioned(rows[0]) : this.explainMiss(accountId, input.session_id, input.expected_version, input.version);
  }

  /** A new session whose version 0 is `version` (default: latest) of the source; metadata names the source. */
  async fork(
    accountId: string,
    input: { session_id: string; version?: number | undefined; newId: string; ttl_seconds: number },
  ): Promise<VersionedSession | WriteMiss> {
    const rows = await this.db.query<SessionRow>(
      `with src as (
         select o.agent_id, o.user_id, o.metadata, v.version, v.state
           from sessions o join session_versions v on v.session_id = o.id
          where o.id = $1 and o.account_id = $2 and o.${LIVE} and v.version = coalesce($3::int, o.version)
       ), s as (
         insert into sessions (id, account_id, agent_id, user_id, state, metadata, ttl_expires_at)
         select $4, $2, agent_id, user_id, state,
                metadata || jsonb_build_object('forked_from', $1::text, 'forked_from_version', version),
                now() + $5::int * interval '1 second'
           from src
         returning ${COLUMNS}
       ), ${RECORD_VERSION.replace('$reasoning', `'forked from ' || $1::text || ' version ' || (select version from src)`)}
       select * from s`,
      [input.session_id, accountId, input.version ?? null, input.newId, input.ttl_seconds],
    );
    return rows[0] ? versioned(rows[0]) : this.explainMiss(accountId, input.session_id, undefined, input.version ?? null);
  }

  /** Replaces metadata and/or resets the lifetime; state and version are untouched. Null when missing. */
  async update(
    accountId: string,
    input: { session_id: string; metadata?: Session['metadata'] | null | undefined; ttl_seconds?: number | null | undefined },
  ): Promise<VersionedSession | null> {
    const [row] = await this.db.query<SessionRow>(
      `update sessions set metadata = coalesce($3::jsonb, metadata), updated_at = now(),
              ttl_expires_at = case when $4::int is null then ttl_expires_at else now() + $4::int * interval '1 second' end
        where id = $1 and account_id = $2 and ${LIVE}
       returning ${COLUMNS}`,
      [input.session_id, accountId, input.metadata == null ? null : JSON.stringify(input.metadata), input.ttl_seconds ?? null],
    );
    return row ? versioned(row) : null;
  }

  /** The current state, its version and when that version was written. */
  async currentState(accountId: string, id: string): Promise<{ version: number; state: State; created_at: string; updated_at: string } | null> {
    const [row] = await this.db.query<{ version: number; state: State; created_at: Date | string; updated_at: Date | string }>(
      `select s.version, s.state, v.created_at, s.updated_at from sessions s
         join session_versions v on v.session_id = s.id and v.version = s.version
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [id, accountId],
    );
    return row ? { version: row.version, state: row.state, created_at: iso(row.created_at), updated_at: iso(row.updated_at) } : null;
  }

  /**
   * Versions with their states, newest first, after `sinceVersion` and before the cursor's
   * version. Null when the session does not exist.
   */
  async history(
    accountId: string,
    input: { session_id: string; limit: number; since_version?: number | undefined; cursor?: string | undefined },
  ): Promise<{ page: Page<{ version: number; state: State; created_at: string; reasoning: string | null }>; current: number } | null> {
    const rows = await this.db.query<{ current: number; version: number | null; state: State | null; created_at: Date | null; reasoning: string | null }>(
      `select s.version as current, v.version, v.state, v.created_at, v.reasoning from sessions s
         left join lateral (
           select version, state, created_at, reasoning from session_versions
            where session_id = s.id and ($3::int is null or version < $3::int) and ($4::int is null or version > $4::int)
            order by version desc limit $5
         ) v on true
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [input.session_id, accountId, decodeCursor(input.cursor), input.since_version ?? null, input.limit + 1],
    );
    if (rows.length === 0) return null;
    const present = rows.filter((row) => row.version !== null).map((row) => ({ ...row, pk: row.version! }));
    const page = toPage(present, input.limit, (row) => ({ version: row.pk, state: row.state!, created_at: iso(row.created_at!), reasoning: row.reasoning }));
    return { page, current: rows[0]!.current };
  }

  /** Newest first. Null when the session does not exist (it always has version 0). */
  async versions(accountId: string, input: VersionListInput): Promise<Page<StateVersion> | null> {
    const rows = await this.db.query<{ version: number | null; created_at: Date | null; reasoning: string | null }>(
      `select v.version, v.created_at, v.reasoning from sessions s
         left join lateral (
           select version, created_at, reasoning from session_versions
            where session_id = s.id and ($3::int is null or version < $3::int)
            order by version desc limit $4
         ) v on true
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [input.session_id, accountId, decodeCursor(input.cursor), input.limit + 1],
    );
    if (rows.length === 0) return null;
    const present = rows.filter((row) => row.version !== null).map((row) => ({ ...row, pk: row.version! }));
    return toPage(present, input.limit, (row) => ({ version: row.pk, created_at: iso(row.created_at!), reasoning: row.reasoning }));
  }

  /**
   * Deletes up to `limit` expired sessions (with everything they hold). SKIP LOCKED lets several
   * nodes sweep at once without waiting on each other or deleting a row twice.
   */
  async sweepExpired(limit: number): Promise<ExpiredSession[]> {
    const rows = await this.db.query<{ id: string; account_id: string; ttl_expires_at: Date | string }>(
      `delete from sessions where pk in (
         select pk from sessions where ttl_expires_at <= now() order by ttl_expires_at limit $1 for update skip locked
       ) returning id, account_id, ttl_expires_at`,
      [limit],
    );
    return rows.map((row) => ({ id: row.id, account_id: row.account_id, ttl_expires_at: iso(row.ttl_expires_at) }));
  }

  /** After a versioned write matched nothing: was the session missing, the version stale, or the target absent? */
  private async explainMiss(accountId: string, id: string, expected: number | undefined, target: number | null): Promise<WriteMiss> {
    const [row] = await this.db.query<{ version: number }>(`select version from sessions where id = $1 and account_id = $2 and ${LIVE}`, [id, accountId]);
    if (!row) return { kind: 'missing' };
    if (target !== null && target > row.version) return { kind: 'no_version', latest: row.version };
    if (expected !== undefined && expected !== row.version) return { kind: 'conflict', current: row.version };
    // The row changed between the write and this read; report it as a conflict to retry.
    return { kind: 'conflict', current: row.version };
  }
}
