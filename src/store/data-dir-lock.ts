import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * An exclusive lock on PGlite's data directory: PGlite takes none, and two processes writing one
 * directory corrupt it. The lock is a file created with O_EXCL holding the owner's pid and host.
 * A lock left by a process that is gone (same host, pid no longer running) is taken over; one held
 * by a live process, or written on another host (a shared volume), refuses the start.
 */
export class DataDirLockedError extends Error {}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

interface Holder {
  pid: number;
  host: string;
}

export const LOCK_FILE = 'stategate.lock';

export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname() };
  // Two attempts: the second after moving a stale lock aside.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${JSON.stringify(me)}\n`);
      } finally {
        closeSync(fd);
      }
      return held(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(path);
    if (holder && !isStale(holder, me)) {
      throw new DataDirLockedError(
        `DATA_DIR ${dataDir} is in use by process ${holder.pid} on ${holder.host} (lock file ${path}). ` +
          'Stop that process first; if it is no longer running, delete the lock file.',
      );
    }
    // Moved aside, then checked: if what was moved is no longer the stale lock (another process
    // took it over in between), it is put back and the next attempt finds it held.
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      continue;
    }
    const moved = readHolder(aside);
    if (moved && holder && (moved.pid !== holder.pid || moved.host !== holder.host)) {
      try {
        linkSync(aside, path);
      } catch {
        // Someone holds the path again: the next attempt reads who.
      }
    }
    rmSync(aside, { force: true });
  }
  throw new DataDirLockedError(`DATA_DIR ${dataDir} is being locked by another process at this moment (lock file ${path}); try again`);
}

function held(path: string): DataDirLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    // Only our own lock: never one another process took over meanwhile.
    if (readHolder(path)?.pid === process.pid) rmSync(path, { force: true });
  };
  // A process that exits without closing the store (process.exit after a failure) leaves no lock.
  process.once('exit', release);
  return { path, release };
}

function readHolder(path: string): Holder | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? { pid: parsed.pid, host: parsed.host } : null;
  } catch {
    // Unreadable or half-written: a process that died while writing it. Treated as stale.
    return null;
  }
}

function isStale(holder: Holder, me: Holder): boolean {
  if (holder.host !== me.host) return false;
  // Our own pid: a previous run of this container or machine had it (pids restart at 1 in containers).
  if (holder.pid === me.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
