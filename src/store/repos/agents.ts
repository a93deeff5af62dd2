import type { Agent, AgentCreateInput, AgentListInput, AgentUpdateInput, Page } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { decodeCursor, iso, toPage } from '../paging.js';
import { buildUpdate } from './update.js';

interface AgentRow {
  pk: number;
  id: string;
  name: string;
  role: string | null;
  instructions: string | null;
  capabilities: Agent['capabilities'];
  metadata: Agent['metadata'];
  status: Agent['status'];
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'pk, id, name, role, instructions, capabilities, metadata, status, created_at, updated_at';

function toAgent(row: AgentRow): Agent {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    instructions: row.instructions,
    capabilities: row.capabilities,
    metadata: row.metadata,
    status: row.status,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export class AgentRepo {
  constructor(private readonly db: SqlExecutor) {}

  async create(accountId: string, id: string, input: AgentCreateInput): Promise<Agent> {
    const [row] = await this.db.query<AgentRow>(
      `insert into agents (id, account_id, name, role, instructions, capabilities, metadata, status)
       values ($1, $2, $3, $4, $5, $6, $7, $8) returning ${COLUMNS}`,
      [
        id,
        accountId,
        input.name,
        input.role ?? null,
        input.instructions ?? null,
        JSON.stringify(input.capabilities ?? {}),
        JSON.stringify(input.metadata ?? {}),
        input.status ?? 'active',
      ],
    );
    return toAgent(row!);
  }

  async get(accountId: string, id: string): Promise<Agent | null> {
    const [row] = await this.db.query<AgentRow>(`select ${COLUMNS} from agents where id = $1 and account_id = $2`, [id, accountId]);
    return row ? toAgent(row) : null;
  }

  async list(accountId: string, input: AgentListInput): Promise<Page<Agent>> {
    const rows = await this.db.query<AgentRow>(
      `select ${COLUMNS} from agents
        where account_id = $1 and ($2::bigint is null or pk < $2) and ($3::text is null or status = $3)
        order by pk desc limit $4`,
      [accountId, decodeCursor(input.cursor), input.status ?? null, input.limit + 1],
    );
    return toPage(rows, input.limit, toAgent);
  }

  async update(accountId: string, input: AgentUpdateInput): Promise<Agent | null> {
    const { agent_id, ...fields } = input;
    const update = buildUpdate(fields, ['name', 'role', 'instructions', 'capabilities', 'metadata', 'status'], 3);
    const [row] = await this.db.query<AgentRow>(
      `update agents set ${update.assignments} where id = $1 and account_id = $2 returning ${COLUMNS}`,
      [agent_id, accountId, ...update.values],
    );
    return row ? toAgent(row) : null;
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    const rows = await this.db.query('delete from agents where id = $1 and account_id = $2 returning id', [id, accountId]);
    return rows.length > 0;
  }
}
