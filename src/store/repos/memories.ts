import type { Memory, MemoryListInput, Page, ScoredMemory } from '../../../protocol/index.js';
import type { SqlDriver } from '../driver.js';
import { decodeCursor, iso, toPage } from '../paging.js';
import { VectorSpace } from '../vectors.js';
import { LIVE } from './sessions.js';

export interface MemoryRow {
  pk: number;
  id: string;
  session_id: string;
  content: string;
  metadata: Memory['metadata'];
  embedder: string;
  created_at: Date | string;
  type: string;
  tags: string[];
  version: number;
  updated_at: Date | string;
  score?: number | null;
}

export const MEMORY_COLUMNS = 'm.pk, m.id, m.session_id, m.content, m.metadata, m.embedder, m.created_at, m.type, m.tags, m.version, m.updated_at';

export function toMemory(row: MemoryRow): Memory {
  return {
    id: row.id,
    session_id: row.session_id,
    content: row.content,
    metadata: row.metadata,
    embedder: row.embedder,
    created_at: iso(row.created_at),
    type: row.type,
    tags: row.tags,
    version: row.version,
    updated_at: iso(row.updated_at),
  };
}

/** What account-level search narrows by. */
export interface MemoryFilter {
  sessionId?: string | undefined;
  types?: string[] | undefined;
  tags?: string[] | undefined;
  threshold?: number | undefined;
  limit: number;
}

/** The fields of an update; undefined leaves a field as it is. */
export interface MemoryChanges {
  content?: string | undefined;
  type?: string | undefined;
  tags?: string[] | undefined;
  metadata?: Memory['metadata'] | undefined;
  /** A new vector, when the content changed. */
  vector?: readonly number[] | undefined;
}

export function toScoredMemory(row: MemoryRow): ScoredMemory {
  return { ...toMemory(row), score: row.score == null ? null : Number(row.score) };
}

export interface NewMemory {
  sessionId: string;
  id: string;
  content: string;
  metadata: Memory['metadata'];
  type?: string;
  tags?: string[];
  vector: readonly number[];
  /** `embedder` when the active embedder made the vector, `client` when the caller sent it. */
  source: 'embedder' | 'client';
}

/**
 * Memories of a session and their vectors, in the active embedder's space. Only vectors of that
 * space are compared; memories from an earlier embedder are still listed, not searched.
 */
export class MemoryRepo {
  constructor(
    private readonly db: SqlDriver,
    readonly space: VectorSpace,
  ) {}

  /** Null when the session does not exist in this account; `memory_count` moves in the same statement. */
  async create(accountId: string, memory: NewMemory): Promise<Memory | null> {
    const [row] = await this.db.query<MemoryRow>(
      `with s as (
         update sessions set memory_count = memory_count + 1, updated_at = now()
          where id = $1 and account_id = $2 and ${LIVE} returning id
       ), m as (
         insert into session_memories (id, session_id, content, metadata, embedder, embedding_source, embedding, type, tags)
         select $3, s.id, $4, $5, $6, $7, $8::vector, $9, $10 from s
         returning *
       )
       select ${MEMORY_COLUMNS} from m`,
      [
        memory.sessionId,
        accountId,
        memory.id,
        memory.content,
        JSON.stringify(memory.metadata),
        this.space.embedderId,
        memory.source,
        VectorSpace.literal(memory.vector),
        memory.type ?? 'general',
        JSON.stringify(memory.tags ?? []),
      ],
    );
    return row ? toMemory(row) : null;
  }

