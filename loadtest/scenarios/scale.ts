import { cpus } from 'node:os';
import { checkTarget } from '../report/compare.js';
import type { ReportTable, RunFigures, TargetCheck } from '../report/types.js';
import { UsageError, type Settings } from '../settings.js';
import { seedConversations } from '../target/seed.js';
import { BENCH_DATABASE_URL, ensureDatabase, LOCAL_REDIS_URL, PostgresWatch, RedisWatch } from '../target/services.js';
import { freshNamespace, startWorkerGateway } from '../target/workers.js';
import { runCalls, templatesFor } from './call.js';
import { runConnect } from './connect.js';
import { runFanout } from './fanout.js';
import { startReport, type Scenario } from './scenario.js';
import type { Subject } from './subjects.js';

/**
 * Scale by core (issue 15): the same gateway as 1 and as 2 worker processes on one port
 * (WORKERS=N), on one PostgreSQL and one Redis, measured with the other scenarios' own runs: idle
 * connections (connect), `agents.get` calls at saturation (call), open-throttle fan-out (fanout).
 * Redis, PostgreSQL's backends and the load generator are measured beside the gateway, each on
 * its own: on a 2-core machine the generator competes with the workers, and the report says how much.
 */
interface Services {
  databaseUrl: string;
  redisUrl: string;
  postgres: PostgresWatch;
  redis: RedisWatch;
}

const workersLabel = (count: number) => `${count} worker${count === 1 ? '' : 's'}`;

/** Variants, in the order they run for each worker count. */
const CONNECTIONS = 'connections';
const CALLS = 'calls agents.get';
const FANOUT = 'fan-out open';

async function measureWorkers(count: number, settings: Settings, services: Services, log: (line: string) => void): Promise<RunFigures[]> {
  log(`- gateway with WORKERS=${count}`);
  const namespace = freshNamespace();
  try {
    const started = await startWorkerGateway({ workers: count, databaseUrl: services.databaseUrl, redisUrl: services.redisUrl, namespace, log });
    const subject: Subject = {
      name: workersLabel(count),
      target: { dialect: 'websocket', urls: [started.gateway.wsUrl], headers: { 'X-API-Key': started.gateway.apiKey } },
      pids: started.pids,
      stop: () => started.stop(),
      collectGarbage: () => started.collectGarbage(),
      alongside: {
        redis: () => (services.redis.pid ? [services.redis.pid] : []),
        postgres: () => services.postgres.backendPids(),
        // Each worker alone: whether the kernel spread the load over them.
        ...Object.fromEntries(started.workerPids.map((pid, index) => [`worker ${index + 1}`, () => [pid]])),
      },
    };
    const runs: RunFigures[] = [];
    try {
      runs.push({ ...(await runConnect(subject, settings, log)), variant: CONNECTIONS });
      const seeded = await seedConversations(started.gateway, { agents: 1, conversations: settings.topics });
      // --connections sizes the idle connections here; calls keep the call scenario's default.
      const calls = await runCalls(subject, { ...settings, connections: undefined }, log, 'agents.get', templatesFor('agents.get', seeded.agentIds[0]!, []));
      runs.push({ ...calls, variant: CALLS });
      runs.push({ ...(await runFanout(subject, settings, log, 'open', seeded.conversationIds)), variant: FANOUT });
    } finally {
      await started.stop();
    }
    return runs.map((run) => withCpuFigures(run, started.workerPids.length));
  } finally {
    await services.postgres.dropSchema(namespace.schema).catch((error: unknown) => log(`  could not drop schema ${namespace.schema}: ${String(error)}`));
    await services.redis.deleteKeys(namespace.keyPrefix).catch((error: unknown) => log(`  could not delete keys ${namespace.keyPrefix}*: ${String(error)}`));
  }
}

const round = (value: number | null | undefined, digits = 3) => (value == null ? null : Math.round(value * 10 ** digits) / 10 ** digits);

/** Cores busy (CPU seconds / wall seconds) of every process group, as figures of the run. */
function withCpuFigures(run: RunFigures, workers: number): RunFigures {
  const cores = (name: string) => run.alongside?.[name]?.cores ?? null;
  const perWorker = Array.from({ length: workers }, (_, index) => cores(`worker ${index + 1}`));
  const workerSum = perWorker.reduce<number>((sum, value) => sum + (value ?? 0), 0);
  const generator = cores('generator');
  return {
    ...run,
    figures: {
      ...run.figures,
      gateway_cores_busy: round(cores('server')),
      busiest_worker_share: perWorker.every((value) => value !== null) && workerSum > 0 ? round(Math.max(...(perWorker as number[])) / workerSum) : null,
      redis_cores_busy: round(cores('redis')),
      postgres_cores_busy: round(cores('postgres')),
      generator_cores_busy: round(generator),
      generator_share_of_machine: generator === null ? null : round(generator / cpus().length),
      machine_cores_busy: round(cores('machine')),
    },
  };
}

