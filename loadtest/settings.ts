import { cpus } from 'node:os';
import { parseArgs } from 'node:util';

/**
 * Every option of `npm run loadtest -- <scenario> [options]`, parsed once. Defaults are the
 * definitive sizes (the targets of issue 7); `--quick` shrinks everything for smoke runs.
 */
export interface Settings {
  scenario: string;
  url: string | undefined;
  key: string | undefined;
  pid: number | undefined;
  databaseUrl: string | undefined;
  /** scale: the Redis the gateways share (defaults there to the local one). */
  redisUrl: string | undefined;
  /** scale: gateway worker process counts to compare (WORKERS=N), e.g. [1, 2]. */
  gatewayWorkers: number[];
  workers: number;
  durationS: number;
  out: string;
  baselines: string[];
  socketioRedis: boolean;
  quick: boolean;
  // scenario sizes
  connections: number | undefined;
  connectRate: number;
  subscribers: number;
  topics: number;
  publishers: number;
  rates: Array<number | 'open'>;
  lagWindow: number;
  methods: string[];
  window: number;
  conversations: number;
  agents: number;
  thinkMs: number;
  chunks: number;
  chunkGapMs: number;
  /** chat: replies as streamed deltas (default) or as one message per chunk (`--reply messages`). */
  streamedReplies: boolean;
  restOperations: string[] | undefined;
}

export const USAGE = `Usage: npm run loadtest -- <scenario|all> [options]

Scenarios: rest, connect, call, fanout, chat, writes, graphql, all (summary: rebuild results/summary.md from the reports there)
           writes-postgres (not in all: needs PostgreSQL; the writes scenario on --database-url, default a bench database)
           scale (not in all: needs PostgreSQL and Redis; 1 vs 2 gateway worker processes)
           summary: after all, writes-postgres and scale, one page of every report's targets
Target:    (default) start a gateway from dist/ on in-memory PGlite, as a child process
  --url http://127.0.0.1:8080 --key KEY   load a running gateway instead (loopback only)
  --pid PID              measure that process's CPU and memory (with --url)
  --database-url URL     embedded gateway and bare-select baseline on PostgreSQL instead of PGlite
                         (scale: default postgres://postgres@127.0.0.1:5432/stategate_bench, created if missing)
  --redis-url URL        scale: the Redis the gateway workers share (default redis://127.0.0.1:6379)
  --gateway-workers LIST scale: gateway worker processes to compare (default 1,2)
General:
  --duration S           measured seconds per run (default 10)
  --workers N            load-generator processes (default: number of cores)
  --baselines LIST       uws,ws,socketio (default all; "none" for none)
  --socketio-redis       also run Socket.IO as two nodes over a local redis-server
  --out DIR              where reports go (default loadtest/results)
  --quick                small counts and 2 s runs (smoke)
Sizes:
  --connections N        connect: 10000; call: 200; writes: 50; rest: 100; graphql: 50; scale: idle connections, 10000
  --connect-rate N       connections per second (connect, default 2000; scale, default 10000)
  --subscribers N --topics T --publishers M   fanout (default 1000, 1, 1)
  --rates LIST           fanout publish rates per second, "open" = as fast as subscribers keep up (default 200,open)
  --lag-window N         open throttle: events a topic may run ahead of its slowest subscriber (default 200)
  --methods LIST         call: ping,agents.get,messages.create (ping is the protocol's ping frame)
  --window N             writes: calls in flight per connection (default 64)
  --conversations N --agents N --think MS --chunks N --chunk-gap MS --reply stream|messages   chat
  --operations LIST      rest: messages.create,messages.list,agents.get,sessions.context
`;

