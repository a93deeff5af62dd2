import type { MetricsSnapshot } from '../metrics.js';

export type { MetricsSnapshot };

/**
 * What the supervisor and its workers say to each other over the fork IPC channel (structured
 * clone, `serialization: 'advanced'`: metric values may be NaN or Infinity, which JSON loses).
 */

/** Worker to supervisor. */
export type WorkerMessage =
  /** The gateway listens; `bootstrap` is the key this start created, if any (printed once, by the supervisor). */
  | { type: 'ready'; url: string; wsUrl: string; bootstrap: { accountId: string; key: string } | null }
  /** Start-up failed; the worker exits next. */
  | { type: 'failed'; reason: string }
  /** A scrape reached this worker: it asks for the whole gateway's metrics. */
  | { type: 'metrics-request'; id: number }
  /** This worker's registry, answering `metrics-collect`. */
  | { type: 'metrics-snapshot'; id: number; metrics: MetricsSnapshot };

/** Supervisor to worker. */
export type SupervisorMessage =
  | { type: 'metrics-collect'; id: number }
  /** The answer to `metrics-request`: Prometheus text, or why there is none. */
  | { type: 'metrics-answer'; id: number; text: string }
  | { type: 'metrics-answer'; id: number; error: string };

/** Environment variables through which a worker learns its place (set by the supervisor only). */
export const WORKER_INDEX_ENV = 'STATEGATE_WORKER_INDEX';
export const WORKER_COUNT_ENV = 'STATEGATE_WORKER_COUNT';

const WORKER_TYPES = new Set(['ready', 'failed', 'metrics-request', 'metrics-snapshot']);
const SUPERVISOR_TYPES = new Set(['metrics-collect', 'metrics-answer']);

/** Messages from elsewhere on the channel (none are expected) are ignored, not trusted. */
export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return typeof message === 'object' && message !== null && WORKER_TYPES.has((message as { type?: unknown }).type as string);
}

export function isSupervisorMessage(message: unknown): message is SupervisorMessage {
  return typeof message === 'object' && message !== null && SUPERVISOR_TYPES.has((message as { type?: unknown }).type as string);
}