interface ScaledFigure {
  variant: string;
  label: string;
  read(run: RunFigures): number | null | undefined;
}

const SCALED: ScaledFigure[] = [
  { variant: CONNECTIONS, label: 'connects/s', read: (run) => run.figures.connects_per_s },
  { variant: CONNECTIONS, label: 'server RSS per idle connection, second half (bytes)', read: (run) => run.figures.rss_bytes_per_connection },
  // Several processes' heaps add their noise to the slope: the whole run's average is a second view.
  { variant: CONNECTIONS, label: 'server RSS per idle connection, all (bytes)', read: (run) => run.figures.rss_bytes_per_connection_all },
  {
    variant: CONNECTIONS,
    label: 'server CPU per connect, while connecting (us)',
    read: (run) => (run.alongside?.server && run.figures.connected ? run.alongside.server.cpuUs / run.figures.connected : null),
  },
  { variant: CALLS, label: 'calls/s', read: (run) => run.figures.round_trips_per_s },
  { variant: CALLS, label: 'server CPU per call (us)', read: (run) => run.figures.server_cpu_us_per_call },
  { variant: CALLS, label: 'round trip p99 (ms)', read: (run) => run.latency.round_trip?.p99 },
  { variant: FANOUT, label: 'delivered events/s', read: (run) => run.figures.delivered_per_s },
  { variant: FANOUT, label: 'server CPU per delivered event (us)', read: (run) => run.figures.server_cpu_us_per_event },
  { variant: FANOUT, label: 'publish-to-deliver p99 (ms)', read: (run) => run.latency.delivery?.p99 },
];

function tablesFor(runs: RunFigures[], settings: Settings): ReportTable[] {
  const counts = settings.gatewayWorkers;
  const labels = counts.map(workersLabel);
  const [first, last] = [counts[0]!, counts[counts.length - 1]!];
  const compare = counts.length > 1;
  const find = (count: number, variant: string) => runs.find((run) => run.subject === workersLabel(count) && run.variant === variant);
  const machineCores = cpus().length;
  const generator = runs.map((run) => run.figures.generator_cores_busy).filter((value): value is number => value != null);
  const span = (values: number[], scale = 1, digits = 2) =>
    values.length === 0 ? '-' : `${(Math.min(...values) * scale).toFixed(digits)}-${(Math.max(...values) * scale).toFixed(digits)}`;
  const scaling: ReportTable = {
    title: compare ? `Scaling: ${labels.join(' vs ')} (${last}/${first})` : `Figures with ${labels[0]}`,
    intro: [
      `**This machine has ${machineCores} cores, and the load generator runs on them too, beside the gateway workers, Redis and PostgreSQL.** ` +
        `It used ${span(generator)} cores (${span(generator, 100 / machineCores, 0)}% of the machine) during these measurements (next table). ` +
        'A rate that does not grow with a second worker may only mean that the cores were already busy; server CPU per unit compares the configurations on equal terms.',
      'Each worker count is a fresh gateway (WORKERS=N, one port through SO_REUSEPORT) on the same PostgreSQL and Redis, with its own schema and key prefix.' +
        (compare ? ` ${last}/${first}: the ratio; for rates higher is better, for CPU, memory and latency lower is better.` : ''),
    ],
    header: ['measure', 'figure', ...labels, ...(compare ? [`${last}/${first}`] : [])],
    rows: SCALED.map((figure) => {
      const values = counts.map((count) => {
        const run = find(count, figure.variant);
        return run ? (figure.read(run) ?? null) : null;
      });
      const [a, b] = [values[0], values[values.length - 1]];
      return [figure.variant, figure.label, ...values, ...(compare ? [a != null && b != null && a !== 0 ? `${(b / a).toFixed(2)}x` : '-'] : [])];
    }),
  };
  const cpu: ReportTable = {
    title: 'CPU by process group (cores busy = CPU seconds / wall seconds)',
    intro: [
      "Over each measurement's window: for calls and fan-out, the gateway's own (as in the call and fanout scenarios); for connections, the time they were being opened " +
        '(the settling and garbage collection between memory samples left out). ' +
        `Gateway: the supervisor and every worker. Load generator: its ${settings.workers} worker processes ` +
        `(${settings.workers + 1} for fan-out) and the coordinator. Share of the machine: cores busy / ${machineCores}. ` +
        'Machine busy: every process of the machine (/proc/stat); more than the groups here means other work ran meanwhile.',
    ],
    header: [
      'measure',
      'workers',
      'gateway',
      'each worker',
      'Redis',
      'PostgreSQL',
      'load generator',
      'generator share of machine',
      'all of these / machine',
      'machine busy (every process)',
    ],
    rows: counts.flatMap((count) =>
      [CONNECTIONS, CALLS, FANOUT].map((variant) => {
        const run = find(count, variant);
        const f = run?.figures ?? {};
        const eachWorker = Object.entries(run?.alongside ?? {})
          .filter(([name]) => name.startsWith('worker '))
          .map(([, delta]) => (delta ? delta.cores.toFixed(2) : '-'))
          .join(' / ');
        const groups = [f.gateway_cores_busy, f.redis_cores_busy, f.postgres_cores_busy, f.generator_cores_busy];
        const total = groups.some((value) => value == null) ? null : groups.reduce<number>((sum, value) => sum + value!, 0) / machineCores;
        return [
          variant,
          String(count),
          f.gateway_cores_busy ?? null,
          eachWorker || '-',
          f.redis_cores_busy ?? null,
          f.postgres_cores_busy ?? null,
          f.generator_cores_busy ?? null,
          f.generator_share_of_machine == null ? '-' : `${Math.round(f.generator_share_of_machine * 100)}%`,
          total === null ? '-' : `${Math.round(total * 100)}%`,
          f.machine_cores_busy == null ? '-' : `${Math.round((f.machine_cores_busy / machineCores) * 100)}%`,
        ];
      }),
    ),
  };
  return [scaling, cpu];
}

