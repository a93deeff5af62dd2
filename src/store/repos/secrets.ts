import type { SqlExecutor } from '../driver.js';

/** Named server secrets: created once by whichever node asks first, then read by all. */
export class SecretRepo {
  constructor(private readonly db: SqlExecutor) {}

  async getOrCreate(name: string, generate: () => string): Promise<string> {
    await this.db.query('insert into server_secrets (name, value) values ($1, $2) on conflict (name) do nothing', [name, generate()]);
    const [row] = await this.db.query<{ value: string }>('select value from server_secrets where name = $1', [name]);
    if (!row) throw new Error(`secret ${name} could not be read back`);
    return row.value;
  }
}
