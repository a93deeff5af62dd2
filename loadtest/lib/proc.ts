import { readFileSync } from 'node:fs';

/**
 * Server-side cost from /proc: CPU time (user + system) and resident memory of another process.
 * Linux only; elsewhere the readers return null and the reports say "not measured".
 */
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node supports.

export interface ProcSample {
  /** user + system CPU time, microseconds. */
  cpuUs: number;
  /** Resident set size, bytes. */
  rssBytes: number;
  atMs: number;
}

export function sampleProcess(pid: number | undefined): ProcSample | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return { cpuUs: ((utime + stime) * 1e6) / CLOCK_TICKS_PER_SECOND, rssBytes: rssKb * 1024, atMs: Date.now() };
  } catch {
    return null;
  }
}

export interface ProcDelta {
  cpuUs: number;
  wallMs: number;
  /** CPU time over wall time: 1.0 is one core fully busy. */
  cores: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
}

export function deltaOf(before: ProcSample | null, after: ProcSample | null): ProcDelta | null {
  if (!before || !after) return null;
  const wallMs = after.atMs - before.atMs;
  const cpuUs = after.cpuUs - before.cpuUs;
  return { cpuUs, wallMs, cores: wallMs > 0 ? cpuUs / 1000 / wallMs : 0, rssBeforeBytes: before.rssBytes, rssAfterBytes: after.rssBytes };
}

/** One sample summed over several processes (a multi-node baseline and its Redis). */
export function sampleProcesses(pids: number[]): ProcSample | null {
  if (pids.length === 0) return null;
  const samples = pids.map(sampleProcess);
  if (samples.some((sample) => sample === null)) return null;
  return samples.reduce<ProcSample>(
    (sum, sample) => ({ cpuUs: sum.cpuUs + sample!.cpuUs, rssBytes: sum.rssBytes + sample!.rssBytes, atMs: Math.max(sum.atMs, sample!.atMs) }),
    { cpuUs: 0, rssBytes: 0, atMs: 0 },
  );
}
