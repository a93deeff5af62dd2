import { BENCH_DATABASE_URL, ensureDatabase } from '../target/services.js';
import type { Scenario } from './scenario.js';
import { writesScenario } from './writes.js';

/**
 * The writes scenario on PostgreSQL (`--database-url`, default a benchmark database of its own,
 * created with pgvector when missing): the 20,000 msg/s target. Its own report, so that one
 * results directory (and its summary) holds both stores' write figures.
 */
export const writesPostgresScenario: Scenario = {
  name: 'writes-postgres',
  title: 'Durable message writes on PostgreSQL (group commit)',
  async run(settings, log) {
    const databaseUrl = settings.databaseUrl ?? BENCH_DATABASE_URL;
    await ensureDatabase(databaseUrl, log);
    const report = await writesScenario.run({ ...settings, databaseUrl }, log);
    return { ...report, scenario: writesPostgresScenario.name, title: writesPostgresScenario.title };
  },
};
