import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markdownReport, targetRows } from './markdown.js';
import { latencyChart } from './svg.js';
import type { ScenarioReport } from './types.js';

/** Writes `<scenario>.json`, `.md` and `.svg` into the output directory; returns their paths. */
export function writeReport(report: ScenarioReport, outDir: string): string[] {
  mkdirSync(outDir, { recursive: true });
  const files = {
    json: join(outDir, `${report.scenario}.json`),
    md: join(outDir, `${report.scenario}.md`),
    svg: join(outDir, `${report.scenario}.svg`),
  };
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.md, markdownReport(report));
  writeFileSync(files.svg, latencyChart(report));
  return Object.values(files);
}

/** After `all`: one page with every scenario's targets. */
export function writeSummary(reports: ScenarioReport[], outDir: string): string {
  const path = join(outDir, 'summary.md');
  const rows = reports.flatMap((report) => targetRows(report.targets, [`[${report.scenario}](${report.scenario}.md)`]));
  const text = [
    '# stategate load tests: targets',
    '',
    `${reports[0]?.startedAt ?? ''}. ${reports[0] ? `${reports[0].machine.cpuModel}, ${reports[0].machine.cores} cores, node ${reports[0].machine.node}` : ''}`,
    '',
    '| scenario | target | goal | measured | result | margin |',
    '|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
  ].join('\n');
  writeFileSync(path, text);
  return path;
}

/** Printed at the end of a scenario: target, measured value, pass/miss and margin. */
export function printTargets(report: ScenarioReport, log: (line: string) => void): void {
  for (const check of report.targets) {
    const verdict = check.pass === null ? 'n/a ' : check.pass ? 'PASS' : 'MISS';
    log(`  ${verdict} ${check.name}: ${check.target}; measured ${check.measured ?? '-'} ${check.unit} (${check.margin})`);
  }
}
