/**
 * Bounded soak with fault injection (issue 16): `npm run soak -- [--minutes 3] [--database-url URL]
 * [--redis | --redis-url URL] [--out DIR]`. Not part of the test suite.
 *
 * Starts the compiled gateway (PGlite in an on-disk temporary directory by default), runs REST and
 * WebSocket writers of `messages.create` over a few conversations and WebSocket subscribers that
 * resume with `since`/`epoch` after every disconnect, and meanwhile injects faults: client sockets
 * dropped at random, the gateway SIGKILLed and restarted on its data, and with `--redis` a private
 * redis-server SIGKILLed and restarted (empty). Then it drains, reads back what was stored and
 * counts lost, duplicated and out-of-order events and 5xx answers (all expected 0) and
 * acknowledged-vs-stored writes. Report: `<out>/soak.json` and `soak.md`. Exit code 1 when any
 * expected-zero count is not zero.
 *
 * Everything is loopback only, and every loop is bounded in count and in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import WebSocket from 'ws';
import type { EventFrame, SubscribeResult } from '../protocol/index.js';
import { ApiError, GatewaySocket, RestClient, type WebSocketConstructor } from '../clients/index.js';
import { RedisProcess } from '../test/helpers/redis.js';
import { describeMachine } from './report/machine.js';
import { ensureGatewayBuilt, GATEWAY_ENTRY, ROOT } from './target/build.js';
import { freePort } from './target/child.js';
import { UNDER_LOAD_ENV } from './target/gateway.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    'database-url': { type: 'string' },
    redis: { type: 'boolean', default: false },
    'redis-url': { type: 'string' },
    conversations: { type: 'string', default: '4' },
    'subscribers-per-conversation': { type: 'string', default: '3' },
    'write-gap-ms': { type: 'string', default: '20' },
    out: { type: 'string', default: join(ROOT, 'loadtest/results') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run soak -- [--minutes 3] [--database-url postgres://127.0.0.1/db] [--redis | --redis-url redis://127.0.0.1:6379] [--conversations 4] [--subscribers-per-conversation 3] [--write-gap-ms 20] [--out DIR]\n',
  );
  process.exit(0);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
function loopbackOnly(name: string, url: string | undefined): void {
  if (url !== undefined && !LOOPBACK.has(new URL(url).hostname))
    throw new Error(`--${name} must point at a loopback address (127.0.0.1, localhost), not ${url}`);
}
function bounded(name: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be between ${min} and ${max}, not ${value}`);
  return n;
}
loopbackOnly('database-url', values['database-url']);
loopbackOnly('redis-url', values['redis-url']);
if (values.redis && values['redis-url'])
  throw new Error('--redis (a private redis-server that gets killed) and --redis-url (one that is left alone) exclude each other');
// Bounded by construction: at most an hour of soak, a handful of topics and sockets.
const MINUTES = bounded('minutes', values.minutes, 0.1, 60);
const CONVERSATIONS = bounded('conversations', values.conversations, 1, 50);
const SUBSCRIBERS_PER_CONVERSATION = bounded('subscribers-per-conversation', values['subscribers-per-conversation'], 1, 50);
const WRITE_GAP_MS = bounded('write-gap-ms', values['write-gap-ms'], 1, 10_000);
const DATABASE_URL = values['database-url'];
const PRIVATE_REDIS = values.redis ?? false;
// PGlite belongs to one process; several nodes need PostgreSQL and Redis.
const NODE_COUNT = DATABASE_URL && (PRIVATE_REDIS || values['redis-url']) ? 2 : 1;
const DRAIN_MS = 30_000;

const log = (line: string) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

// ---------------- the gateway processes ----------------

class Node {
  private child: ChildProcess | null = null;
  private tail = '';
  errorLines = 0;
  constructor(
    readonly index: number,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  async start(): Promise<number> {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [GATEWAY_ENTRY], {
      env: { ...process.env, ...this.env, PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (chunk: Buffer) => {
      const text = chunk.toString();
      // pino level 50+ is error/fatal: worth counting, never expected under these faults.
      this.errorLines += (text.match(/"level":(5|6)0/g) ?? []).length;
      this.tail = (this.tail + text).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (this.child === child) this.child = null;
    });
    while (Date.now() - startedAt < 60_000) {
      if (!this.child) throw new Error(`gateway node ${this.index} exited during start-up:\n${this.tail}`);
      const ready = await fetch(`${this.httpUrl}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return Date.now() - startedAt;
      await sleep(100);
    }
    throw new Error(`gateway node ${this.index} not ready after 60 s:\n${this.tail}`);
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

// Never leave a gateway behind, even on the hard deadline's process.exit.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

// ---------------- counters ----------------

const counts = {
  writesAttempted: 0,
  writesAcknowledged: 0,
  /** Refused before reaching the gateway (down, restarting): safe to ignore, nothing was written. */
  writesUnreachable: 0,
  /** The connection broke with the write in flight: it may or may not have been stored. */
  writesUnknownOutcome: 0,
  /** Any answer with an HTTP status >= 500, or a WebSocket error frame with such a code. */
  answers5xx: {} as Record<string, number>,
  /** 4xx answers: none expected, every write is valid. */
  answers4xx: {} as Record<string, number>,
  subscribeFailures: {} as Record<string, number>,
  reconnects: 0,
  faults: { socketDrops: 0, gatewayKills: 0, redisKills: 0 },
  gatewayRestartMs: [] as number[],
};
const SERVER_ERROR_CODES = new Set(['INTERNAL_ERROR', 'SERVICE_UNAVAILABLE']);
const bump = (map: Record<string, number>, key: string) => (map[key] = (map[key] ?? 0) + 1);
const acknowledged = new Map<string, Set<string>>(); // conversation id -> acknowledged message ids

