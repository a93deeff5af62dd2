import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { DataDirLockedError, LOCK_FILE } from '../../src/store/data-dir-lock.js';
import { openStore } from '../../src/store/store.js';
import { freePort } from '../helpers/redis.js';
import { gatewayProcess, killGatewayProcesses } from '../helpers/gateway-process.js';

/**
 * Issue 16, defect 1: two gateways on one port or one data directory. The second must refuse to
 * start (it started, shared the port through SO_REUSEPORT, and both corrupted the PGlite files).
 */
const ON_DISK_TIMEOUT_MS = 90_000;

const children = new Set<ChildProcess>();
const dirs: string[] = [];
afterEach(() => {
  killGatewayProcesses();
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stategate-lock-'));
  dirs.push(dir);
  return dir;
}

describe('a second gateway refuses to start (defect 1)', () => {
  it('on a port another gateway (or any process) is listening on', async () => {
    const first = await startGateway(loadConfig({ PORT: '0', DATA_DIR: 'memory://', LOG_LEVEL: 'silent', PRINT_BOOTSTRAP_KEY: 'false' }));
    try {
      await expect(
        startGateway(loadConfig({ PORT: String(first.port), DATA_DIR: 'memory://', LOG_LEVEL: 'silent', PRINT_BOOTSTRAP_KEY: 'false' })),
      ).rejects.toThrow(/could not listen on 127\.0\.0\.1:\d+: the port is in use/);
      // The first still answers alone.
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    } finally {
      await first.stop();
    }
    const port = await freePort();
    const other = createServer().listen(port, '127.0.0.1');
    await new Promise((resolve) => other.once('listening', resolve));
    try {
      await expect(startGateway(loadConfig({ PORT: String(port), DATA_DIR: 'memory://', LOG_LEVEL: 'silent' }))).rejects.toThrow(/port is in use/);
    } finally {
      other.close();
    }
  });

  it(
    "on a data directory another live process holds, naming its pid; a dead holder's lock is taken over",
    async () => {
      const dataDir = tempDir();
      const holder = spawn('sleep', ['60']);
      children.add(holder);
      writeFileSync(join(dataDir, LOCK_FILE), JSON.stringify({ pid: holder.pid, host: hostname() }));
      const config = loadConfig({ DATA_DIR: dataDir });
      const refused = await openStore(config).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(DataDirLockedError);
      expect((refused as Error).message).toContain(`in use by process ${holder.pid} on ${hostname()}`);
      expect((refused as Error).message).toContain(join(dataDir, LOCK_FILE));

      // The holder dies without removing its lock: the next start takes it over.
      const gone = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await gone;
      const store = await openStore(config);
      try {
        expect(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8'))).toEqual({ pid: process.pid, host: hostname() });
      } finally {
        await store.close();
      }
      // Released on close.
      expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    },
    ON_DISK_TIMEOUT_MS,
  );

  it(
    "a second `stategate` process on the same DATA_DIR exits with a message naming the first one's pid",
    async () => {
      const dataDir = tempDir();
      // On PGlite and the in-process bus, whatever this test process's environment says.
      const embedded = { DATABASE_URL: '', REDIS_URL: '' };
      const first = gatewayProcess({ ...embedded, DATA_DIR: dataDir, PORT: String(await freePort()) });
      await first.waitFor(/stategate listening/, ON_DISK_TIMEOUT_MS);
      const second = gatewayProcess({ ...embedded, DATA_DIR: dataDir, PORT: String(await freePort()) });
      expect((await second.exited).code).toBe(1);
      expect(second.output()).toContain(`DATA_DIR ${dataDir} is in use by process ${first.child.pid}`);
      // The first is unaffected and, stopped, leaves no lock behind.
      first.child.kill('SIGTERM');
      expect((await first.exited).code).toBe(0);
      expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
    },
    ON_DISK_TIMEOUT_MS,
  );
});
