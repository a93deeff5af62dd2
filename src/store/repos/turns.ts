import type { Page, Turn, TurnCreateInput, TurnListInput } from '../../../protocol/index.js';
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
}

export const TURN_COLUMNS = 'pk, id, session_id, input, output, metadata, created_at';

export function toTurn(row: TurnRow): Turn {
  return { id: row.id, session_id: row.session_id, input: row.input, output: row.output, metadata: row.metadata, created_at: iso(row.created_at) };
}

/** Conversation turns of a session; the session's `turn_count` moves in the same statement. */
export class TurnRepo {
  constructor(private readonly db: SqlExecutor) {}

  /** Null when the session does not exist in this account (or has expired). */
  async create(accountId: string, id: string, input: TurnCreateInput): Promise<Turn | null> {
    const [row] = await this.db.query<TurnRow>(
      `with s as (
         update sessions set turn_count = turn_count + 1, updated_at = now()
          where id = $1 and account_id = $2 and ${LIVE} returning id
       )
       insert into session_turns (id, session_id, input, output, metadata)
       select $3, s.id, $4, $5, $6 from s
       returning ${TURN_COLUMNS}`,
      [input.session_id, accountId, id, input.input, input.output, JSON.stringify(input.metadata ?? {})],
    );
    return row ? toTurn(row) : null;
  }

  /** Newest first; null when the session does not exist. */
  async list(accountId: string, input: TurnListInput): Promise<Page<Turn> | null> {
    const rows = await this.db.query<Partial<TurnRow> & { session_id: string }>(
      `select s.id as session_id, t.pk, t.id, t.input, t.output, t.metadata, t.created_at from sessions s
         left join lateral (
           select ${TURN_COLUMNS} from session_turns
            where session_id = s.id and ($3::bigint is null or pk < $3) order by pk desc limit $4
         ) t on true
        where s.id = $1 and s.account_id = $2 and s.${LIVE}`,
      [input.session_id, accountId, decodeCursor(input.cursor), input.limit + 1],
    );
    if (rows.length === 0) return null;
    return toPage(rows.filter((row): row is TurnRow => row.id != null), input.limit, toTurn);
  }
}