function recordFailure(where: string, error: unknown): void {
  if (error instanceof ApiError) {
    const serverSide = (error.status ?? 0) >= 500 || SERVER_ERROR_CODES.has(error.code);
    bump(serverSide ? counts.answers5xx : counts.answers4xx, `${where} ${error.status ?? 'ws'} ${error.code}`);
    return;
  }
  const cause = error instanceof Error ? (error.cause as { code?: string } | undefined)?.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  // A refused connection never carried the request; a broken one may have, after sending it.
  if (cause === 'ECONNREFUSED' || /before welcome|WebSocket connection to .* failed/.test(message)) counts.writesUnreachable++;
  else counts.writesUnknownOutcome++;
}

// ---------------- clients ----------------

let nodes: Node[] = [];
let apiKey = '';
let running = true;
const openSockets = new Set<GatewaySocket>();

async function connectSocket(node: Node): Promise<GatewaySocket> {
  const socket = await GatewaySocket.connect({ url: node.wsUrl, apiKey, WebSocket: WebSocket as unknown as WebSocketConstructor, callTimeoutMs: 15_000 });
  openSockets.add(socket);
  socket.onClose(() => openSockets.delete(socket));
  return socket;
}

/** Reconnects with backoff until it works or `deadline`; bounded attempts. */
async function reconnect(node: Node, deadline: number): Promise<GatewaySocket | null> {
  for (let attempt = 0, delay = 100; attempt < 500 && Date.now() < deadline; attempt++, delay = Math.min(delay * 2, 2000)) {
    try {
      return await connectSocket(node);
    } catch {
      await sleep(delay * (0.5 + Math.random() / 2));
    }
  }
  return null;
}

interface Subscriber {
  name: string;
  topic: string;
  /** Null for `account` (every conversation). */
  conversationId: string | null;
  node: Node;
  socket: GatewaySocket | null;
  seq: number;
  epoch: string;
  messageIds: string[];
  seen: Set<string>;
  duplicates: number;
  gaps: number;
  backwards: number;
  resets: number;
  epochChanges: number;
  reconnects: number;
}

function onEvent(sub: Subscriber, frame: EventFrame): void {
  if (frame.ephemeral) return;
  if (frame.epoch !== sub.epoch) {
    sub.epochChanges++;
    sub.epoch = frame.epoch;
  } else if (frame.seq <= sub.seq) sub.backwards++;
  else if (frame.seq > sub.seq + 1) sub.gaps += frame.seq - sub.seq - 1;
  sub.seq = Math.max(sub.seq, frame.seq);
  if (frame.event !== 'message.created') return;
  const id = (frame.data as { message: { id: string } }).message.id;
  if (sub.seen.has(id)) sub.duplicates++;
  else {
    sub.seen.add(id);
    sub.messageIds.push(id);
  }
}

