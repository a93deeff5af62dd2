import { describeMachine } from '../report/machine.js';
import { ratiosOf } from '../report/compare.js';
import type { ReportTable, RunFigures, ScenarioReport, TargetCheck } from '../report/types.js';
import { recordedSettings, type Settings } from '../settings.js';

/** A scenario: runs the gateway and its baselines and returns the report. */
export interface Scenario {
  name: string;
  title: string;
  run(settings: Settings, log: (line: string) => void): Promise<ScenarioReport>;
}

/** Machine facts are read at the start of a run (load average then says how busy it was). */
export function startReport(scenario: Scenario, settings: Settings, extraSettings: Record<string, unknown> = {}) {
  const startedAt = new Date();
  const machine = describeMachine();
  return (parts: {
    runs: RunFigures[];
    ratioFigures: string[];
    targets: (runs: RunFigures[]) => TargetCheck[];
    primaryLatency: string;
    notes?: string[];
    tables?: ReportTable[];
  }): ScenarioReport => ({
    scenario: scenario.name,
    title: scenario.title,
    startedAt: startedAt.toISOString(),
    wallSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine,
    settings: recordedSettings(settings, extraSettings),
    runs: parts.runs,
    ratios: ratiosOf(parts.runs, parts.ratioFigures),
    targets: parts.targets(parts.runs),
    primaryLatency: parts.primaryLatency,
    notes: parts.notes ?? [],
    ...(parts.tables ? { tables: parts.tables } : {}),
  });
}

/** Splits `total` items over `workers`: worker i gets the items with index % workers === i. */
export function shareOf<T>(items: T[], workerIndex: number, workers: number): T[] {
  return items.filter((_, index) => index % workers === workerIndex);
}

export function countShare(total: number, workerIndex: number, workers: number): number {
  return Math.floor(total / workers) + (workerIndex < total % workers ? 1 : 0);
}

export function sumCounters(results: Array<{ counters: Record<string, number> }>): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const result of results) for (const [name, value] of Object.entries(result.counters)) sum[name] = (sum[name] ?? 0) + value;
  return sum;
}

/** Unmeasured load before a window of closed-loop calls: JIT and caches warm on both sides. */
export function warmupFor(settings: Settings): number {
  return settings.quick ? 500 : 2000;
}
