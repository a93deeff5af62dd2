import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism } from 'node:os';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../protocol/index.js';
import { GatewaySocket, type WebSocketConstructor } from '../clients/index.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { Metrics } from '../src/metrics.js';
import { WebhookMetrics } from '../src/webhooks/worker.js';
import { GatewayMetrics } from '../src/workers/gateway-metrics.js';
import { RestartPolicy } from '../src/workers/restart-policy.js';
import { dropSchema, postgresProblem, POSTGRES_URL } from './helpers/backends.js';
import { deleteKeys, freePort, REDIS_URL, redisAvailable } from './helpers/redis.js';
import { gatewayProcess as spawnGateway, type GatewayProcess } from './helpers/gateway-process.js';

/** A gateway process on loopback. */
const gatewayProcess = (env: Record<string, string>): GatewayProcess => spawnGateway({ HOST: '127.0.0.1', NODE_ENV: 'test', ...env });

/**
 * WORKERS=2: one gateway as two worker processes on one port, under a supervisor process
 * (`node --import tsx src/main.ts`, as the other multi-process suites start gateways). The
 * process suites need PostgreSQL and Redis (under CI=true their absence fails the run).
 */
const pgProblem = await postgresProblem();
if (pgProblem && process.env.CI === 'true') throw new Error(`CI=true requires PostgreSQL for the workers suite: ${pgProblem}`);
if (pgProblem) process.stderr.write(`\n[stategate tests] SKIPPING the workers suite: ${pgProblem}\n\n`);
const available = !pgProblem && (await redisAvailable('the workers suite'));

describe('WORKERS setting', () => {
  const complete = { DATABASE_URL: 'postgres://db/stategate', REDIS_URL: 'redis://redis:6379' };

  it('defaults to 1 and accepts 1..64', () => {
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ ...complete, WORKERS: '64' }).workers).toBe(64);
    expect(() => loadConfig({ WORKERS: '0' })).toThrow(/WORKERS/);
    expect(() => loadConfig({ ...complete, WORKERS: '65' })).toThrow(/WORKERS/);
    expect(() => loadConfig({ WORKERS: 'two' })).toThrow(/WORKERS: must be a number of processes from 1 to 64, or auto/);
  });

  it('auto is one per core this process may use', () => {
    expect(loadConfig({ ...complete, WORKERS: 'auto' }).workers).toBe(Math.min(64, availableParallelism()));
    if (availableParallelism() > 1) expect(() => loadConfig({ WORKERS: 'auto' })).toThrow(/REDIS_URL: WORKERS=auto \(\d+ cores\) needs Redis/);
  });

  it('above 1 needs PostgreSQL, Redis and a fixed port, and says why', () => {
    const refusal = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal({ WORKERS: '2', REDIS_URL: complete.REDIS_URL })).toMatch(
      /DATABASE_URL: WORKERS=2 needs PostgreSQL \(the embedded PGlite is one process's database\)/,
    );
    expect(refusal({ WORKERS: '2', DATABASE_URL: complete.DATABASE_URL })).toMatch(/REDIS_URL: WORKERS=2 needs Redis/);
    expect(refusal({ ...complete, WORKERS: '3', PORT: '0' })).toMatch(/PORT: WORKERS=3 needs a fixed port/);
    // Every problem at once.
    expect(refusal({ WORKERS: '2', PORT: '0' }).split('\n')).toHaveLength(4);
    expect(loadConfig({ ...complete, WORKERS: '2' })).toMatchObject({ workers: 2, port: 8080, redisUrl: complete.REDIS_URL });
  });

  it('a gateway started with WORKERS=2 and no REDIS_URL exits with code 2 and the reason', async () => {
    const gateway = gatewayProcess({ WORKERS: '2', DATABASE_URL: POSTGRES_URL, REDIS_URL: '', PORT: '8080' });
    expect(await gateway.exited).toEqual({ code: 2, signal: null });
    expect(gateway.output()).toContain('REDIS_URL: WORKERS=2 needs Redis');
  });
});