async function follow(sub: Subscriber, resume: boolean): Promise<void> {
  const socket = sub.socket!;
  const onResult = (result: SubscribeResult) => {
    if (!resume) {
      sub.seq = result.seq;
      sub.epoch = result.epoch;
    } else if (result.recovered === false) {
      // A gap the client can see; counted, never expected within the resume window.
      sub.resets++;
      sub.seq = result.seq;
      sub.epoch = result.epoch;
    }
  };
  await socket.subscribe(sub.topic, (frame) => onEvent(sub, frame), resume ? { since: sub.seq, epoch: sub.epoch } : undefined, onResult);
}

/** Keeps one subscriber connected until `deadline`, resuming after every close. */
async function keepSubscribed(sub: Subscriber, deadline: () => number): Promise<void> {
  while (Date.now() < deadline()) {
    const socket = sub.socket;
    if (socket?.isOpen) {
      await Promise.race([socket.closedPromise(), sleep(500)]);
      continue;
    }
    sub.socket = await reconnect(sub.node, deadline());
    if (!sub.socket) return;
    sub.reconnects++;
    counts.reconnects++;
    try {
      await follow(sub, true);
    } catch (error) {
      bump(counts.subscribeFailures, error instanceof ApiError ? error.code : 'connection');
      sub.socket.terminate();
      await sleep(250);
    }
  }
}

async function restWriter(node: Node, conversationIds: string[], stopAt: number): Promise<void> {
  const rest = new RestClient({ baseUrl: node.httpUrl, apiKey });
  for (let n = 0; running && Date.now() < stopAt && n < 1_000_000; n++) {
    const conversationId = conversationIds[n % conversationIds.length]!;
    counts.writesAttempted++;
    try {
      const message = await rest.call('messages.create', { conversation_id: conversationId, content: `rest ${node.index} ${n}` });
      acknowledged.get(conversationId)!.add(message.id);
      counts.writesAcknowledged++;
    } catch (error) {
      recordFailure('rest', error);
      await sleep(200);
    }
    await sleep(WRITE_GAP_MS);
  }
}

const wsWriterSockets: GatewaySocket[] = [];
async function wsWriter(node: Node, conversationIds: string[], stopAt: number): Promise<void> {
  let socket: GatewaySocket | null = null;
  for (let n = 0; running && Date.now() < stopAt && n < 1_000_000; n++) {
    if (!socket?.isOpen) {
      socket = await reconnect(node, stopAt);
      if (!socket) return;
      wsWriterSockets.push(socket);
    }
    const conversationId = conversationIds[n % conversationIds.length]!;
    counts.writesAttempted++;
    try {
      const message = await socket.call('messages.create', { conversation_id: conversationId, content: `ws ${node.index} ${n}` });
      acknowledged.get(conversationId)!.add(message.id);
      counts.writesAcknowledged++;
    } catch (error) {
      recordFailure('ws', error);
      await sleep(200);
    }
    await sleep(WRITE_GAP_MS);
  }
  await socket?.close().catch(() => {});
}

// ---------------- the run ----------------

async function storedIds(rest: RestClient, conversationId: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  // Bounded: 100 per page, at most 10,000 pages.
  for (let page = 0; page < 10_000; page++) {
    const result = await rest.call('messages.list', { conversation_id: conversationId, limit: 100, ...(cursor ? { cursor } : {}) });
    ids.push(...result.data.map((message) => message.id));
    if (!result.has_more) break;
    cursor = result.next_cursor!;
  }
  return ids;
}

