import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { MetricJson, MetricsSnapshot } from '../metrics.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { isWorkerMessage, WORKER_COUNT_ENV, WORKER_INDEX_ENV, type SupervisorMessage, type WorkerMessage } from './messages.js';
import { DEFAULT_RESTART_POLICY, RestartPolicy, type RestartPolicyOptions } from './restart-policy.js';

/**
 * `WORKERS=N`: one gateway as N worker processes on one port.
 *
 * Each worker is a whole gateway (this same program, forked with its index in the environment)
 * that listens on the shared port with SO_REUSEPORT: the kernel spreads new connections between
 * the workers, and PostgreSQL and Redis make them one gateway, exactly as separate nodes are.
 * `child_process.fork` rather than `node:cluster`: cluster's one feature beyond fork is handing
 * out `net` listening handles from the primary, which uWS never uses (each worker binds the port
 * itself), and in a worker it would quietly reroute any `net` server through the primary.
 *
 * The supervisor serves no traffic. It starts the workers and reports once when all are ready,
 * restarts a worker that dies (with a backoff; a slot whose workers keep failing to start stops
 * the gateway), forwards SIGTERM/SIGINT and waits for every worker to drain, and answers the
 * workers' requests for the whole gateway's metrics.
 */
export interface SupervisorOptions {
  config: Pick<Config, 'workers' | 'host' | 'port' | 'shutdownGraceMs'>;
  log: Logger;
  /** Every worker ready for the first time: the gateway's addresses and the key this start created, if one did. */
  onReady?(gateway: ReadyGateway): void;
  /** The program each worker runs (default: this one, with the same arguments and Node options). */
  entry?: { path: string; args: string[]; execArgv: string[] };
  restartPolicy?: RestartPolicyOptions;
  /** A worker not ready this long after it was started is killed and counts as a failed start. */
  startTimeoutMs?: number;
}

export interface ReadyGateway {
  url: string;
  wsUrl: string;
  pids: number[];
  bootstrap: { accountId: string; key: string } | null;
}

/** The gateway could not start, or (`afterStart`) stopped because a worker could not be kept running. */
export class WorkersError extends Error {
  constructor(
    message: string,
    readonly afterStart = false,
  ) {
    super(message);
  }
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
/** Beyond SHUTDOWN_GRACE_MS, what a worker may take to close its WebSockets and connections. */
const STOP_MARGIN_MS = 10_000;
/** How long a scrape waits for each worker's snapshot (a late worker is counted from its last one). */
const COLLECT_TIMEOUT_MS = 2000;

interface Slot {
  readonly index: number;
  child: ChildProcess | null;
  ready: boolean;
  /** Why its current worker failed, as the worker said before exiting. */
  failure: string | null;
  startTimer: NodeJS.Timeout | null;
  restartTimer: NodeJS.Timeout | null;
}

export class Supervisor {
  private readonly slots: Slot[];
  private readonly policy: RestartPolicy;
  private readonly metrics = new GatewayMetrics();
  private readonly entry: { path: string; args: string[]; execArgv: string[] };
  /** Set once every worker has been ready: from then on a dead worker is restarted. */
  private announced = false;
  private addresses: { url: string; wsUrl: string } | null = null;
  private bootstrap: ReadyGateway['bootstrap'] = null;
  private stopping = false;
  private failure: { reason: string; afterStart: boolean } | null = null;
  private uncleanStop = false;
  private killTimer: NodeJS.Timeout | null = null;
  private restarts = 0;
  private nextCollection = 0;
  private readonly collecting = new Map<string, (snapshot: MetricsSnapshot) => void>();
  private finish: ((code: number) => void) | null = null;
  private readonly onSignal = (signal: NodeJS.Signals) => this.signalled(signal);

  constructor(private readonly options: SupervisorOptions) {
    this.slots = Array.from({ length: options.config.workers }, (_, index) => ({
      index,
      child: null,
      ready: false,
      failure: null,
      startTimer: null,
      restartTimer: null,
    }));
    this.policy = new RestartPolicy(options.restartPolicy ?? DEFAULT_RESTART_POLICY);
    this.entry = options.entry ?? { path: process.argv[1]!, args: process.argv.slice(2), execArgv: process.execArgv };
  }

