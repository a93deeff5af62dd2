import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line (`tests: N passed, N failed, N skipped, N todo`) that any CI can
 * read, counted as vitest's own summary counts: `todo` tests apart from skipped ones (they were
 * lumped together, so the line said more skipped than vitest did), a test that never ran neither.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    let todo = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else if (test.options.mode === 'todo') todo++;
        else if (state === 'skipped') skipped++;
      }
      if (module.state() === 'failed' && module.children.size === 0) failed++;
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped${todo > 0 ? `, ${todo} todo` : ''}\n`);
  }
}
