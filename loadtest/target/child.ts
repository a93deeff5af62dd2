import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Servers under test run as separate child processes, so that their CPU time and memory can be
 * read from /proc and do not mix with the load generator's.
 */
export const TSX_EXEC_ARGV = ['--import', 'tsx'];
/** Servers under test can be asked to collect garbage before their memory is sampled. */
export const GC_EXEC_ARGV = ['--expose-gc', '--import', fileURLToPath(new URL('./gc-on-request.mjs', import.meta.url))];

/** A file next to the caller, as a path (for fork). */
export function sibling(importMetaUrl: string, relative: string): string {
  return fileURLToPath(new URL(relative, importMetaUrl));
}

export interface ServerChild {
  pid: number;
  port: number;
  /** Extra facts the child reported (e.g. `native`). */
  info: Record<string, unknown>;
  stop(): Promise<void>;
  collectGarbage(): Promise<void>;
}

/** Forks a TypeScript server entry that sends `{type:'listening', port, ...}` over IPC when ready. */
export async function forkServer(file: string, args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<ServerChild> {
  const child = fork(file, args, {
    execArgv: [...TSX_EXEC_ARGV, ...GC_EXEC_ARGV],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start within ${timeoutMs} ms`)), timeoutMs);
    child.on('message', (message: Record<string, unknown>) => {
      if (message.type === 'listening') {
        clearTimeout(timer);
        resolve(message);
      } else if (message.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${file} failed: ${String(message.error)}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before listening`));
    });
  });
  try {
    const info = await ready;
    return { pid: child.pid!, port: Number(info.port), info, stop: () => stopChild(child), collectGarbage: () => requestGc(child) };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/** Spawns a Node entry (the compiled gateway) with an IPC channel for GC requests; readiness is checked by the caller. */
export function spawnNodeServer(entry: string, env: Record<string, string>): ChildProcess {
  // LOADTEST_CPU_PROF_DIR: servers write a V8 CPU profile there when they exit (read one before guessing).
  const profile = process.env.LOADTEST_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LOADTEST_CPU_PROF_DIR}`] : [];
  return spawn(process.execPath, [...GC_EXEC_ARGV, ...profile, entry], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
}

/** Asks a server started here to collect garbage; resolves when done (or after 2 s). */
export function requestGc(child: ChildProcess): Promise<void> {
  if (!child.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, 2000);
    function done() {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve();
    }
    function onMessage(message: { type?: string }) {
      if (message?.type === 'loadtest:gc-done') done();
    }
    child.on('message', onMessage);
    child.send({ type: 'loadtest:gc' });
  });
}

/** SIGTERM, then SIGKILL if the child has not gone within the grace period. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A free loopback port (tiny race between closing and the server binding it: acceptable here). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** Used by forked server entries: report the port (and facts) to the parent, stop on SIGTERM. */
export function announceListening(port: number, info: Record<string, unknown>, stop: () => void | Promise<void>): void {
  process.send?.({ type: 'listening', port, ...info });
  const shutdown = () => {
    Promise.resolve(stop()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // The parent went away: do not linger holding a port.
  process.once('disconnect', shutdown);
}