  /** Runs the gateway until it is stopped; resolves to the exit code, rejects with WorkersError when it failed. */
  async run(): Promise<number> {
    const { host, port } = this.options.config;
    // The workers share the port with SO_REUSEPORT, which would let them join another gateway's
    // workers on it without a word: the port must be free before they start.
    await assertPortFree(host, port);
    const finished = new Promise<number>((resolve) => (this.finish = resolve));
    process.on('SIGTERM', this.onSignal);
    process.on('SIGINT', this.onSignal);
    for (const slot of this.slots) this.start(slot);
    const code = await finished;
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
    if (this.failure) throw new WorkersError(this.failure.reason, this.failure.afterStart);
    return code;
  }

  private start(slot: Slot): void {
    slot.restartTimer = null;
    slot.failure = null;
    slot.ready = false;
    const child = fork(this.entry.path, this.entry.args, {
      env: { ...process.env, [WORKER_INDEX_ENV]: String(slot.index), [WORKER_COUNT_ENV]: String(this.slots.length) },
      execArgv: this.entry.execArgv,
      // Structured clone: metric values may be NaN or Infinity.
      serialization: 'advanced',
    });
    slot.child = child;
    const timeoutMs = this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    slot.startTimer = setTimeout(() => {
      slot.failure = `not ready after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('message', (message: unknown) => {
      if (isWorkerMessage(message) && slot.child === child) this.received(slot, child, message);
    });
    child.once('exit', (code, signal) => this.exited(slot, child, code, signal));
    child.on('error', (error) => this.options.log.error({ err: error, worker: slot.index }, 'worker process error'));
  }

  private received(slot: Slot, child: ChildProcess, message: WorkerMessage): void {
    switch (message.type) {
      case 'ready':
        return this.workerReady(slot, child, message);
      case 'failed':
        slot.failure = message.reason;
        return;
      case 'metrics-request':
        void this.gatewayMetrics().then(
          (text) => send(child, { type: 'metrics-answer', id: message.id, text }),
          (error: unknown) => send(child, { type: 'metrics-answer', id: message.id, error: error instanceof Error ? error.message : String(error) }),
        );
        return;
      case 'metrics-snapshot':
        this.collecting.get(`${message.id}:${slot.index}`)?.(message.metrics);
        return;
    }
  }

  private workerReady(slot: Slot, child: ChildProcess, message: Extract<WorkerMessage, { type: 'ready' }>): void {
    slot.ready = true;
    if (slot.startTimer) clearTimeout(slot.startTimer);
    slot.startTimer = null;
    this.addresses ??= { url: message.url, wsUrl: message.wsUrl };
    this.bootstrap ??= message.bootstrap;
    if (this.announced) {
      this.options.log.info({ worker: slot.index, pid: child.pid }, 'worker ready again');
      return;
    }
    if (this.stopping || !this.slots.every((each) => each.ready)) return;
    this.announced = true;
    const pids = this.slots.map((each) => each.child!.pid!);
    this.options.log.info(
      { url: this.addresses.url, workers: this.slots.length, pids },
      `stategate ready: ${this.slots.length} workers on ${this.addresses.url}`,
    );
    this.options.onReady?.({ ...this.addresses, pids, bootstrap: this.bootstrap });
  }

  private exited(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    const wasReady = slot.ready;
    slot.child = null;
    slot.ready = false;
    if (slot.startTimer) clearTimeout(slot.startTimer);
    slot.startTimer = null;
    this.metrics.retire(slot.index);
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    if (this.stopping) {
      if (code !== 0) this.uncleanStop = true;
      this.options.log.info({ worker: slot.index, pid: child.pid, code, signal }, 'worker stopped');
      this.finishIfAllStopped();
      return;
    }
    const reason = slot.failure ? `${slot.failure} (${how})` : how;
    if (!this.announced) {
      this.fail(`worker ${slot.index} failed to start: ${reason}`);
      return;
    }
    const decision = this.policy.exited(slot.index, wasReady, Date.now());
    if ('giveUp' in decision) {
      this.fail(`${decision.giveUp}; the last: ${reason}`);
      return;
    }
    this.restarts++;
    this.options.log.warn(
      { worker: slot.index, pid: child.pid, code, signal, restart_in_ms: decision.restartInMs },
      `worker ${slot.index} ${wasReady ? 'died' : 'failed to start'} (${reason}): restarting`,
    );
    slot.restartTimer = setTimeout(() => this.start(slot), decision.restartInMs);
  }

  private signalled(signal: NodeJS.Signals): void {
    if (!this.stopping) {
      this.options.log.info({ signal }, 'shutting down: draining every worker');
      this.stop();
      return;
    }
    // A second signal: whoever sent it does not want to wait for the drain.
    this.options.log.warn({ signal }, 'second signal: killing the workers');
    this.killAll();
  }

  private fail(reason: string): void {
    if (this.stopping) return;
    this.failure = { reason, afterStart: this.announced };
    this.options.log.error({ reason }, `stopping the gateway: ${reason}`);
    this.stop();
  }

  /** SIGTERM to every worker (each drains as a single gateway does); SIGKILL to any left after the grace. */
  private stop(): void {
    this.stopping = true;
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
      slot.child?.kill('SIGTERM');
    }
    this.killTimer = setTimeout(() => {
      this.options.log.warn('workers still running after the shutdown grace: killing them');
      this.killAll();
    }, this.options.config.shutdownGraceMs + STOP_MARGIN_MS);
    this.finishIfAllStopped();
  }

  private killAll(): void {
    this.uncleanStop = true;
    for (const slot of this.slots) slot.child?.kill('SIGKILL');
  }

  private finishIfAllStopped(): void {
    if (this.slots.some((slot) => slot.child)) return;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.finish?.(this.uncleanStop || this.failure ? 1 : 0);
  }

  /** Every ready worker's fresh snapshot (or, when one is late, its last), merged with the supervisor's own. */
  private async gatewayMetrics(): Promise<string> {
    const id = this.nextCollection++;
    const ready = this.slots.filter((slot) => slot.ready && slot.child);
    const fresh = await Promise.all(ready.map((slot) => this.collect(slot, id)));
    const own: MetricsSnapshot = [
      gauge('stategate_workers', 'Worker processes configured (WORKERS)', this.slots.length),
      gauge('stategate_workers_ready', 'Worker processes serving', ready.length),
      gauge(
        'stategate_workers_scraped',
        'Workers whose metrics are fresh in this scrape (a late one is counted from its previous snapshot)',
        fresh.filter(Boolean).length,
      ),
      {
        name: 'stategate_worker_restarts_total',
        help: 'Workers restarted after they died',
        type: 'counter',
        aggregator: 'first',
        values: [{ value: this.restarts, labels: {} }],
      },
    ];
    return this.metrics.text(own);
  }

  private collect(slot: Slot, id: number): Promise<boolean> {
    const key = `${id}:${slot.index}`;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.collecting.delete(key);
        resolve(false);
      }, COLLECT_TIMEOUT_MS);
      this.collecting.set(key, (snapshot) => {
        clearTimeout(timer);
        this.collecting.delete(key);
        this.metrics.record(slot.index, snapshot);
        resolve(true);
      });
      if (!send(slot.child!, { type: 'metrics-collect', id })) {
        clearTimeout(timer);
        this.collecting.delete(key);
        resolve(false);
      }
    });
  }
}

function gauge(name: string, help: string, value: number): MetricJson {
  return { name, help, type: 'gauge', aggregator: 'first', values: [{ value, labels: {} }] };
}

function send(child: ChildProcess, message: SupervisorMessage): boolean {
  if (!child.connected) return false;
  // With a callback, a worker gone between the check and the write is not an 'error' event:
  // its exit is handled on its own.
  child.send(message, () => {});
  return true;
}

/** Rejects with WorkersError when something listens on host:port (a plain bind, without SO_REUSEPORT, fails then). */
function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? 'the port is in use (is another gateway running?)' : error.message;
      reject(new WorkersError(`could not listen on ${host}:${port}: ${why}`));
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
