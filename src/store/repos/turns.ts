import type { Page, State, Turn, TurnCreateInput, TurnListInput } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { decodeCursor, iso, toPage } from '../paging.js';
import { LIVE } from './sessions.js';

export interface TurnRow {
  pk: number;
  id: string;
  session_id: string;
  input: string;
  output: string;
  metadata: Turn['metadata'];
  created_at: Date | string;
  input_type: string;
  output_type: string;
  reasoning: string | null;
  turn_number: number;
}

export const TURN_COLUMNS = 'pk, id, session_id, input, output, metadata, created_at, input_type, output_type, reasoning, turn_number';

export function toTurn(row: TurnRow): Turn {
  return {
    id: row.id,
    session_id: row.session_id,
    input: row.input,
    output: row.output,
    metadata: row.metadata,
    created_at: iso(row.created_at),
    input_type: row.input_type,
    output_type: row.output_type,
    reasoning: row.reasoning,
    turn_number: row.turn_number,
  };
}

/** A plain string is text; typed content keeps its type. */
function side(content: TurnCreateInput['input']): { type: string; content: string } {
  return typeof content === 'string' ? { type: 'text', content } : content;
}

/** Conversation turns of a session; the session's `turn_count` moves in the same statement. */
export class TurnRepo {
  constructor(private readonly db: SqlExecutor) {}

  /**
   * Null when the session does not exist in this account (or has expired). The turn's number is
   * the session's new `turn_count`, taken under the row lock of the same statement; the state is
   * the session's as the turn was recorded.
   */
  async create(accountId: string, id: string, input: TurnCreateInput): Promise<{ turn: Turn; state: State } | null> {
    const given = side(input.input);
    const answered = side(input.output);
    const [row] = await this.db.query<TurnRow & { state: State }>(
      `with s as (
         update sessions set turn_count = turn_count + 1, updated_at = now()
          where id = $1 and account_id = $2 and ${LIVE} returning id, turn_count, state
       ), t as (
         insert into session_turns (id, session_id, input, output, metadata, input_type, output_type, reasoning, turn_number)
         select $3, s.id, $4, $5, $6, $7, $8, $9, s.turn_count from s
         returning ${TURN_COLUMNS}
       )
       select t.*, (select state from s) as state from t`,
      [
        input.session_id,
        accountId,
        id,
        given.content,
        answered.content,
        JSON.stringify(input.metadata ?? {}),
        given.type,
        answered.type,
        input.reasoning ?? null,
      ],
    );
    return row ? { turn: toTurn(row), state: row.state } : null;
  }

  /** Null when the session does not exist; `turn: null` when it has no such turn. */
  async get(accountId: string, sessionId: string, turnId: string): Promise<{ turn: Turn | null } | null> {
    const [row] = await this.db.query<Partial<TurnRow> & { found: string }>(
      `select s.id as found, t.* from sessions s
         left join session_turns t on t.session_id = s.id and t.id = $3
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [sessionId, accountId, turnId],
    );
    if (!row) return null;
    return { turn: row.id == null ? null : toTurn(row as TurnRow) };
  }

  /** The paging key of a turn of this session, for `starting_after`; null when it is not one. */
  async pagingKey(sessionId: string, turnId: string): Promise<number | null> {
    const [row] = await this.db.query<{ pk: number }>('select pk from session_turns where id = $1 and session_id = $2', [turnId, sessionId]);
    return row ? Number(row.pk) : null;
  }

  /** Newest first; null when the session does not exist. */
  async list(accountId: string, input: TurnListInput, afterPk: number | null = null): Promise<Page<Turn> | null> {
    const rows = await this.db.query<Partial<TurnRow> & { session_id: string }>(
      `select s.id as session_id, t.pk, t.id, t.input, t.output, t.metadata, t.created_at, t.input_type, t.output_type, t.reasoning, t.turn_number
         from sessions s
         left join lateral (
           select ${TURN_COLUMNS} from session_turns
            where session_id = s.id and ($3::bigint is null or pk < $3) order by pk desc limit $4
         ) t on true
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [input.session_id, accountId, afterPk ?? decodeCursor(input.cursor), input.limit + 1],
    );
    if (rows.length === 0) return null;
    return toPage(
      rows.filter((row): row is TurnRow => row.id != null),
      input.limit,
      toTurn,
    );
  }
}
