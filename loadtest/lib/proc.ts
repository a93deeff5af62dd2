import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

/**
 * A process and all its descendants (a supervisor and its workers), from
 * /proc/<pid>/task/<tid>/children: children are listed under the thread that forked them.
 */
export function processTree(rootPid: number): number[] {
  const found: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0 && found.length < 1000) {
    const pid = pending.shift()!;
    if (found.includes(pid)) continue;
    found.push(pid);
    for (const tid of readdirOrNone(`/proc/${pid}/task`))
      pending.push(...readOrEmpty(`/proc/${pid}/task/${tid}/children`).split(' ').filter(Boolean).map(Number));
  }
  return found;
}

/** A directory's entries; none when it is gone (a process that exited). */
function readdirOrNone(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Which of `pids` hold a listening TCP socket on `port` (SO_REUSEPORT workers each hold one). */
export function listeningOn(port: number, pids: number[]): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readOrEmpty(table).split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue; // 0A: LISTEN
      if (parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(fields[9]!);
    }
  }
  return pids.filter((pid) =>
    readdirOrNone(`/proc/${pid}/fd`).some((fd) => {
      try {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        return link.startsWith('socket:[') && inodes.has(link.slice(8, -1));
      } catch {
        return false;
      }
    }),
  );
}

/**
 * A group of processes that may change between samples (PostgreSQL backends that connect during a
 * run, the load generator): one sample per process that could be read.
 */
export interface GroupSample {
  atMs: number;
  byPid: Map<number, ProcSample>;
}

export function sampleGroup(pids: number[]): GroupSample {
  const byPid = new Map<number, ProcSample>();
  for (const pid of new Set(pids)) {
    const sample = sampleProcess(pid);
    if (sample) byPid.set(pid, sample);
  }
  return { atMs: Date.now(), byPid };
}

/**
 * CPU of a group between two samples: a process that appeared in between counts from zero (it
 * started, or connected, within the window); one that left in between is missed. RSS: the sums.
 * Null when the group was empty both times (nothing to measure, not "zero").
 */
export function groupDelta(before: GroupSample, after: GroupSample): ProcDelta | null {
  if (before.byPid.size === 0 && after.byPid.size === 0) return null;
  let cpuUs = 0;
  for (const [pid, end] of after.byPid) cpuUs += end.cpuUs - (before.byPid.get(pid)?.cpuUs ?? 0);
  const rss = (sample: GroupSample) => [...sample.byPid.values()].reduce((sum, one) => sum + one.rssBytes, 0);
  const wallMs = after.atMs - before.atMs;
  return { cpuUs, wallMs, cores: wallMs > 0 ? cpuUs / 1000 / wallMs : 0, rssBeforeBytes: rss(before), rssAfterBytes: rss(after) };
}

/**
 * The whole machine's busy CPU time (every process, from /proc/stat) as a group of one, under
 * pid 0: beside the groups measured by pid, it shows what other processes took meanwhile.
 */
export function sampleMachine(): GroupSample {
  const byPid = new Map<number, ProcSample>();
  const line = readOrEmpty('/proc/stat').split('\n')[0] ?? '';
  if (line.startsWith('cpu ')) {
    // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const busy = ticks.reduce((sum, value) => sum + value, 0) - (ticks[3] ?? 0) - (ticks[4] ?? 0);
    byPid.set(0, { cpuUs: (busy * 1e6) / CLOCK_TICKS_PER_SECOND, rssBytes: 0, atMs: Date.now() });
  }
  return { atMs: Date.now(), byPid };
}

/** Several windows of one group as one (CPU and wall time added); null if any was not measured. */
export function addDeltas(deltas: Array<ProcDelta | null>): ProcDelta | null {
  if (deltas.length === 0 || deltas.some((delta) => delta === null)) return null;
  const all = deltas as ProcDelta[];
  const cpuUs = all.reduce((sum, delta) => sum + delta.cpuUs, 0);
  const wallMs = all.reduce((sum, delta) => sum + delta.wallMs, 0);
  return {
    cpuUs,
    wallMs,
    cores: wallMs > 0 ? cpuUs / 1000 / wallMs : 0,
    rssBeforeBytes: all[0]!.rssBeforeBytes,
    rssAfterBytes: all[all.length - 1]!.rssAfterBytes,
  };
}