function scaleTargets(runs: RunFigures[], settings: Settings): TargetCheck[] {
  return settings.gatewayWorkers.flatMap((count) => {
    const label = workersLabel(count);
    const find = (variant: string) => runs.find((run) => run.subject === label && run.variant === variant);
    const connect = find(CONNECTIONS);
    const calls = find(CALLS);
    const fanout = find(FANOUT);
    return [
      checkTarget({ name: `${label}: connection failures`, target: '0', measured: connect?.figures.failures, limit: 0, kind: 'equal', unit: 'connections' }),
      checkTarget({ name: `${label}: agents.get call errors`, target: '0', measured: calls?.counters.errors, limit: 0, kind: 'equal', unit: 'calls' }),
      checkTarget({
        name: `${label}: fan-out, every event delivered in order`,
        target: 'delivered == expected, no gap, no duplicate',
        measured: fanout?.figures.all_delivered_in_order,
        limit: 1,
        kind: 'equal',
        unit: '(1 = yes)',
      }),
    ];
  });
}

export const scaleScenario: Scenario = {
  name: 'scale',
  title: 'Scale by core: gateway worker processes on one machine',
  async run(settings, log) {
    if (settings.url || settings.pid) throw new UsageError('scale starts its own gateways (one per worker count): --url, --key and --pid do not apply');
    const databaseUrl = settings.databaseUrl ?? BENCH_DATABASE_URL;
    const redisUrl = settings.redisUrl ?? LOCAL_REDIS_URL;
    const finish = startReport(scaleScenario, settings, {
      database: settings.databaseUrl ? '(set)' : BENCH_DATABASE_URL,
      redis: settings.redisUrl ? '(set)' : LOCAL_REDIS_URL,
    });
    await ensureDatabase(databaseUrl, log);
    const redis = await RedisWatch.open(redisUrl);
    const runs: RunFigures[] = [];
    let postgres: PostgresWatch | null = null;
    try {
      postgres = await PostgresWatch.open(databaseUrl);
      const services: Services = { databaseUrl, redisUrl, redis, postgres };
      for (const count of settings.gatewayWorkers) runs.push(...(await measureWorkers(count, settings, services, log)));
    } finally {
      redis.close();
      await postgres?.close();
    }
    return finish({
      runs,
      ratioFigures: [],
      primaryLatency: 'round_trip',
      tables: tablesFor(runs, settings),
      targets: (all) => scaleTargets(all, settings),
      notes: [
        "Gateway CPU and memory: the supervisor and all its descendants (/proc/<pid>/task/*/children), summed; the workers are the processes that hold a listening socket on the port. busiest_worker_share: the busiest worker's part of the workers' CPU (1/N is an even spread).",
        `Connections: the connect scenario's measurement, ${settings.connections ?? (settings.quick ? 20 : 10_000)} idle connections paced at ${settings.connectRate}/s (connects/s is the rate achieved; scale's default pacing is above what one worker takes); memory per connection is the RSS slope of all gateway processes over the second half (as in connect) and over all connections, after garbage collection (the supervisor on request, its workers on SIGUSR2 through the same preload); with several processes each heap adds its own noise, so at small counts the slope can even come out negative.`,
        `Calls: the call scenario's closed loop, ${settings.quick ? 20 : 200} connections with one agents.get in flight each, on a warm cache.`,
        `Fan-out: the fanout scenario's open throttle, ${settings.subscribers} subscribers over ${settings.topics} topic(s), ${settings.publishers} publisher(s); with several workers the events cross Redis to reach the other workers' subscribers.`,
        'Redis: the server at --redis-url (the process_id of its INFO, when it runs on this machine); anything else using that Redis counts too. PostgreSQL: the client backends of the benchmark database (pg_stat_activity), so give it a database of its own; background writers are not counted.',
        'Load generator: its worker processes and the coordinator, over the same window as the gateway.',
      ],
    });
  },
};
