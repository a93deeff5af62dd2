import pg from 'pg';
import { sampleProcess } from '../lib/proc.js';
import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import { api, seedConversations } from '../target/seed.js';
import type { CallsParams, CallsRunOutput } from '../worker/jobs/calls.js';
import { cpuPer, measure } from './measure.js';
import { countShare, shareOf, startReport, warmupFor, type Scenario } from './scenario.js';
import { startGatewaySubject } from './subjects.js';

/**
 * Durable message writes: many `messages.create` calls in flight over WebSocket (`--window` per
 * connection, spread over many conversations), so that group commit has full batches. A call's
 * answer means committed; afterwards the conversations' message counts are read back and must
 * add up to the acknowledged writes.
 */
export const writesScenario: Scenario = {
  name: 'writes',
  title: 'Durable message writes (group commit)',
  async run(settings, log) {
    const finish = startReport(writesScenario, settings);
    const connections = settings.connections ?? (settings.quick ? 10 : 50);
    const conversations = Math.min(connections, 50);
    const { subject, gateway } = await startGatewaySubject(settings, log);
    let run: RunFigures;
    try {
      const seeded = await seedConversations(gateway, { agents: 1, conversations });
      const templates = seeded.conversationIds.map((id) => ({
        prefix: '{"type":"call","id":',
        suffix: `,"method":"messages.create","params":{"conversation_id":"${id}","role":"user","content":"I need help with my order","metadata":{"source":"loadtest"}}}`,
      }));
      const warmupMs = warmupFor(settings);
      const database = settings.databaseUrl ? await databaseCpu(settings.databaseUrl) : null;
      const measured = await measure({
        label: `writes gateway window ${settings.window}`,
        subject,
        settings,
        kind: 'calls',
        cpuUntil: 'ran',
        warmupMs,
        log,
        paramsFor: (index): CallsParams => ({
          connections: countShare(connections, index, settings.workers),
          window: settings.window,
          templates: shareOf(templates, index, settings.workers).length > 0 ? shareOf(templates, index, settings.workers) : templates,
          warmupMs,
        }),
      });
      const databaseCpuUs = await database?.stop();
      const outputs = measured.outputs as CallsRunOutput[];
      const acknowledged = measured.counters.ok ?? 0;
      let stored = 0;
      for (const id of seeded.conversationIds) stored += (await api<{ message_count: number }>(gateway, 'GET', `/v1/conversations/${id}`)).message_count;
      run = {
        subject: 'gateway',
        variant: 'messages.create',
        figures: {
          durable_writes_per_s: Math.round(outputs.reduce((sum, output) => sum + output.atDeadline, 0) / measured.durationS),
          server_cpu_us_per_write: cpuPer(
            measured.server,
            outputs.reduce((sum, output) => sum + output.answered, 0),
          ),
          // PostgreSQL's side of each write (its backends for this database, warm-up included).
          database_cpu_us_per_write: databaseCpuUs === undefined || stored === 0 ? null : Math.round((databaseCpuUs / stored) * 10) / 10,
          server_cores_busy: measured.server ? Math.round(measured.server.cores * 100) / 100 : null,
          in_flight: connections * settings.window,
          acknowledged,
          stored,
        },
        latency: measured.latency,
        counters: measured.counters,
        server: measured.server,
        notes: measured.notes,
      };
    } finally {
      await subject.stop();
    }
    const store = settings.databaseUrl ? 'PostgreSQL' : 'PGlite';
    const goal = settings.databaseUrl ? 20_000 : 10_000;
    return finish({
      runs: [run],
      ratioFigures: [],
      primaryLatency: 'round_trip',
      notes: ['Writes go over the WebSocket (one connection carries many calls in flight); the answer of each call comes after its group commit.'],
      targets: (all) => {
        const ours = findRun(all, 'gateway');
        return [
          checkTarget({
            name: `durable message writes on ${store}`,
            target: `>= ${goal.toLocaleString('en-US')}/s`,
            measured: ours?.figures.durable_writes_per_s,
            limit: goal,
            kind: 'at least',
            unit: 'msg/s',
          }),
          checkTarget({
            name: 'every acknowledged write is stored',
            target: 'stored == acknowledged',
            measured: ours?.figures.stored,
            limit: ours?.figures.acknowledged,
            kind: 'equal',
            unit: 'messages',
          }),
        ];
      },
    });
  },
};

/**
 * CPU time of the PostgreSQL backends serving this database (the gateway's pool), from /proc:
 * sampled now and at `stop()`; a backend that connected in between counts from zero (one that
 * left in between, an idle pool connection, is missed). Use a database of its own: other
 * clients' backends would count too.
 */
async function databaseCpu(url: string): Promise<{ stop: () => Promise<number> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const sample = async () => {
    const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    return new Map(rows.map(({ pid }) => [pid, sampleProcess(pid)?.cpuUs ?? null]));
  };
  const before = await sample();
  return {
    async stop() {
      const after = await sample();
      await client.end();
      let cpuUs = 0;
      for (const [pid, end] of after) {
        const start = before.has(pid) ? before.get(pid) : 0;
        if (start != null && end != null) cpuUs += end - start;
      }
      return cpuUs;
    },
  };
}