  /** A memory of a live session of this account, by id alone. */
  async get(accountId: string, memoryId: string): Promise<Memory | null> {
    const [row] = await this.db.query<MemoryRow>(
      `select ${MEMORY_COLUMNS} from session_memories m join sessions s on s.id = m.session_id
        where m.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [memoryId, accountId],
    );
    return row ? toMemory(row) : null;
  }

  /** Null when there is no such memory in a live session of this account. */
  async update(accountId: string, memoryId: string, changes: MemoryChanges): Promise<Memory | null> {
    const [row] = await this.db.query<MemoryRow>(
      `update session_memories m set
              content = coalesce($3, m.content),
              type = coalesce($4, m.type),
              tags = coalesce($5::jsonb, m.tags),
              metadata = coalesce($6::jsonb, m.metadata),
              embedding = coalesce($7::vector, m.embedding),
              embedder = case when $7::text is null then m.embedder else $8 end,
              embedding_source = case when $7::text is null then m.embedding_source else 'embedder' end,
              version = m.version + 1,
              updated_at = now()
         from sessions s
        where m.id = $1 and s.id = m.session_id and s.account_id = $2 and s.${LIVE}
       returning ${MEMORY_COLUMNS}`,
      [
        memoryId,
        accountId,
        changes.content ?? null,
        changes.type ?? null,
        changes.tags === undefined ? null : JSON.stringify(changes.tags),
        changes.metadata === undefined ? null : JSON.stringify(changes.metadata),
        changes.vector === undefined ? null : VectorSpace.literal(changes.vector),
        this.space.embedderId,
      ],
    );
    return row ? toMemory(row) : null;
  }

  /** Deletes a memory by id and moves its session's `memory_count`; false when there is none. */
  async remove(accountId: string, memoryId: string): Promise<boolean> {
    const rows = await this.db.query(
      `with d as (
         delete from session_memories m using sessions s
          where m.id = $1 and s.id = m.session_id and s.account_id = $2 and s.${LIVE}
         returning m.session_id
       ), u as (
         update sessions set memory_count = memory_count - 1, updated_at = now() where id = (select session_id from d)
       )
       select 1 from d`,
      [memoryId, accountId],
    );
    return rows.length > 0;
  }

  /**
   * Most similar first across the account's live sessions (or one of them), narrowed by types and
   * tags (any of them), above a threshold. Only vectors of the active space are compared.
   */
  async find(accountId: string, vector: readonly number[], filter: MemoryFilter): Promise<ScoredMemory[]> {
    const rows = await this.db.query<MemoryRow>(
      `select * from (
         select ${MEMORY_COLUMNS}, 1 - (${this.space.distance('$2')}) as score
           from session_memories m join sessions s on s.id = m.session_id
          where s.account_id = $1 and s.${LIVE} and ${this.space.predicate}
            and ($3::text is null or m.session_id = $3)
            and ($4::text[] is null or m.type = any($4::text[]))
            and ($5::text[] is null or m.tags ?| $5::text[])
          order by ${this.space.distance('$2')} limit $6
       ) found where $7::float8 is null or score >= $7::float8`,
      [accountId, VectorSpace.literal(vector), filter.sessionId ?? null, filter.types ?? null, filter.tags ?? null, filter.limit, filter.threshold ?? null],
    );
    return sortByScore(rows.map(toScoredMemory));
  }

  /**
   * Many memories of one session in one statement (imports, benchmarks). Returns how many were
   * stored: 0 when the session does not exist in this account.
   */
  async createMany(accountId: string, sessionId: string, memories: Omit<NewMemory, 'sessionId'>[]): Promise<number> {
    const payload = memories.map((m, ord) => ({
      ord,
      id: m.id,
      content: m.content,
      metadata: m.metadata,
      source: m.source,
      embedding: VectorSpace.literal(m.vector),
    }));
    const [row] = await this.db.query<{ stored: number }>(
      `with s as (
         update sessions set memory_count = memory_count + $4, updated_at = now()
          where id = $1 and account_id = $2 and ${LIVE} returning id
       ), m as (
         insert into session_memories (id, session_id, content, metadata, embedder, embedding_source, embedding)
         select v.id, s.id, v.content, v.metadata, $5, v.source, v.embedding::vector
           from s, jsonb_to_recordset($3::jsonb) as v(ord int, id text, content text, metadata jsonb, source text, embedding text)
          order by v.ord
         returning 1
       )
       select count(*)::int as stored from m`,
      [sessionId, accountId, JSON.stringify(payload), memories.length, this.space.embedderId],
    );
    return row?.stored ?? 0;
  }

  /**
   * Runs a bulk load with this space's HNSW index dropped, then builds it again: building once
   * over all rows is several times faster than growing the graph row by row. Searches during the
   * load are exact scans. For imports and benchmarks, not for a serving gateway under load.
   */
  async withIndexDeferred<T>(load: () => Promise<T>): Promise<T> {
    await this.db.exec(`drop index if exists ${this.space.indexName}`);
    try {
      return await load();
    } finally {
      await this.space.ensureIndex(this.db);
      // Fresh statistics, so the planner knows how large sessions now are (PGlite has no autovacuum).
      await this.db.exec('analyze session_memories');
    }
  }

  /** Newest first; null when the session does not exist. */
  async list(accountId: string, input: MemoryListInput): Promise<Page<Memory> | null> {
    const rows = await this.db.query<Partial<MemoryRow>>(
      `select m.* from sessions s
         left join lateral (
           select ${MEMORY_COLUMNS} from session_memories m
            where m.session_id = s.id and ($3::bigint is null or m.pk < $3) order by m.pk desc limit $4
         ) m on true
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [input.session_id, accountId, decodeCursor(input.cursor), input.limit + 1],
    );
    if (rows.length === 0) return null;
    return toPage(
      rows.filter((row): row is MemoryRow => row.id != null),
      input.limit,
      toMemory,
    );
  }

  /** 'deleted', or which of the two was not there. */
  async delete(accountId: string, sessionId: string, memoryId: string): Promise<'deleted' | 'no_session' | 'no_memory'> {
    const [row] = await this.db.query<{ session_found: boolean; deleted: boolean }>(
      `with s as (
         select id from sessions where id = $1 and account_id = $2 and ${LIVE}
       ), d as (
         delete from session_memories where id = $3 and session_id = (select id from s) returning id
       ), u as (
         update sessions set memory_count = memory_count - 1, updated_at = now()
          where id = (select id from s) and exists (select 1 from d)
       )
       select exists (select 1 from s) as session_found, exists (select 1 from d) as deleted`,
      [sessionId, accountId, memoryId],
    );
    if (!row?.session_found) return 'no_session';
    return row.deleted ? 'deleted' : 'no_memory';
  }

  /** Most similar first, each with its cosine similarity; null when the session does not exist. */
  async search(accountId: string, sessionId: string, vector: readonly number[], limit: number): Promise<ScoredMemory[] | null> {
    const rows = await this.db.query<Partial<MemoryRow>>(
      `select m.* from sessions s
         left join lateral (
           select ${MEMORY_COLUMNS}, 1 - (${this.space.distance('$3')}) as score from session_memories m
            where m.session_id = s.id and ${this.space.predicate}
            order by ${this.space.distance('$3')} limit $4
         ) m on true
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [sessionId, accountId, VectorSpace.literal(vector), limit],
    );
    if (rows.length === 0) return null;
    return sortByScore(rows.filter((row): row is MemoryRow => row.id != null).map(toScoredMemory));
  }
}

/** The index scan may return near-ties slightly out of order (relaxed iterative scan): settle it here. */
export function sortByScore(memories: ScoredMemory[]): ScoredMemory[] {
  return memories.sort((a, b) => (b.score ?? 0) - (a.score ?? 0));
}
