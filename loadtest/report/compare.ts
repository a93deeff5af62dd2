import type { Ratio, RunFigures, TargetCheck } from './types.js';

/** Gateway figures as ratios to each baseline's figure of the same variant. */
export function ratiosOf(runs: RunFigures[], figures: string[]): Ratio[] {
  const ratios: Ratio[] = [];
  for (const gateway of runs.filter((run) => run.subject === 'gateway')) {
    for (const baseline of runs.filter((run) => run.subject !== 'gateway' && run.variant === gateway.variant)) {
      for (const figure of figures) {
        const ours = gateway.figures[figure];
        const theirs = baseline.figures[figure];
        if (ours == null || theirs == null || theirs === 0 || !Number.isFinite(ours) || !Number.isFinite(theirs)) continue;
        ratios.push({ variant: gateway.variant, figure, baseline: baseline.subject, gateway: ours, baselineValue: theirs, ratio: round(ours / theirs, 3) });
      }
    }
  }
  return ratios;
}

export function findRun(runs: RunFigures[], subject: string, variant?: string): RunFigures | undefined {
  return runs.find((run) => run.subject === subject && (variant === undefined || run.variant === variant));
}

/**
 * A target with its margin: `at most` passes when measured <= limit, `at least` when >= limit.
 * A missing measurement is reported as such, never as a pass.
 */
export function checkTarget(spec: {
  name: string;
  target: string;
  measured: number | null | undefined;
  limit: number | null | undefined;
  kind: 'at most' | 'at least' | 'equal';
  unit: string;
  why?: string;
}): TargetCheck {
  const { measured, limit } = spec;
  if (measured == null || limit == null || !Number.isFinite(measured) || !Number.isFinite(limit)) {
    return {
      name: spec.name,
      target: spec.target,
      measured: measured ?? null,
      limit: limit ?? null,
      unit: spec.unit,
      pass: null,
      margin: spec.why ?? 'not measured in this run',
    };
  }
  let pass: boolean;
  let margin: string;
  if (spec.kind === 'equal') {
    pass = measured === limit;
    margin = pass ? 'exact' : `off by ${round(measured - limit, 3)}`;
  } else {
    pass = spec.kind === 'at most' ? measured <= limit : measured >= limit;
    const relative = limit === 0 ? 0 : (spec.kind === 'at most' ? limit - measured : measured - limit) / Math.abs(limit);
    margin = `${pass ? 'headroom' : 'misses by'} ${Math.abs(round(relative * 100, 1))}%`;
  }
  return { name: spec.name, target: spec.target, measured: round(measured, 3), limit: round(limit, 3), unit: spec.unit, pass, margin };
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
