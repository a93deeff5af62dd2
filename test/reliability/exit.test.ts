import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis.js';

/**
 * Issue 16, defect 12: with its stdout pipe's reader gone (`npm start | tee`, tee killed), the
 * gateway never exited after SIGTERM: pino's exit hook retried the EPIPE write every 100 ms
 * forever. Logging must never block shutdown.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('shutdown with a dead log reader (defect 12)', () => {
  it('exits promptly after SIGTERM when nobody reads its stdout any more', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(await freePort()),
        DATA_DIR: 'memory://',
        DATABASE_URL: '',
        REDIS_URL: '',
        LOG_LEVEL: 'info',
        PRINT_BOOTSTRAP_KEY: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk) => {
          output += chunk;
          if (output.includes('stategate listening')) resolve();
        });
        child.once('exit', () => reject(new Error(`exited during start-up: ${output}`)));
      });
      // The reader goes away: the next log line (the shutdown's) meets EPIPE.
      child.stdout.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      const outcome = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000))]);
      expect(outcome).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(15_000);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});
