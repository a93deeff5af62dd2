import { fork, type ChildProcess } from 'node:child_process';
import { sibling, TSX_EXEC_ARGV } from '../target/child.js';
import type { FromWorker, JobKind, JobResult, ToWorker } from './protocol.js';
import type { ClientTarget } from './link.js';

/**
 * The coordinator's side: forks the workers (one Node client cannot saturate uWS), moves them
 * through setup -> run -> finish together, relays flow-control data, and prints progress.
 */
export interface PoolOptions {
  label: string;
  workers: number;
  kind: JobKind;
  target: ClientTarget;
  /** Parameters of worker i. */
  paramsFor(workerIndex: number): unknown;
  /** Turns relay data from all workers into data sent back to all (fan-out credit). */
  onRelay?(fromWorker: number, data: unknown): unknown;
  log: (line: string) => void;
}

const PHASE_TIMEOUT_MS = 120_000;

export class WorkerPool {
  private readonly children: ChildProcess[] = [];
  private readonly latestProgress: Array<Record<string, number>> = [];
  private waiters: Array<{ type: FromWorker['type']; got: Map<number, FromWorker>; resolve: (value: FromWorker[]) => void; reject: (error: Error) => void }> =
    [];
  private failure: Error | null = null;

  private constructor(private readonly options: PoolOptions) {}

  static async start(options: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    const file = sibling(import.meta.url, './worker.ts');
    for (let index = 0; index < options.workers; index++) {
      const child = fork(file, [], { execArgv: TSX_EXEC_ARGV, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.on('message', (message: FromWorker) => pool.onMessage(index, message));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) pool.abort(new Error(`worker ${index} exited with ${code}`));
      });
      pool.children.push(child);
    }
    try {
      await pool.all('ready', (index) => ({
        type: 'setup',
        job: { kind: options.kind, workerIndex: index, workers: options.workers, target: options.target, params: options.paramsFor(index) },
      }));
    } catch (error) {
      pool.close();
      throw error;
    }
    return pool;
  }

  /** The worker processes (their CPU is the load generator's, with the coordinator's). */
  get pids(): number[] {
    return this.children.flatMap((child) => (child.pid ? [child.pid] : []));
  }

  /** Runs the measured window; resolves with each worker's run output. */
  async run(durationMs: number): Promise<unknown[]> {
    const started = Date.now();
    const timer = setInterval(() => this.printProgress(started), 1000);
    try {
      const ran = await this.all('ran', () => ({ type: 'start', durationMs }));
      return ran.map((message) => (message.type === 'ran' ? message.output : null));
    } finally {
      clearInterval(timer);
    }
  }

  async finish(input: unknown | ((workerIndex: number) => unknown)): Promise<JobResult[]> {
    const results = await this.all('result', (index) => ({
      type: 'finish',
      input: typeof input === 'function' ? (input as (i: number) => unknown)(index) : input,
    }));
    return results.map((message) => (message.type === 'result' ? message.result : { counters: {}, histograms: {}, notes: [] }));
  }

  close(): void {
    for (const child of this.children) if (child.connected) child.disconnect();
    for (const child of this.children) if (child.exitCode === null) setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  }

  private all(type: FromWorker['type'], make: (index: number) => ToWorker): Promise<FromWorker[]> {
    if (this.failure) return Promise.reject(this.failure);
    const done = new Promise<FromWorker[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.options.label}: workers did not answer "${type}" within ${PHASE_TIMEOUT_MS} ms`)),
        PHASE_TIMEOUT_MS,
      );
      this.waiters.push({
        type,
        got: new Map(),
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    this.children.forEach((child, index) => child.send(make(index)));
    return done;
  }

  private onMessage(index: number, message: FromWorker): void {
    if (message.type === 'failed') return this.abort(new Error(`worker ${index} failed: ${message.error}`));
    if (message.type === 'progress') {
      this.latestProgress[index] = message.counters;
      return;
    }
    if (message.type === 'relay') {
      const reply = this.options.onRelay?.(index, message.data);
      if (reply !== undefined) for (const child of this.children) if (child.connected) child.send({ type: 'relay', data: reply } satisfies ToWorker);
      return;
    }
    const waiter = this.waiters.find((candidate) => candidate.type === message.type);
    if (!waiter) return;
    waiter.got.set(index, message);
    if (waiter.got.size === this.children.length) {
      this.waiters = this.waiters.filter((candidate) => candidate !== waiter);
      waiter.resolve([...waiter.got.entries()].sort(([a], [b]) => a - b).map(([, value]) => value));
    }
  }

  private abort(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters = [];
  }

  private lastShown: Record<string, number> = {};

  private printProgress(started: number): void {
    const totals: Record<string, number> = {};
    for (const counters of this.latestProgress) for (const [name, value] of Object.entries(counters ?? {})) totals[name] = (totals[name] ?? 0) + value;
    const names = Object.keys(totals);
    if (names.length === 0) return;
    const first = names[0]!;
    const rate = (totals[first] ?? 0) - (this.lastShown[first] ?? 0);
    this.lastShown = totals;
    const parts = names.map((name) => `${name} ${Math.round(totals[name] ?? 0).toLocaleString('en-US')}`);
    this.options.log(
      `  [${this.options.label}] ${Math.round((Date.now() - started) / 1000)}s ${parts.join(', ')} (${rate.toLocaleString('en-US')} ${first}/s)`,
    );
  }
}