describe('restart policy', () => {
  const policy = () => new RestartPolicy({ maxStartFailures: 5, windowMs: 60_000, baseDelayMs: 250, maxDelayMs: 10_000 });

  it('restarts with a doubling delay, and gives up on the fifth failed start within the window', () => {
    const restarts = policy();
    const decisions = [0, 1, 2, 3].map((second) => restarts.exited(0, false, second * 1000));
    expect(decisions).toEqual([{ restartInMs: 250 }, { restartInMs: 500 }, { restartInMs: 1000 }, { restartInMs: 2000 }]);
    expect(restarts.exited(0, false, 4000)).toEqual({ giveUp: 'worker 0 failed to start 5 times within 60 s' });
  });

  it('counts per slot and per window: failures spread out, or of other slots, do not add up', () => {
    const restarts = policy();
    for (let i = 0; i < 4; i++) restarts.exited(0, false, i * 1000);
    expect(restarts.exited(1, false, 4000)).toEqual({ restartInMs: 250 });
    // A minute later the early failures have left the window.
    expect(restarts.exited(0, false, 63_500)).toEqual({ restartInMs: 250 });
  });

  it('keeps restarting a worker that dies after it was ready, with the delay capped', () => {
    const restarts = policy();
    let last: unknown;
    for (let i = 0; i < 20; i++) last = restarts.exited(0, true, i * 100);
    expect(last).toEqual({ restartInMs: 10_000 });
  });
});

