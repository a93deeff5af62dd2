import { spawn } from 'node:child_process';
import { sleep } from '../lib/clock.js';
import { forkServer, freePort, sibling, stopChild, type ServerChild } from '../target/child.js';
import { openGateway, type GatewayTarget } from '../target/gateway.js';
import type { ClientTarget } from '../worker/link.js';
import type { Settings } from '../settings.js';

/**
 * The servers a scenario loads, each a separate process: the gateway (or the one given by --url)
 * and the baselines on the same machine, loaded by the same clients with the same payloads.
 */
export interface Subject {
  name: string;
  target: ClientTarget;
  /** Processes whose CPU and memory count as the server's (empty: not measurable). */
  pids: number[];
  stop(): Promise<void>;
  /** Before memory samples: servers started here collect garbage on request. */
  collectGarbage(): Promise<void>;
  /**
   * Processes measured beside the server, each group on its own (Redis, PostgreSQL backends),
   * looked up at every sample; when given, the load generator's processes are measured too.
   */
  alongside?: Record<string, () => number[] | Promise<number[]>>;
}

export type BaselineName = 'uws' | 'ws' | 'socketio' | 'socketio-redis';
export type BaselineMode = 'echo' | 'publish' | 'idle';

export async function startGatewaySubject(
  settings: Settings,
  log: (line: string) => void,
  env: Record<string, string> = {},
): Promise<{ subject: Subject; gateway: GatewayTarget }> {
  const gateway = await openGateway({ url: settings.url, key: settings.key, pid: settings.pid, databaseUrl: settings.databaseUrl, env, log });
  return {
    gateway,
    subject: {
      name: 'gateway',
      target: { dialect: 'websocket', urls: [gateway.wsUrl], headers: { 'X-API-Key': gateway.apiKey } },
      pids: gateway.pid ? [gateway.pid] : [],
      stop: () => gateway.stop(),
      collectGarbage: () => gateway.collectGarbage(),
    },
  };
}

/** The baselines this run compares with: --baselines, plus socketio-redis with --socketio-redis. */
export function baselineNames(settings: Settings): BaselineName[] {
  const names = settings.baselines.filter((name): name is BaselineName => ['uws', 'ws', 'socketio'].includes(name));
  return settings.socketioRedis ? [...names, 'socketio-redis'] : names;
}

export async function startBaseline(name: BaselineName, mode: BaselineMode): Promise<Subject> {
  if (name === 'socketio-redis') return startSocketIoPair(mode);
  const file = sibling(import.meta.url, `../baselines/${name === 'uws' ? 'uws-server' : name === 'ws' ? 'ws-server' : 'socketio-server'}.ts`);
  const child = await forkServer(file, [mode]);
  return {
    name,
    target: { dialect: name === 'socketio' ? 'socketio' : 'websocket', urls: [`${name === 'socketio' ? 'http' : 'ws'}://127.0.0.1:${child.port}`] },
    pids: [child.pid],
    stop: () => child.stop(),
    collectGarbage: () => child.collectGarbage(),
  };
}

/** Two Socket.IO nodes joined by the Redis adapter over a redis-server of our own on loopback. */
async function startSocketIoPair(mode: BaselineMode): Promise<Subject> {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await sleep(300);
  if (redis.exitCode !== null || !redis.pid) throw new Error('redis-server did not start (is it installed?)');
  const file = sibling(import.meta.url, '../baselines/socketio-server.ts');
  const nodes: ServerChild[] = [];
  try {
    for (let index = 0; index < 2; index++) nodes.push(await forkServer(file, [mode], { REDIS_URL: `redis://127.0.0.1:${port}` }));
  } catch (error) {
    for (const node of nodes) await node.stop();
    await stopChild(redis);
    throw error;
  }
  return {
    name: 'socketio-redis',
    target: { dialect: 'socketio', urls: nodes.map((node) => `http://127.0.0.1:${node.port}`) },
    pids: [...nodes.map((node) => node.pid), redis.pid],
    collectGarbage: async () => {
      for (const node of nodes) await node.collectGarbage();
    },
    async stop() {
      for (const node of nodes) await node.stop();
      await stopChild(redis);
    },
  };
}

/** Runs `body` with the subject started, and always stops it. */
export async function withSubject<T>(start: () => Promise<Subject>, body: (subject: Subject) => Promise<T>): Promise<T> {
  const subject = await start();
  try {
    return await body(subject);
  } finally {
    await subject.stop();
  }
}
