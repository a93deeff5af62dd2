import type { ScenarioReport, TargetCheck } from './types.js';

/** The summary a person reads: machine, every run's figures, ratios to baselines, targets. */
function table(header: string[], rows: Array<Array<string | number>>): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function number(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(Math.round(value * 1000) / 1000);
}

export function targetRows(targets: TargetCheck[], prefix: string[] = []): Array<Array<string>> {
  return targets.map((check) => [
    ...prefix,
    check.name,
    check.target,
    `${number(check.measured)} ${check.unit}`,
    check.pass === null ? 'n/a' : check.pass ? '**pass**' : '**MISS**',
    check.margin,
  ]);
}

export function markdownReport(report: ScenarioReport): string {
  const { machine } = report;
  const lines: string[] = [];
  lines.push(`# ${report.title}`, '');
  lines.push(
    `${report.startedAt}, ${report.wallSeconds} s wall. ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, ` +
      `load average at start ${machine.loadAverage.join(' / ')}, commit ${machine.gitCommit.slice(0, 10)}${machine.gitDirty ? ' (uncommitted changes)' : ''}.`,
    '',
  );
  lines.push(`Settings: \`${JSON.stringify(report.settings)}\``, '');
  for (const extra of report.tables ?? []) {
    lines.push(`## ${extra.title}`, '', ...extra.intro.flatMap((paragraph) => [paragraph, '']));
    lines.push(
      table(
        extra.header,
        extra.rows.map((row) => row.map((cell) => (typeof cell === 'string' ? cell : number(cell)))),
      ),
      '',
    );
  }

  const figureNames = [...new Set(report.runs.flatMap((run) => Object.keys(run.figures)))];
  lines.push('## Figures', '');
  lines.push(
    table(
      ['subject', 'variant', ...figureNames],
      report.runs.map((run) => [run.subject, run.variant || '-', ...figureNames.map((name) => number(run.figures[name]))]),
    ),
    '',
  );

  lines.push('## Latency (ms)', '');
  const latencyRows = report.runs.flatMap((run) =>
    Object.entries(run.latency).map(([name, s]) => [
      run.subject,
      run.variant || '-',
      name,
      number(s.count),
      number(s.p50),
      number(s.p90),
      number(s.p99),
      number(s.p999),
      number(s.max),
    ]),
  );
  lines.push(table(['subject', 'variant', 'histogram', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'], latencyRows), '');
  lines.push(`![${report.primaryLatency} latency](${report.scenario}.svg)`, '');

  if (report.ratios.length > 0) {
    lines.push('## Gateway / baseline', '');
    lines.push(
      table(
        ['variant', 'figure', 'baseline', 'gateway', 'baseline value', 'ratio'],
        report.ratios.map((ratio) => [
          ratio.variant || '-',
          ratio.figure,
          ratio.baseline,
          number(ratio.gateway),
          number(ratio.baselineValue),
          `${number(ratio.ratio)}x`,
        ]),
      ),
      '',
    );
  }
  if (report.targets.length > 0) {
    lines.push('## Targets', '');
    lines.push(table(['target', 'goal', 'measured', 'result', 'margin'], targetRows(report.targets)), '');
  }
  const counterNames = [...new Set(report.runs.flatMap((run) => Object.keys(run.counters)))];
  if (counterNames.length > 0) {
    lines.push('## Counters', '');
    lines.push(
      table(
        ['subject', 'variant', ...counterNames],
        report.runs.map((run) => [run.subject, run.variant || '-', ...counterNames.map((name) => number(run.counters[name]))]),
      ),
      '',
    );
  }
  const notes = [...report.notes, ...report.runs.flatMap((run) => run.notes.map((note) => `${run.subject} ${run.variant}: ${note}`))];
  if (notes.length > 0) lines.push('## Notes', '', ...notes.map((note) => `- ${note.replace(/\n/g, ' ')}`), '');
  return `${lines.join('\n')}\n`;
}
