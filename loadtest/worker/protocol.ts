import type { ClientTarget } from './link.js';

/**
 * Messages between the coordinator and its worker processes. A job goes through three phases:
 * setup (connect, subscribe) -> run (the measured window) -> finish (drain, check, report).
 */
export type JobKind = 'connect' | 'calls' | 'fanout' | 'chat';

export interface JobSpec<P = unknown> {
  kind: JobKind;
  workerIndex: number;
  workers: number;
  target: ClientTarget;
  params: P;
}

/** What a worker reports at the end: counters summed over workers, histograms merged. */
export interface JobResult {
  counters: Record<string, number>;
  /** Encoded HDR histograms (microseconds), by name. */
  histograms: Record<string, string>;
  /** Free-form facts (first error seen, ...), kept from every worker. */
  notes: string[];
}

export type ToWorker =
  { type: 'setup'; job: JobSpec } | { type: 'start'; durationMs: number } | { type: 'finish'; input: unknown } | { type: 'relay'; data: unknown };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; counters: Record<string, number> }
  | { type: 'ran'; output: unknown }
  | { type: 'result'; result: JobResult }
  | { type: 'relay'; data: unknown }
  | { type: 'failed'; error: string };

/** A job as a worker runs it. */
export interface Job {
  setup(): Promise<void>;
  run(durationMs: number): Promise<unknown>;
  finish(input: unknown): Promise<JobResult>;
  /** Cumulative counters shown as progress (the first one is shown as a rate too). */
  progress(): Record<string, number>;
  /** Data from the coordinator during the run (fan-out flow control). */
  onRelay?(data: unknown): void;
  close(): void;
}

/** How a job sends data to the coordinator during the run. */
export type RelaySender = (data: unknown) => void;
