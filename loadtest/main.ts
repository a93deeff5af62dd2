#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { printTargets, writeReport, writeSummary } from './report/write.js';
import type { ScenarioReport } from './report/types.js';
import { SCENARIOS, SEPARATE_SCENARIOS } from './scenarios/index.js';
import { parseSettings, USAGE, UsageError } from './settings.js';

/** `npm run loadtest -- <scenario|all> [options]`: runs, prints progress and targets, writes reports. */
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<void> {
  const settings = parseSettings(argv);
  if (settings.scenario === 'summary') {
    // Rebuilds summary.md from the reports already in --out (after rerunning one scenario).
    const found = [...SCENARIOS, ...SEPARATE_SCENARIOS].map((scenario) => join(settings.out, `${scenario.name}.json`)).filter((path) => existsSync(path));
    log(
      `wrote ${writeSummary(
        found.map((path) => JSON.parse(readFileSync(path, 'utf8')) as ScenarioReport),
        settings.out,
      )}`,
    );
    return;
  }
  const known = [...SCENARIOS, ...SEPARATE_SCENARIOS];
  const chosen = settings.scenario === 'all' ? SCENARIOS : known.filter((scenario) => scenario.name === settings.scenario);
  if (chosen.length === 0) throw new UsageError(`unknown scenario "${settings.scenario}" (known: ${known.map((s) => s.name).join(', ')}, all)`);
  const reports: ScenarioReport[] = [];
  for (const scenario of chosen) {
    log(`\n== ${scenario.name}: ${scenario.title}`);
    const report = await scenario.run({ ...settings, scenario: scenario.name }, log);
    const files = writeReport(report, settings.out);
    printTargets(report, log);
    log(`  wrote ${files.join(', ')}`);
    reports.push(report);
  }
  if (settings.scenario === 'all') log(`\nwrote ${writeSummary(reports, settings.out)}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof UsageError) {
      log(`${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    log(`loadtest failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
