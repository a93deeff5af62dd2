import type { Result as AutocannonResult } from 'autocannon';
import { sleep } from '../lib/clock.js';
import { addDeltas, deltaOf, groupDelta, sampleGroup, sampleMachine, sampleProcesses, type GroupSample, type ProcDelta } from '../lib/proc.js';
import { mergeEncoded, summarize, type LatencySummary } from '../lib/histogram.js';
import type { Settings } from '../settings.js';
import { WorkerPool } from '../worker/pool.js';
import type { JobKind, JobResult } from '../worker/protocol.js';
import { sumCounters } from './scenario.js';
import type { Subject } from './subjects.js';

/**
 * One measured run of a job against one subject: workers set up (not measured), the server's
 * CPU is sampled around the measured window, then workers finish and report.
 */
export interface Measured {
  outputs: unknown[];
  counters: Record<string, number>;
  latency: Record<string, LatencySummary>;
  notes: string[];
  server: ProcDelta | null;
  /** Only for a subject with `alongside`: those groups, the load generator and the server, over the server's window. */
  alongside?: Record<string, ProcDelta | null>;
  durationS: number;
}

export async function measure(options: {
  label: string;
  subject: Subject;
  settings: Settings;
  kind: JobKind;
  paramsFor: (workerIndex: number) => unknown;
  onRelay?: (fromWorker: number, data: unknown) => unknown;
  finishInput?: (outputs: unknown[]) => unknown;
  /** The server's CPU window ends when the load stops ('ran') or after the drain ('finished'). */
  cpuUntil: 'ran' | 'finished';
  /** Called once every connection is up, before the window (connect measures memory here). */
  log: (line: string) => void;
  workers?: number;
  /** Workers load this long before the window; the server's CPU is sampled after it. */
  warmupMs?: number;
  /** Pause after the load before the server is sampled (connect: memory settles). */
  settleMs?: number;
  /** Ask the server to collect garbage before each sample (memory figures). */
  collectGarbage?: boolean;
}): Promise<Measured> {
  const { settings, subject } = options;
  options.log(`- ${options.label}`);
  const pool = await WorkerPool.start({
    label: options.label,
    workers: options.workers ?? settings.workers,
    kind: options.kind,
    target: subject.target,
    paramsFor: options.paramsFor,
    ...(options.onRelay ? { onRelay: options.onRelay } : {}),
    log: options.log,
  });
  try {
    const running = pool.run(settings.durationS * 1000);
    if (options.warmupMs) await sleep(options.warmupMs);
    if (options.collectGarbage) await subject.collectGarbage();
    const before = sampleProcesses(subject.pids);
    const besideBefore = await sampleAlongside(subject, pool.pids);
    const outputs = await running;
    if (options.settleMs) await sleep(options.settleMs);
    if (options.collectGarbage) await subject.collectGarbage();
    const afterRun = sampleProcesses(subject.pids);
    let besideAfter = options.cpuUntil === 'ran' ? await sampleAlongside(subject, pool.pids) : null;
    const results: JobResult[] = await pool.finish(options.finishInput ? options.finishInput(outputs) : null);
    const afterFinish = sampleProcesses(subject.pids);
    if (options.cpuUntil === 'finished') besideAfter = await sampleAlongside(subject, pool.pids);
    const alongside = alongsideDelta(besideBefore, besideAfter);
    return {
      ...(alongside ? { alongside } : {}),
      outputs,
      counters: sumCounters(results),
      latency: mergedLatency(results),
      notes: [...new Set(results.flatMap((result) => result.notes))].slice(0, 3),
      server: deltaOf(before, options.cpuUntil === 'ran' ? afterRun : afterFinish),
      durationS: settings.durationS,
    };
  } finally {
    pool.close();
  }
}

/**
 * The groups measured beside a server (only when the subject names some): its own, the load
 * generator, the server again (`server`, so that every group has the very same window) and the
 * whole machine (`machine`: every process, this run's or not).
 */
export async function sampleAlongside(subject: Subject, generatorPids: number[]): Promise<Record<string, GroupSample> | null> {
  if (!subject.alongside) return null;
  // The coordinator (this process) relays credit and progress: it is part of the load generator.
  const samples: Record<string, GroupSample> = {
    generator: sampleGroup([process.pid, ...generatorPids]),
    server: sampleGroup(subject.pids),
    machine: sampleMachine(),
  };
  for (const [name, pids] of Object.entries(subject.alongside)) samples[name] = sampleGroup(await pids());
  return samples;
}

export function alongsideDelta(
  before: Record<string, GroupSample> | null,
  after: Record<string, GroupSample> | null,
): Record<string, ProcDelta | null> | undefined {
  if (!before || !after) return undefined;
  return Object.fromEntries(Object.entries(before).map(([name, sample]) => [name, after[name] ? groupDelta(sample, after[name]) : null]));
}

/** Several windows of the same groups as one: CPU and wall time added up. */
export function addAlongside(windows: Array<Record<string, ProcDelta | null> | undefined>): Record<string, ProcDelta | null> | undefined {
  if (windows.length === 0 || windows.some((window) => window === undefined)) return undefined;
  const names = Object.keys(windows[0]!);
  return Object.fromEntries(names.map((name) => [name, addDeltas(windows.map((window) => window![name] ?? null))]));
}

export function mergedLatency(results: JobResult[]): Record<string, LatencySummary> {
  const names = [...new Set(results.flatMap((result) => Object.keys(result.histograms)))];
  return Object.fromEntries(names.map((name) => [name, summarize(mergeEncoded(results.map((result) => result.histograms[name])))]));
}

/** Server CPU microseconds per unit of work, or null when the server's CPU was not measured. */
export function cpuPer(server: ProcDelta | null, units: number): number | null {
  if (!server || units <= 0) return null;
  return Math.round((server.cpuUs / units) * 100) / 100;
}

/** autocannon's request latency (milliseconds) as the reports show latency: `count` requests. */
export function autocannonLatency(result: AutocannonResult, count: number): LatencySummary {
  const { mean, p50, p90, p99, max } = result.latency;
  return { count, mean, p50, p90, p99, p999: result.latency.p99_9 ?? result.latency.p999 ?? max, max };
}
