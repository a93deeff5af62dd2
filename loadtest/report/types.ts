import type { LatencySummary } from '../lib/histogram.js';
import type { ProcDelta } from '../lib/proc.js';
import type { Machine } from './machine.js';

/** What one scenario run writes: every figure of every subject, ratios, and targets. */
export interface RunFigures {
  /** gateway, uws, ws, socketio, socketio-redis, bare-select */
  subject: string;
  /** What varies within a scenario (a method, a publish rate); gateway and baselines are compared within one variant. */
  variant: string;
  figures: Record<string, number | null>;
  latency: Record<string, LatencySummary>;
  counters: Record<string, number>;
  /** Server process cost over the measured window; null when it was not measurable. */
  server: ProcDelta | null;
  /** Processes measured beside the server (scale: load generator, Redis, PostgreSQL), by group. */
  alongside?: Record<string, ProcDelta | null>;
  notes: string[];
}

export interface Ratio {
  variant: string;
  figure: string;
  baseline: string;
  gateway: number;
  baselineValue: number;
  /** gateway / baseline */
  ratio: number;
}

export interface TargetCheck {
  name: string;
  /** Human-readable target, e.g. "<= 2x raw uWS". */
  target: string;
  measured: number | null;
  limit: number | null;
  unit: string;
  /** null: not measurable in this run (and why is in `margin`). */
  pass: boolean | null;
  margin: string;
}

export interface ScenarioReport {
  scenario: string;
  title: string;
  startedAt: string;
  wallSeconds: number;
  machine: Machine;
  settings: Record<string, unknown>;
  runs: RunFigures[];
  ratios: Ratio[];
  targets: TargetCheck[];
  /** Which histogram the chart shows, and how figures are read. */
  primaryLatency: string;
  notes: string[];
  /** Tables a scenario adds of its own (scale: 1 vs 2 workers), shown before the figures. */
  tables?: ReportTable[];
}

export interface ReportTable {
  title: string;
  /** Paragraphs above the table. */
  intro: string[];
  header: string[];
  rows: Array<Array<string | number | null>>;
}