describe('the gateway metrics of several workers', () => {
  /** A worker's registry: `operations` agents.list calls of `seconds` each, `connections` open sockets. */
  function workerMetrics(operations: number, seconds: number, connections: number): Metrics {
    const metrics = new Metrics({ connections: () => connections, followedStreams: () => 1 });
    for (let i = 0; i < operations; i++) metrics.observeOperation('agents.list', 'rest', 'ok', seconds);
    // The webhook worker's metrics: its queue depth is one count in PostgreSQL, read alike by every worker.
    new WebhookMetrics(metrics.registry, async () => 7);
    return metrics;
  }

  function valueOf(text: string, series: string): number {
    const line = text.split('\n').find((each) => each.startsWith(`${series} `));
    if (!line) throw new Error(`no ${series} in:\n${text}`);
    return Number(line.slice(series.length + 1));
  }

  const calls = 'stategate_operations_total{operation="agents.list",transport="rest",outcome="ok"}';

  it('sums counters, the custom histogram and per-worker gauges; reads shared gauges once', async () => {
    const merged = new GatewayMetrics();
    merged.record(0, await workerMetrics(2, 0.003, 4).snapshot());
    merged.record(1, await workerMetrics(3, 0.0007, 6).snapshot());
    const text = await merged.text();
    expect(valueOf(text, calls)).toBe(5);
    expect(valueOf(text, 'stategate_operation_seconds_bucket{le="0.001",transport="rest"}')).toBe(3);
    expect(valueOf(text, 'stategate_operation_seconds_bucket{le="0.005",transport="rest"}')).toBe(5);
    expect(valueOf(text, 'stategate_operation_seconds_bucket{le="+Inf",transport="rest"}')).toBe(5);
    expect(valueOf(text, 'stategate_operation_seconds_count{transport="rest"}')).toBe(5);
    expect(valueOf(text, 'stategate_operation_seconds_sum{transport="rest"}')).toBeCloseTo(2 * 0.003 + 3 * 0.0007, 9);
    expect(valueOf(text, 'stategate_websocket_connections')).toBe(10);
    expect(valueOf(text, 'stategate_webhook_queue_depth')).toBe(7);
    // One HELP/TYPE header per metric: valid exposition text.
    expect(text.match(/^# TYPE stategate_operation_seconds histogram$/gm)).toHaveLength(1);
  });

  it("keeps a replaced worker's counts, so the gateway's counters never go down", async () => {
    const merged = new GatewayMetrics();
    merged.record(0, await workerMetrics(2, 0.003, 4).snapshot());
    merged.record(1, await workerMetrics(3, 0.003, 6).snapshot());
    merged.retire(1);
    const afterDeath = await merged.text();
    expect(valueOf(afterDeath, calls)).toBe(5);
    expect(valueOf(afterDeath, 'stategate_operation_seconds_count{transport="rest"}')).toBe(5);
    // Its gauges leave with it.
    expect(valueOf(afterDeath, 'stategate_websocket_connections')).toBe(4);

    merged.record(1, await workerMetrics(1, 0.003, 1).snapshot());
    merged.retire(0);
    merged.record(0, await workerMetrics(1, 0.003, 0).snapshot());
    const text = await merged.text();
    expect(valueOf(text, calls)).toBe(7);
    expect(valueOf(text, 'stategate_operation_seconds_bucket{le="0.005",transport="rest"}')).toBe(7);
    expect(valueOf(text, 'stategate_websocket_connections')).toBe(1);
  });
});

describe.runIf(available)('WORKERS=2: one gateway as two processes on one port', () => {
  const schema = `t_workers_${randomBytes(5).toString('hex')}`;
  const keyPrefix = `sgtest:${schema}:`;
  const apiKey = `sg_test_${randomBytes(16).toString('hex')}`;
  let port: number;
  let gateway: GatewayProcess;
  const sockets: GatewaySocket[] = [];

  const workersEnv = () => ({
    WORKERS: '2',
    PORT: String(port),
    DATABASE_URL: POSTGRES_URL,
    DATABASE_SCHEMA: schema,
    DATABASE_POOL_SIZE: '3',
    REDIS_URL,
    REDIS_KEY_PREFIX: keyPrefix,
    STATEGATE_API_KEY: apiKey,
    // Printed by the supervisor, once: checked below.
    PRINT_BOOTSTRAP_KEY: 'true',
    RATE_LIMITS_ENABLED: 'false',
    SHUTDOWN_GRACE_MS: '2000',
  });

  beforeAll(async () => {
    port = await freePort();
    gateway = gatewayProcess(workersEnv());
    await gateway.waitFor(/stategate ready: 2 workers on http:\/\/127\.0\.0\.1:\d+/, 40_000);
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) if (socket.isOpen) await socket.close().catch(() => {});
    if (gateway && gateway.child.exitCode === null) {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
    await deleteKeys(REDIS_URL, keyPrefix).catch(() => {});
    await dropSchema(schema);
  }, 30_000);

  const api = (agent: http.Agent | false, method: string, path: string, body?: unknown) => request(port, agent, { method, path, body, apiKey });

  /** The worker that answers a request on a fresh connection. */
  async function freshWorker(): Promise<Worker> {
    const { status, body } = await api(false, 'GET', '/readyz');
    expect(status).toBe(200);
    return (body as { worker: Worker }).worker;
  }

  /** Fresh connections until both workers have answered (the kernel hashes each to one of them). */
  async function bothWorkers(): Promise<Map<number, number>> {
    const seen = new Map<number, number>();
    for (let attempt = 0; attempt < 60 && seen.size < 2; attempt++) {
      const worker = await freshWorker();
      seen.set(worker.index, worker.pid);
    }
    return seen;
  }

  /**
   * A keep-alive connection, with the worker it reached: one socket, so everything sent through
   * it reaches that same worker.
   */
  async function pinned(): Promise<{ agent: http.Agent; worker: Worker }> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const { body } = await api(agent, 'GET', '/readyz');
    return { agent, worker: (body as { worker: Worker }).worker };
  }

  it('starts both workers as children of the supervisor, prints the bootstrap key once, and both serve the port', async () => {
    expect(gateway.output().match(/Created account acct_\w+ with API key/g)).toHaveLength(1);
    const seen = await bothWorkers();
    expect([...seen.keys()].sort()).toEqual([0, 1]);
    expect(new Set(seen.values()).size).toBe(2);
    // The load test finds the workers as the supervisor's children (tsx's esbuild service aside).
    expect(new Set(workerChildren(gateway.child.pid!))).toEqual(new Set(seen.values()));
    const { status, body } = await api(false, 'GET', '/healthz');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', worker: { index: expect.any(Number), pid: expect.any(Number) } });
  });

  it('is one gateway: a subscriber on either worker gets the events of writes that landed on the other', async () => {
    const agent = (await api(false, 'POST', '/v1/agents', { name: 'Workers agent' })).body as { data: { id: string } };
    const conversation = (await api(false, 'POST', '/v1/conversations', { agent_id: agent.data.id, channel: 'web' })).body as { data: { id: string } };
    const topic = `conversation:${conversation.data.id}`;
    const subscribers: string[][] = [];
    for (let i = 0; i < 4; i++) {
      const socket = await GatewaySocket.connect({ url: `ws://127.0.0.1:${port}/v1/ws`, apiKey, WebSocket: WebSocket as unknown as WebSocketConstructor });
      sockets.push(socket);
      const received: string[] = [];
      await socket.subscribe(topic, (frame: EventFrame) => {
        const id = (frame.data as { message?: { id: string } }).message?.id;
        if (frame.event === 'message.created' && id) received.push(id);
      });
      subscribers.push(received);
    }

    // Writes, each through a connection whose worker is known, until both workers have taken some.
    const written: { worker: number; id: string }[] = [];
    for (let attempt = 0; attempt < 40 && new Set(written.map((w) => w.worker)).size < 2; attempt++) {
      const { agent: connection, worker } = await pinned();
      try {
        const created = await api(connection, 'POST', '/v1/messages', { conversation_id: conversation.data.id, content: `via worker ${worker.index}` });
        expect(created.status).toBe(201);
        // Still the same connection, so the same worker took the write.
        expect(((await api(connection, 'GET', '/readyz')).body as { worker: Worker }).worker).toEqual(worker);
        written.push({ worker: worker.index, id: (created.body as { data: { id: string } }).data.id });
      } finally {
        connection.destroy();
      }
    }
    expect(new Set(written.map((w) => w.worker))).toEqual(new Set([0, 1]));

    // Each subscriber sits on one worker, and writes landed on both: every subscriber getting
    // every event means each got events from writes on the other worker.
    const ids = written.map((w) => w.id);
    await until(
      () => subscribers.every((received) => ids.every((id) => received.includes(id))),
      10_000,
      () => `events: ${subscribers.map((received) => received.length).join(', ')} of ${ids.length}`,
    );
    for (const received of subscribers) expect(received).toEqual(ids);
  });

  it('counts requests of both workers in one scrape, whichever worker takes it', async () => {
    const series = 'stategate_operations_total{operation="agents.list",transport="rest",outcome="ok"}';
    const scrape = async () => {
      const { status, text } = await request(port, false, { method: 'GET', path: '/metrics' });
      expect(status).toBe(200);
      const line = text.split('\n').find((each) => each.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    const before = await scrape();
    const perWorker = new Map<number, number>();
    for (let attempt = 0; attempt < 40 && (perWorker.size < 2 || [...perWorker.values()].reduce((a, b) => a + b) < 8); attempt++) {
      const { agent: connection, worker } = await pinned();
      try {
        for (let i = 0; i < 2; i++) expect((await api(connection, 'GET', '/v1/agents')).status).toBe(200);
      } finally {
        connection.destroy();
      }
      perWorker.set(worker.index, (perWorker.get(worker.index) ?? 0) + 2);
    }
    expect(perWorker.size).toBe(2);
    const total = [...perWorker.values()].reduce((a, b) => a + b);
    // Scraped through fresh connections (so by either worker): always the sum, never one worker's share.
    for (let i = 0; i < 4; i++) expect((await scrape()) - before).toBe(total);
    const { text } = await request(port, false, { method: 'GET', path: '/metrics' });
    expect(text).toMatch(/^stategate_workers 2$/m);
    expect(text).toMatch(/^stategate_workers_scraped 2$/m);
    expect(text).toMatch(/^stategate_operation_seconds_count\{transport="rest"\} \d+$/m);
  });

  it('refuses a second gateway on its port, with WORKERS=2 or alone', async () => {
    const second = gatewayProcess(workersEnv());
    expect(await second.exited).toEqual({ code: 1, signal: null });
    expect(second.output()).toContain(`could not listen on 127.0.0.1:${port}: the port is in use`);
    const alone = gatewayProcess({ ...workersEnv(), WORKERS: '1' });
    expect(await alone.exited).toEqual({ code: 1, signal: null });
    expect(alone.output()).toMatch(/could not listen on 127\.0\.0\.1:\d+: the port is in use/);
    expect((await bothWorkers()).size).toBe(2);
  });

  it('replaces a worker killed with SIGKILL, and keeps answering meanwhile', async () => {
    const before = await bothWorkers();
    const victim = before.get(0)!;
    process.kill(victim, 'SIGKILL');
    // Dead once its parent has reaped it: a killed process's main thread shows as a zombie while
    // its other threads still hold its files, the listening socket among them, for a moment (a
    // connection the kernel hands that socket then is reset, as with any process that dies).
    await gateway.waitFor(/worker 0 died \(killed by SIGKILL\): restarting/, 5000);
    expect(alive(victim)).toBe(false);
    // The survivor takes every new connection until the replacement listens.
    for (let i = 0; i < 10; i++) {
      const answer = await api(false, 'GET', '/readyz').catch((error: Error) => error);
      if (answer instanceof Error) throw new Error(`request ${i} after the kill: ${answer.message}\n${gateway.output().slice(-3000)}`);
      expect(answer.status).toBe(200);
    }
    let replacement: number | undefined;
    await until(
      async () => {
        const worker = await freshWorker();
        if (worker.index === 0 && worker.pid !== victim) replacement = worker.pid;
        return replacement !== undefined;
      },
      20_000,
      () => 'a new worker 0',
    );
    expect(workerChildren(gateway.child.pid!).sort()).toEqual([replacement!, before.get(1)!].sort());
    expect(gateway.output()).toContain('worker ready again');
    const { text } = await request(port, false, { method: 'GET', path: '/metrics' });
    expect(text).toMatch(/^stategate_worker_restarts_total 1$/m);
  });

  it('SIGTERM to the supervisor drains every worker and exits 0, leaving no worker behind', async () => {
    const workers = workerChildren(gateway.child.pid!);
    expect(workers).toHaveLength(2);
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toEqual({ code: 0, signal: null });
    expect(workers.filter(alive)).toEqual([]);
    expect(gateway.output().match(/"msg":"stategate stopped"/g)).toHaveLength(2);
  });
});

describe.runIf(available)('WORKERS=2: stopping and failing', () => {
  it('a second signal kills the workers that are still draining (exit code 1)', async () => {
    const schema = `t_workers_${randomBytes(5).toString('hex')}`;
    const keyPrefix = `sgtest:${schema}:`;
    const gateway = gatewayProcess({
      WORKERS: '2',
      PORT: String(await freePort()),
      DATABASE_URL: POSTGRES_URL,
      DATABASE_SCHEMA: schema,
      DATABASE_POOL_SIZE: '2',
      REDIS_URL,
      REDIS_KEY_PREFIX: keyPrefix,
    });
    try {
      await gateway.waitFor(/stategate ready: 2 workers/, 40_000);
      const [stuck, other] = workerChildren(gateway.child.pid!);
      // A worker that cannot drain: stopped, it does not even see the SIGTERM.
      process.kill(stuck!, 'SIGSTOP');
      gateway.child.kill('SIGTERM');
      await gateway.waitFor(new RegExp(`"pid":${other},"code":0,"signal":null,"msg":"worker stopped"`), 10_000);
      expect(alive(stuck!)).toBe(true);
      gateway.child.kill('SIGTERM');
      expect(await gateway.exited).toEqual({ code: 1, signal: null });
      expect(gateway.output()).toContain('second signal: killing the workers');
      expect(alive(stuck!)).toBe(false);
    } finally {
      gateway.child.kill('SIGKILL');
      await deleteKeys(REDIS_URL, keyPrefix).catch(() => {});
      await dropSchema(schema);
    }
  }, 60_000);

  it('a worker that cannot start stops the gateway with exit code 1 and the worker’s reason', async () => {
    const missing = new URL(POSTGRES_URL);
    missing.pathname = `/stategate_missing_${randomBytes(4).toString('hex')}`;
    const gateway = gatewayProcess({
      WORKERS: '2',
      PORT: String(await freePort()),
      DATABASE_URL: missing.toString(),
      REDIS_URL,
      REDIS_KEY_PREFIX: `sgtest:workers-missing:${process.pid}:`,
    });
    expect(await gateway.exited).toEqual({ code: 1, signal: null });
    expect(gateway.output()).toMatch(/stategate cannot start: worker \d failed to start: database "stategate_missing_\w+" does not exist \(exit code 1\)/);
  }, 30_000);
});

interface Worker {
  index: number;
  pid: number;
}

/** One HTTP request; `agent: false` opens a fresh connection, a keep-alive agent reuses its one. */
function request(
  port: number,
  agent: http.Agent | false,
  options: { method: string; path: string; body?: unknown; apiKey?: string },
): Promise<{ status: number; body: unknown; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method,
        path: options.path,
        agent,
        headers: { ...(options.apiKey ? { 'x-api-key': options.apiKey } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) },
        timeout: 5000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let body: unknown = null;
          try {
            body = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${options.method} ${options.path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Pids of `parent`'s worker processes (its children running the gateway; tsx adds an esbuild child). */
function workerChildren(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The parent pid is the second field after the parenthesised command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('src/main.ts')) pids.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not reaped yet) is not a running worker.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
