import type { MetricsSnapshot } from '../metrics.js';
import { isSupervisorMessage, WORKER_COUNT_ENV, WORKER_INDEX_ENV, type WorkerMessage } from './messages.js';

/** A worker's place among the gateway's workers. */
export interface WorkerRole {
  index: number;
  count: number;
}

/**
 * This process's role: a worker when its supervisor forked it (the index and count in the
 * environment and an IPC channel to the parent), else null (a gateway of its own).
 */
export function workerRole(env: Record<string, string | undefined> = process.env): WorkerRole | null {
  const index = Number(env[WORKER_INDEX_ENV]);
  const count = Number(env[WORKER_COUNT_ENV]);
  if (!process.send || !Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count) return null;
  return { index, count };
}

/** What a worker's gateway needs of the supervisor (startGateway's `worker` option). */
export interface WorkerLink {
  readonly index: number;
  readonly pid: number;
  /** Answers the supervisor's collections with this worker's metrics. */
  shareMetrics(snapshot: () => Promise<MetricsSnapshot>): void;
  /** The whole gateway's Prometheus text, gathered by the supervisor from every worker. */
  gatewayMetrics(): Promise<string>;
}

/** How long a scrape waits for the supervisor's merged metrics before it fails (503). */
const METRICS_ANSWER_TIMEOUT_MS = 5000;

/** The worker's end of the IPC channel to its supervisor. */
export class SupervisorLink implements WorkerLink {
  readonly index: number;
  readonly pid = process.pid;
  private snapshot: (() => Promise<MetricsSnapshot>) | null = null;
  private nextRequest = 0;
  private readonly waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();

  constructor(role: WorkerRole) {
    this.index = role.index;
    process.on('message', (message: unknown) => {
      if (!isSupervisorMessage(message)) return;
      if (message.type === 'metrics-collect') {
        const { id } = message;
        void (this.snapshot?.() ?? Promise.resolve([])).then(
          (metrics) => this.send({ type: 'metrics-snapshot', id, metrics }),
          // Nothing sent: the supervisor counts this worker from its last snapshot.
          () => {},
        );
        return;
      }
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if ('text' in message) waiter.resolve(message.text);
      else waiter.reject(new Error(message.error));
    });
  }

  shareMetrics(snapshot: () => Promise<MetricsSnapshot>): void {
    this.snapshot = snapshot;
  }

  gatewayMetrics(): Promise<string> {
    const id = this.nextRequest++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the supervisor did not answer within ${METRICS_ANSWER_TIMEOUT_MS} ms`));
      }, METRICS_ANSWER_TIMEOUT_MS);
      timer.unref();
      const settle =
        <T>(fn: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          fn(value);
        };
      this.waiting.set(id, { resolve: settle(resolve), reject: settle(reject) });
      if (!this.send({ type: 'metrics-request', id })) {
        this.waiting.delete(id);
        settle(reject)(new Error('no supervisor to ask'));
      }
    });
  }

  /** The gateway listens: tell the supervisor (with the key this start created, for it to print once). */
  ready(info: Omit<Extract<WorkerMessage, { type: 'ready' }>, 'type'>): void {
    this.send({ type: 'ready', ...info });
  }

  /** Start-up failed: the reason reaches the supervisor before the process exits. */
  failed(reason: string): Promise<void> {
    return new Promise((resolve) => {
      if (!process.connected || !process.send) return resolve();
      process.send({ type: 'failed', reason } satisfies WorkerMessage, undefined, {}, () => resolve());
    });
  }

  /** The supervisor is gone (killed, or exited): a worker must not outlive it. */
  onSupervisorGone(listener: () => void): void {
    process.once('disconnect', listener);
  }

  private send(message: WorkerMessage): boolean {
    if (!process.connected || !process.send) return false;
    process.send(message);
    return true;
  }
}