const ALLOWED_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function list(value: string | undefined): string[] | undefined {
  return value === undefined
    ? undefined
    : value
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean);
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${name} must be a positive number, not ${value}`);
  return parsed;
}

export function parseSettings(argv: string[]): Settings {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      pid: { type: 'string' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      'gateway-workers': { type: 'string' },
      workers: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string' },
      baselines: { type: 'string' },
      'socketio-redis': { type: 'boolean' },
      quick: { type: 'boolean' },
      connections: { type: 'string' },
      'connect-rate': { type: 'string' },
      subscribers: { type: 'string' },
      topics: { type: 'string' },
      publishers: { type: 'string' },
      rates: { type: 'string' },
      'lag-window': { type: 'string' },
      methods: { type: 'string' },
      window: { type: 'string' },
      conversations: { type: 'string' },
      agents: { type: 'string' },
      think: { type: 'string' },
      chunks: { type: 'string' },
      'chunk-gap': { type: 'string' },
      reply: { type: 'string' },
      operations: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) throw new UsageError('');
  const quick = values.quick ?? false;
  if (values.url) {
    const host = new URL(values.url).hostname;
    // Network rule: load only ever goes to this machine.
    if (!ALLOWED_HOSTS.has(host)) throw new UsageError(`--url must be a loopback address (127.0.0.1, localhost), not ${host}`);
  }
  if (values['database-url'] && !ALLOWED_HOSTS.has(new URL(values['database-url']).hostname)) {
    throw new UsageError('--database-url must point at a loopback address (127.0.0.1, localhost)');
  }
  if (values['redis-url'] && !ALLOWED_HOSTS.has(new URL(values['redis-url']).hostname)) {
    throw new UsageError('--redis-url must point at a loopback address (127.0.0.1, localhost)');
  }
  const scenario = positionals[0]!;
  const baselines = list(values.baselines) ?? ['uws', 'ws', 'socketio'];
  const rates = (list(values.rates) ?? ['200', 'open']).map((rate) => (rate === 'open' ? ('open' as const) : positive(rate, 200, 'rates')));
  return {
    scenario,
    url: values.url,
    key: values.key,
    pid: values.pid ? Number(values.pid) : undefined,
    databaseUrl: values['database-url'],
    redisUrl: values['redis-url'],
    gatewayWorkers: gatewayWorkers(values['gateway-workers']),
    workers: Math.round(positive(values.workers, Math.max(1, cpus().length), 'workers')),
    durationS: positive(values.duration, quick ? 2 : 10, 'duration'),
    out: values.out ?? new URL('./results/', import.meta.url).pathname,
    baselines: baselines.includes('none') ? [] : baselines,
    socketioRedis: values['socketio-redis'] ?? false,
    quick,
    connections: values.connections ? Math.round(positive(values.connections, 1, 'connections')) : undefined,
    // scale measures how fast connections can be opened, so it paces far above what one process takes.
    connectRate: positive(values['connect-rate'], quick ? 200 : scenario === 'scale' ? 10_000 : 2000, 'connect-rate'),
    subscribers: Math.round(positive(values.subscribers, quick ? 20 : 1000, 'subscribers')),
    topics: Math.round(positive(values.topics, 1, 'topics')),
    publishers: Math.round(positive(values.publishers, 1, 'publishers')),
    rates,
    lagWindow: Math.round(positive(values['lag-window'], 200, 'lag-window')),
    methods: list(values.methods) ?? ['ping', 'agents.get', 'messages.create'],
    window: Math.round(positive(values.window, quick ? 8 : 64, 'window')),
    conversations: Math.round(positive(values.conversations, quick ? 10 : 200, 'conversations')),
    agents: Math.round(positive(values.agents, quick ? 2 : 10, 'agents')),
    thinkMs: positive(values.think, quick ? 200 : 1000, 'think'),
    chunks: Math.round(positive(values.chunks, 5, 'chunks')),
    chunkGapMs: positive(values['chunk-gap'], quick ? 10 : 30, 'chunk-gap'),
    streamedReplies: replyMode(values.reply),
    restOperations: list(values.operations),
  };
}

export class UsageError extends Error {}

/** The settings a report records (no key). */
export function recordedSettings(settings: Settings, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { key: _key, databaseUrl, redisUrl, gatewayWorkers, ...rest } = settings;
  return {
    ...rest,
    databaseUrl: databaseUrl ? '(set)' : undefined,
    // Only scale uses these: the other reports' settings stay as they were.
    redisUrl: redisUrl ? '(set)' : undefined,
    ...(settings.scenario === 'scale' ? { gatewayWorkers } : {}),
    ...extra,
  };
}

/** `--gateway-workers 1,2`: distinct whole numbers from 1 to 64, in the order given. */
function gatewayWorkers(value: string | undefined): number[] {
  const counts = (list(value) ?? ['1', '2']).map(Number);
  if (counts.length === 0 || counts.some((count) => !Number.isInteger(count) || count < 1 || count > 64) || new Set(counts).size !== counts.length)
    throw new UsageError(`--gateway-workers must list distinct whole numbers from 1 to 64, like 1,2 (not ${value})`);
  return counts;
}

function replyMode(value: string | undefined): boolean {
  if (value === undefined || value === 'stream') return true;
  if (value === 'messages') return false;
  throw new Error('--reply must be stream or messages');
}
