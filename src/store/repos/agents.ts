import type { Agent, AgentCreateInput, AgentListInput, AgentUpdateInput, AGENT_LIST_FIELDS, Page, SortOrder } from '../../../protocol/index.js';
import type { SqlExecutor } from '../driver.js';
import { iso } from '../paging.js';
import { keysetPage, keysetSql, Params, withDefaultSort, withShorthands, type ColumnMap, type ListInput } from '../query/filter.js';
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

const DEFAULT_SORT: SortOrder = { field: 'created_at', descending: true };

const LIST_COLUMNS: ColumnMap<typeof AGENT_LIST_FIELDS> = {
  status: { column: 'status', type: 'text' },
  name: { column: 'name', type: 'text' },
  role: { column: 'role', type: 'text' },
  created_at: { column: 'created_at', type: 'timestamptz' },
  updated_at: { column: 'updated_at', type: 'timestamptz' },
};

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

  async list(accountId: string, input: ListInput<AgentListInput>): Promise<Page<Agent>> {
    const query = withShorthands(withDefaultSort(input, DEFAULT_SORT), { status: input.status });
    const params = new Params();
    const scope = `account_id = ${params.add(accountId)}`;
    const sql = keysetSql(LIST_COLUMNS, query, params);
    const rows = await this.db.query<AgentRow & { sort_value: string }>(
      `select ${COLUMNS}, ${sql.sortSelect} from agents
        where ${[scope, ...sql.where].join(' and ')}
        order by ${sql.orderBy} limit ${params.add(sql.fetch)} offset ${params.add(sql.offset)}`,
      params.values,
    );
    return keysetPage(rows, query, toAgent);
  }

  async update(accountId: string, input: AgentUpdateInput): Promise<Agent | null> {
    const { agent_id, ...fields } = input;
    const update = buildUpdate(fields, ['name', 'role', 'instructions', 'capabilities', 'metadata', 'status'], 3);
    const [row] = await this.db.query<AgentRow>(`update agents set ${update.assignments} where id = $1 and account_id = $2 returning ${COLUMNS}`, [
      agent_id,
      accountId,
      ...update.values,
    ]);
    return row ? toAgent(row) : null;
  }

  async delete(accountId: string, id: string): Promise<boolean> {
    const rows = await this.db.query('delete from agents where id = $1 and account_id = $2 returning id', [id, accountId]);
    return rows.length > 0;
  }
}
