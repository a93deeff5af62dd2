import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import SummaryReporter from '../helpers/summary-reporter.js';
import { availableBackends, POSTGRES_URL } from '../helpers/backends.js';

/** Issue 16, newcomer items: the test set-up creates its database, and the closing line counts as vitest does. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const backends = await availableBackends();

describe('test set-up', () => {
  it.runIf(backends.includes('postgres'))('creates a missing test database when the server is reachable', async () => {
    const url = new URL(POSTGRES_URL);
    const name = `stategate_probe_${randomBytes(4).toString('hex')}`;
    url.pathname = `/${name}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      const output = execFileSync(
        process.execPath,
        ['--import', 'tsx', '-e', "const m = await import('./test/helpers/backends.ts'); console.log(JSON.stringify(await m.postgresProblem()));"],
        {
          cwd: ROOT,
          env: { ...process.env, TEST_DATABASE_URL: url.toString() },
          encoding: 'utf8',
        },
      );
      expect(output.trim()).toBe('null');
      expect((await admin.query('select 1 from pg_database where datname = $1', [name])).rowCount).toBe(1);
    } finally {
      await admin.query(`drop database if exists ${name}`);
      await admin.end();
    }
  });

  it('the closing line counts todo tests apart from skipped ones, as vitest does', () => {
    const tests = [
      { state: 'passed', mode: 'run' },
      { state: 'skipped', mode: 'skip' },
      { state: 'skipped', mode: 'skip' },
      { state: 'skipped', mode: 'todo' },
      { state: 'failed', mode: 'run' },
    ].map(({ state, mode }) => ({ result: () => ({ state }), options: { mode } }));
    const module = { children: { allTests: () => tests, size: tests.length }, state: () => 'failed' };
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      new SummaryReporter().onTestRunEnd([module as never]);
      expect(write).toHaveBeenCalledWith('\ntests: 1 passed, 1 failed, 2 skipped, 1 todo\n');
    } finally {
      write.mockRestore();
    }
  });
});
