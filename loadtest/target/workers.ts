import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { sleep } from '../lib/clock.js';
import { listeningOn, processTree } from '../lib/proc.js';
import { NotNativeError, openGateway, type GatewayTarget } from './gateway.js';

/**
 * The gateway as WORKERS=N processes on one port: `node dist/src/main.js` becomes a supervisor
 * that forks N workers, each listening with SO_REUSEPORT, sharing one PostgreSQL schema and one
 * Redis key prefix (see freshNamespace). Its processes are found in /proc.
 */
export interface WorkerGateway {
  gateway: GatewayTarget;
  /** The supervisor and every descendant: their CPU and memory are the server's. */
  pids: number[];
  /** The processes that listen on the port (with one worker, possibly the supervisor itself). */
  workerPids: number[];
  collectGarbage(): Promise<void>;
  stop(): Promise<void>;
}

/** Workers have no channel to the load generator: the GC preload also collects on this signal. */
const GC_SIGNAL = 'SIGUSR2';
const PRELOAD_NAME = 'gc-on-request.mjs';
const WORKERS_TIMEOUT_MS = 30_000;

/** A schema and a Redis key prefix of one start's own (the caller removes them, even when the start fails). */
export function freshNamespace(): { schema: string; keyPrefix: string } {
  const suffix = randomBytes(4).toString('hex');
  return { schema: `scale_${suffix}`, keyPrefix: `stategate-scale:${suffix}:` };
}

export async function startWorkerGateway(options: {
  workers: number;
  databaseUrl: string;
  redisUrl: string;
  namespace: { schema: string; keyPrefix: string };
  log: (line: string) => void;
}): Promise<WorkerGateway> {
  const { schema, keyPrefix } = options.namespace;
  const gateway = await openGateway({
    databaseUrl: options.databaseUrl,
    env: { WORKERS: String(options.workers), REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: keyPrefix, DATABASE_SCHEMA: schema },
    log: options.log,
  });
  try {
    const root = gateway.pid!;
    const port = Number(new URL(gateway.httpUrl).port);
    const workerPids = await waitForWorkers(root, port, options.workers);
    const confirmed = await checkNativeOnEveryWorker(gateway.httpUrl, workerPids);
    options.log(`  listening: ${workerPids.length} process(es), pids ${workerPids.join(', ')}; uWS native (${confirmed})`);
    const pids = processTree(root);
    const descendants = identify(pids.filter((pid) => pid !== root));
    return {
      gateway,
      pids,
      workerPids,
      async collectGarbage() {
        await gateway.collectGarbage();
        const signalled = pids.filter((pid) => pid !== root && hasGcPreload(pid));
        for (const pid of signalled) process.kill(pid, GC_SIGNAL);
        if (signalled.length > 0) await sleep(300);
      },
      async stop() {
        await gateway.stop();
        await reapLeftovers(descendants);
      },
    };
  } catch (error) {
    const descendants = identify(processTree(gateway.pid!).slice(1));
    await gateway.stop();
    await reapLeftovers(descendants);
    throw error;
  }
}

/** Waits until exactly `count` processes of the tree listen on the port. */
async function waitForWorkers(root: number, port: number, count: number): Promise<number[]> {
  const deadline = Date.now() + WORKERS_TIMEOUT_MS;
  let listening: number[] = [];
  while (Date.now() < deadline) {
    listening = listeningOn(port, processTree(root));
    if (listening.length === count) return listening;
    if (listening.length > count) break;
    await sleep(100);
  }
  throw new Error(
    `WORKERS=${count}: ${listening.length} gateway process(es) listen on port ${port} after ${WORKERS_TIMEOUT_MS / 1000} s, not ${count} ` +
      '(does this build of the gateway support WORKERS?)',
  );
}

/**
 * The first /readyz already refused a JavaScript uWS, but only on the worker that answered it.
 * Each fresh connection may land on another worker; with several, /readyz names the one that
 * answered (`worker.pid`), so every worker is asked until each has said native (bounded tries).
 */
async function checkNativeOnEveryWorker(httpUrl: string, workerPids: number[]): Promise<string> {
  const unconfirmed = new Set(workerPids);
  let named = false;
  for (let attempt = 0; attempt < 30 * workerPids.length && unconfirmed.size > 0; attempt++) {
    const body = await readinessOnFreshConnection(httpUrl);
    const uws = body.checks?.uws;
    if (uws !== undefined && uws !== 'native')
      throw new NotNativeError(`a worker of the gateway at ${httpUrl} runs uWS "${uws}", not native: refusing to report benchmark numbers`);
    if (body.worker?.pid === undefined) continue;
    named = true;
    if (uws === 'native') unconfirmed.delete(body.worker.pid);
  }
  // A single process does not name itself: the first /readyz was its own.
  if (!named) return 'the process said so';
  if (unconfirmed.size > 0)
    throw new Error(
      `worker(s) ${[...unconfirmed].join(', ')} of the gateway at ${httpUrl} never answered /readyz as native: refusing to report benchmark numbers`,
    );
  return 'each worker said so';
}

interface Readiness {
  checks?: Record<string, string>;
  worker?: { index?: number; pid?: number };
}

function readinessOnFreshConnection(httpUrl: string): Promise<Readiness> {
  return new Promise((resolve, reject) => {
    const request = get(`${httpUrl}/readyz`, { agent: false, timeout: 5000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        try {
          resolve(JSON.parse(body) as Readiness);
        } catch {
          reject(new Error(`/readyz answered ${response.statusCode} with no JSON: ${body.slice(0, 200)}`));
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error('/readyz did not answer within 5 s')));
    request.on('error', reject);
  });
}

function hasGcPreload(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(PRELOAD_NAME);
  } catch {
    return false;
  }
}

/** Processes by pid and start time: the same pid with the same start time is the same process. */
function identify(pids: number[]): Map<number, string | null> {
  return new Map(pids.map((pid) => [pid, startTimeOf(pid)]));
}

/** Workers the supervisor left behind (it should stop them): SIGKILL after 5 s, only our own. */
async function reapLeftovers(started: Map<number, string | null>): Promise<void> {
  const alive = () => [...started].filter(([pid, at]) => at !== null && startTimeOf(pid) === at).map(([pid]) => pid);
  const deadline = Date.now() + 5000;
  while (alive().length > 0 && Date.now() < deadline) await sleep(100);
  for (const pid of alive()) process.kill(pid, 'SIGKILL');
}

/** Start time (clock ticks after boot) of a live process; null when gone or a zombie. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? null : (fields[19] ?? null);
  } catch {
    return null;
  }
}
