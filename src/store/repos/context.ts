import type { SessionContext, State } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { VectorSpace } from '../vectors.js';
import { sortByScore, toScoredMemory, type MemoryRow } from './memories.js';
import { LIVE } from './sessions.js';
import { toTurn, TURN_COLUMNS, type TurnRow } from './turns.js';

export interface ContextRequest {
  sessionId: string;
  /** The query's vector in the active space; null returns the most recent memories instead. */
  queryVector: readonly number[] | null;
  memoryLimit: number;
  turnLimit: number;
}

/**
 * What an agent needs for its next turn, read in one statement (one round trip, one snapshot):
 * the state, the memories nearest the query by the HNSW index, and the newest turns, each list
 * aggregated to JSON inside the database.
 */
export class ContextRepo {
  /** The statement with a query, public so benchmarks can EXPLAIN exactly what runs. */
  readonly bySimilarity: string;
  private readonly byRecency: string;

  constructor(
    readonly db: SqlExecutor,
    space: VectorSpace,
  ) {
    // Parameters: $1 session, $2 account, $3 memory limit, $4 turn limit, $5 query vector (similarity only).
    const memories = (similar: boolean) =>
      similar
        ? `select m.pk, m.id, m.session_id, m.content, m.metadata, m.embedder, m.created_at, m.type, m.tags, m.version, m.updated_at, 1 - (${space.distance('$5')}) as score
             from session_memories m where m.session_id = (select id from s) and ${space.predicate}
            order by ${space.distance('$5')} limit $3`
        : `select m.pk, m.id, m.session_id, m.content, m.metadata, m.embedder, m.created_at, m.type, m.tags, m.version, m.updated_at, null::float8 as score
             from session_memories m where m.session_id = (select id from s)
            order by m.pk desc limit $3`;
    const statement = (similar: boolean) => `
      with s as (
        select id, state from sessions where id = $1 and account_id = $2 and ${LIVE}
      ), mem as (${memories(similar)}
      ), turns as (
        select ${TURN_COLUMNS} from session_turns where session_id = (select id from s) order by pk desc limit $4
      )
      select s.state,
             coalesce((select json_agg(mem order by ${similar ? 'mem.score desc' : 'mem.pk desc'}) from mem), '[]'::json) as memories,
             coalesce((select json_agg(turns order by turns.pk desc) from turns), '[]'::json) as recent_turns
        from s`;
    this.bySimilarity = statement(true);
    this.byRecency = statement(false);
  }

  /** Null when the session does not exist in this account (or has expired). */
  /** Parameters of `bySimilarity`, in order. */
  static similarityParams(accountId: string, request: ContextRequest): unknown[] {
    return [request.sessionId, accountId, request.memoryLimit, request.turnLimit, VectorSpace.literal(request.queryVector ?? [])];
  }

  async read(accountId: string, request: ContextRequest): Promise<SessionContext | null> {
    const similar = request.queryVector !== null;
    const [row] = await this.db.query<{ state: State; memories: MemoryRow[]; recent_turns: TurnRow[] }>(
      similar ? this.bySimilarity : this.byRecency,
      similar ? ContextRepo.similarityParams(accountId, request) : [request.sessionId, accountId, request.memoryLimit, request.turnLimit],
    );
    if (!row) return null;
    const memories = row.memories.map(toScoredMemory);
    return {
      state: row.state,
      memories: similar ? sortByScore(memories) : memories,
      recent_turns: row.recent_turns.map(toTurn),
    };
  }
}