async function main(): Promise<number> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  ensureGatewayBuilt(log);
  const dataDir = mkdtempSync(join(tmpdir(), 'sg-soak-'));
  const schema = `soak_${randomBytes(4).toString('hex')}`;
  let redis: RedisProcess | null = null;
  if (PRIVATE_REDIS) {
    redis = new RedisProcess(await freePort());
    await redis.start();
  }
  const redisUrl = redis?.url ?? values['redis-url'];
  apiKey = `sg_soak_${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    STATEGATE_API_KEY: apiKey,
    ...UNDER_LOAD_ENV,
    WEBHOOKS_ENABLED: 'false',
    ...(DATABASE_URL ? { DATABASE_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '4' } : { DATA_DIR: join(dataDir, 'pglite') }),
    ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `${schema}:` } : {}),
  };
  const ports: number[] = [];
  while (ports.length < NODE_COUNT) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  nodes = ports.map((port, index) => new Node(index, port, env));
  const backend = `${DATABASE_URL ? 'PostgreSQL' : 'PGlite (on disk)'}, ${redisUrl ? `Redis${PRIVATE_REDIS ? ' (private, killed)' : ''}` : 'in-process bus'}, ${NODE_COUNT} node(s)`;
  log(`starting: ${backend}; ${MINUTES} min; load average ${machine.loadAverage.join(' ')}`);
  try {
    // The first node migrates and provisions; the others then start together.
    await nodes[0]!.start();
    await Promise.all(nodes.slice(1).map((node) => node.start()));

    const rest = new RestClient({ baseUrl: nodes[0]!.httpUrl, apiKey });
    const agent = await rest.call('agents.create', { name: 'Soak agent' });
    const conversationIds: string[] = [];
    for (let i = 0; i < CONVERSATIONS; i++) conversationIds.push((await rest.call('conversations.create', { agent_id: agent.id })).id);
    for (const id of conversationIds) acknowledged.set(id, new Set());

    const subscribers: Subscriber[] = [];
    const topics = [
      ...conversationIds.flatMap((id) =>
        Array.from({ length: SUBSCRIBERS_PER_CONVERSATION }, () => ({ topic: `conversation:${id}`, conversationId: id as string | null })),
      ),
      { topic: 'account', conversationId: null },
      { topic: 'account', conversationId: null },
    ];
    for (const [i, { topic, conversationId }] of topics.entries()) {
      const node = nodes[i % nodes.length]!;
      const sub: Subscriber = {
        name: `${topic}#${i}@${node.index}`,
        topic,
        conversationId,
        node,
        socket: await connectSocket(node),
        seq: 0,
        epoch: '',
        messageIds: [],
        seen: new Set(),
        duplicates: 0,
        gaps: 0,
        backwards: 0,
        resets: 0,
        epochChanges: 0,
        reconnects: 0,
      };
      await follow(sub, false);
      subscribers.push(sub);
    }
    const epochsAtStart = new Map(subscribers.map((sub) => [sub.topic, sub.epoch]));

    const soakEnd = Date.now() + MINUTES * 60_000;
    let drainEnd = soakEnd + DRAIN_MS;
    const followers = subscribers.map((sub) => keepSubscribed(sub, () => drainEnd));
    const writers = nodes.flatMap((node) => [restWriter(node, conversationIds, soakEnd), wsWriter(node, [...conversationIds].reverse(), soakEnd)]);

    // Faults, one at a time, until the end of the soak. Bounded: at most 10,000 rounds.
    let nextGatewayKill = Date.now() + 20_000 + Math.random() * 10_000;
    let nextRedisKill = Date.now() + 35_000 + Math.random() * 10_000;
    let lastProgress = Date.now();
    for (let round = 0; round < 10_000 && Date.now() < soakEnd - 3000; round++) {
      await sleep(1000 + Math.random() * 2000);
      if (Date.now() >= soakEnd - 3000) break;
      if (Date.now() >= nextGatewayKill) {
        const node = pick(nodes);
        log(`fault: SIGKILL gateway node ${node.index}`);
        await node.kill('SIGKILL');
        counts.faults.gatewayKills++;
        await sleep(500 + Math.random() * 1500);
        const ms = await node.start();
        counts.gatewayRestartMs.push(ms);
        log(`gateway node ${node.index} ready again after ${ms} ms`);
        nextGatewayKill = Date.now() + 30_000 + Math.random() * 20_000;
      } else if (redis && Date.now() >= nextRedisKill) {
        log('fault: SIGKILL redis-server');
        await redis.stop({ hard: true });
        counts.faults.redisKills++;
        await sleep(1000 + Math.random() * 3000);
        await redis.start();
        log('redis-server restarted (empty)');
        nextRedisKill = Date.now() + 30_000 + Math.random() * 20_000;
      } else {
        // Client-side drop: a subscriber, or a WebSocket writer with a call possibly in flight.
        const candidates = [...subscribers.map((sub) => sub.socket), ...wsWriterSockets].filter((socket): socket is GatewaySocket => socket?.isOpen ?? false);
        if (candidates.length > 0) {
          pick(candidates).terminate();
          counts.faults.socketDrops++;
        }
      }
      if (Date.now() - lastProgress > 15_000) {
        lastProgress = Date.now();
        log(
          `progress: ${counts.writesAcknowledged} acknowledged writes, ${counts.faults.socketDrops} socket drops, ${counts.faults.gatewayKills} gateway kills, ${counts.faults.redisKills} redis kills`,
        );
      }
    }

    await Promise.all(writers);
    running = false;
    log(`writers done: ${counts.writesAcknowledged} acknowledged; draining (at most ${DRAIN_MS / 1000} s)`);
    const stored = new Map<string, string[]>();
    for (const id of conversationIds) stored.set(id, await storedIds(rest, id));
    const allStored = new Set([...stored.values()].flat());
    const expectedFor = (sub: Subscriber) => (sub.conversationId ? stored.get(sub.conversationId)! : [...allStored]);
    // Drain: wait until every subscriber holds every stored message, or the drain deadline.
    while (Date.now() < drainEnd && !subscribers.every((sub) => expectedFor(sub).every((id) => sub.seen.has(id)))) await sleep(250);
    drainEnd = Date.now();
    await Promise.all(followers);

    // ---------------- the verdict ----------------
    const ackAll = new Set([...acknowledged.values()].flatMap((set) => [...set]));
    const acknowledgedNotStored = [...ackAll].filter((id) => !allStored.has(id)).length;
    const storedNotAcknowledged = [...allStored].filter((id) => !ackAll.has(id)).length;
    const perSubscriber = subscribers.map((sub) => {
      const expected = expectedFor(sub);
      const expectedSet = new Set(expected);
      const lost = expected.filter((id) => !sub.seen.has(id)).length;
      // The order the subscriber saw against the store's order (per conversation for `account`).
      const received = sub.messageIds.filter((id) => expectedSet.has(id));
      let outOfOrder = sub.backwards;
      if (sub.conversationId) outOfOrder += received.filter((id, i) => id !== expected[i]).length > 0 ? 1 : 0;
      else
        for (const ids of stored.values()) {
          const inConversation = new Set(ids);
          const seenOrder = received.filter((id) => inConversation.has(id));
          if (seenOrder.some((id, i) => id !== ids[i])) outOfOrder++;
        }
      const epochStable = sub.epoch === epochsAtStart.get(sub.topic);
      return {
        name: sub.name,
        expected: expected.length,
        delivered: sub.seen.size,
        lost,
        duplicates: sub.duplicates,
        gaps: sub.gaps,
        outOfOrder,
        resets: sub.resets,
        epochChanges: sub.epochChanges + (epochStable ? 0 : 1),
        reconnects: sub.reconnects,
      };
    });
    const sum = (key: keyof (typeof perSubscriber)[number]) => perSubscriber.reduce((total, row) => total + (row[key] as number), 0);
    const events = {
      subscribers: subscribers.length,
      expected_deliveries: sum('expected'),
      delivered: sum('delivered'),
      lost: sum('lost'),
      duplicates: sum('duplicates'),
      gaps: sum('gaps'),
      out_of_order: sum('outOfOrder'),
      resets_recovered_false: sum('resets'),
      epoch_changes: sum('epochChanges'),
      reconnects: sum('reconnects'),
    };
    const answers5xx = Object.values(counts.answers5xx).reduce((a, b) => a + b, 0);
    const mustBeZero = {
      lost_events: events.lost,
      duplicated_events: events.duplicates,
      out_of_order_events: events.out_of_order,
      gaps: events.gaps,
      resets_recovered_false: events.resets_recovered_false,
      epoch_changes: events.epoch_changes,
      answers_5xx: answers5xx,
      answers_4xx: Object.values(counts.answers4xx).reduce((a, b) => a + b, 0),
      acknowledged_not_stored: acknowledgedNotStored,
      gateway_error_log_lines: nodes.reduce((total, node) => total + node.errorLines, 0),
    };
    const passed = Object.values(mustBeZero).every((value) => value === 0);
    const report = {
      scenario: 'soak',
      startedAt,
      finishedAt: new Date().toISOString(),
      passed,
      settings: {
        minutes: MINUTES,
        backend,
        nodes: NODE_COUNT,
        conversations: CONVERSATIONS,
        subscribersPerConversation: SUBSCRIBERS_PER_CONVERSATION,
        accountSubscribers: 2,
        writers: `${NODE_COUNT * 2} (one REST, one WebSocket per node)`,
        writeGapMs: WRITE_GAP_MS,
      },
      machine,
      loadAverageAtEnd: loadavg().map((value) => Math.round(value * 100) / 100),
      mustBeZero,
      writes: {
        attempted: counts.writesAttempted,
        acknowledged: counts.writesAcknowledged,
        stored: allStored.size,
        acknowledged_not_stored: acknowledgedNotStored,
        stored_not_acknowledged: storedNotAcknowledged,
        unreachable: counts.writesUnreachable,
        unknown_outcome: counts.writesUnknownOutcome,
        answers_5xx: counts.answers5xx,
        answers_4xx: counts.answers4xx,
      },
      events,
      faults: { ...counts.faults, gatewayRestartMs: counts.gatewayRestartMs },
      subscribeFailures: counts.subscribeFailures,
      perSubscriber,
    };
    mkdirSync(values.out!, { recursive: true });
    writeFileSync(join(values.out!, 'soak.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(values.out!, 'soak.md'), markdown(report));
    log(`${passed ? 'PASSED' : 'FAILED'}: ${JSON.stringify(mustBeZero)}`);
    log(
      `writes: ${counts.writesAcknowledged} acknowledged, ${allStored.size} stored, ${storedNotAcknowledged} stored without an answer (of ${counts.writesUnknownOutcome} unknown outcomes)`,
    );
    log(`report: ${join(values.out!, 'soak.md')}`);
    return passed ? 0 : 1;
  } finally {
    running = false;
    for (const socket of openSockets) socket.terminate();
    await Promise.all(nodes.map((node) => node.kill('SIGTERM')));
    await redis?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    if (DATABASE_URL) await dropSchema(DATABASE_URL, schema).catch((error: unknown) => log(`could not drop schema ${schema}: ${String(error)}`));
  }
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

function markdown(report: {
  startedAt: string;
  passed: boolean;
  settings: Record<string, unknown>;
  machine: ReturnType<typeof describeMachine>;
  loadAverageAtEnd: number[];
  mustBeZero: Record<string, number>;
  writes: Record<string, unknown>;
  events: Record<string, number>;
  faults: Record<string, unknown>;
  subscribeFailures: Record<string, number>;
}): string {
  const table = (rows: [string, unknown][]) =>
    [
      '| what | value |',
      '|---|---|',
      ...rows.map(([key, value]) => `| ${key} | ${typeof value === 'object' ? `\`${JSON.stringify(value)}\`` : String(value)} |`),
    ].join('\n');
  const m = report.machine;
  return [
    '# stategate soak (`npm run soak`)',
    '',
    `${report.startedAt}; ${String(report.settings.minutes)} min; ${String(report.settings.backend)}. ${m.cpuModel}, ${m.cores} cores, node ${m.node}, commit ${m.gitCommit.slice(0, 10)}${m.gitDirty ? ' (dirty)' : ''}.`,
    `Load average at the start ${m.loadAverage.join(' ')}, at the end ${report.loadAverageAtEnd.join(' ')} (the machine is shared).`,
    '',
    `**${report.passed ? 'Passed' : 'FAILED'}**: every count below is expected to be 0.`,
    '',
    table(Object.entries(report.mustBeZero)),
    '',
    '## Writes',
    '',
    'A write is `unreachable` when its connection was refused (the gateway was down: nothing was sent) and of `unknown outcome` when the connection broke with it in flight; such a write may have been stored (`stored_not_acknowledged`), and its event must then be delivered like any other.',
    '',
    table(Object.entries(report.writes)),
    '',
    '## Events',
    '',
    "`expected_deliveries` is every stored message times the subscribers that should see it (its conversation's and the two `account` subscribers).",
    '',
    table(Object.entries(report.events)),
    '',
    '## Faults injected',
    '',
    table([...Object.entries(report.faults), ['subscribe failures while reconnecting', report.subscribeFailures]]),
    '',
    '## Settings',
    '',
    table(Object.entries(report.settings)),
    '',
  ].join('\n');
}

const timer = setTimeout(
  () => {
    // A hard stop in case anything above hangs: the soak must end by itself.
    log('hard deadline reached: exiting');
    process.exit(2);
  },
  (MINUTES * 60 + DRAIN_MS / 1000 + 180) * 1000,
);
timer.unref();
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
