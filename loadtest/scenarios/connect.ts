import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import type { Settings } from '../settings.js';
import type { ConnectParams } from '../worker/jobs/connect.js';
import { sleep } from '../lib/clock.js';
import { deltaOf, sampleProcesses, type ProcDelta } from '../lib/proc.js';
import { WorkerPool } from '../worker/pool.js';
import { addAlongside, alongsideDelta, cpuPer, mergedLatency, sampleAlongside } from './measure.js';
import { countShare, startReport, sumCounters, type Scenario } from './scenario.js';
import { baselineNames, startBaseline, startGatewaySubject, withSubject, type Subject } from './subjects.js';

/**
 * Opens N WebSocket connections at a given rate and holds them idle: connect rate, failures,
 * and the server's resident memory per idle connection (RSS after minus before, divided by N).
 * Baselines: minimal idle servers.
 */
/**
 * Memory is sampled three times (before, after the first half, after all): the per-connection
 * figure is the slope over the second half, because the first connections reuse pages the heap
 * kept from start-up and would understate it.
 */
export async function runConnect(subject: Subject, settings: Settings, log: (line: string) => void): Promise<RunFigures> {
  const connections = settings.connections ?? (settings.quick ? 20 : 10_000);
  const halves = [Math.floor(connections / 2), connections - Math.floor(connections / 2)];
  const label = `connect ${subject.name} ${connections} at ${settings.connectRate}/s`;
  log(`- ${label}`);
  const pools: WorkerPool[] = [];
  try {
    for (const half of halves) {
      pools.push(
        await WorkerPool.start({
          label,
          workers: settings.workers,
          kind: 'connect',
          target: subject.target,
          log,
          paramsFor: (index): ConnectParams => ({ connections: countShare(half, index, settings.workers), rate: settings.connectRate / settings.workers }),
        }),
      );
    }
    const settle = async () => {
      await sleep(settings.quick ? 300 : 2000);
      await subject.collectGarbage();
      return sampleProcesses(subject.pids);
    };
    const generatorPids = pools.flatMap((pool) => pool.pids);
    const samples = [await settle()];
    const outputs: ConnectRunOutput[][] = [];
    // Beside the server (scale): every group while connections are being opened, settling left out.
    const connecting: Array<Record<string, ProcDelta | null> | undefined> = [];
    for (const pool of pools) {
      const besideBefore = await sampleAlongside(subject, generatorPids);
      outputs.push((await pool.run(0)) as ConnectRunOutput[]);
      connecting.push(alongsideDelta(besideBefore, await sampleAlongside(subject, generatorPids)));
      samples.push(await settle());
    }
    const alongside = addAlongside(connecting);
    const results = [...(await pools[0]!.finish(null)), ...(await pools[1]!.finish(null))];
    const all = outputs.flat();
    const connected = all.reduce((sum, output) => sum + output.connected, 0);
    const secondHalf = outputs[1]!.reduce((sum, output) => sum + output.connected, 0);
    const spanS = outputs.reduce((sum, half) => sum + spanOf(half), 0);
    const [before, middle, after] = samples;
    const server = deltaOf(before ?? null, after ?? null);
    const counters = sumCounters(results);
    return {
      subject: subject.name,
      variant: `${connections}`,
      figures: {
        connected,
        failures: counters.failures ?? 0,
        connects_per_s: spanS > 0 ? Math.round(connected / spanS) : null,
        rss_bytes_per_connection: middle && after && secondHalf > 0 ? Math.round((after.rssBytes - middle.rssBytes) / secondHalf) : null,
        rss_bytes_per_connection_all: before && after && connected > 0 ? Math.round((after.rssBytes - before.rssBytes) / connected) : null,
        server_rss_mib_after: after ? Math.round((after.rssBytes / 2 ** 20) * 10) / 10 : null,
        server_cpu_us_per_connect: cpuPer(server, connected),
      },
      latency: mergedLatency(results),
      counters,
      server,
      ...(alongside ? { alongside } : {}),
      notes: [...new Set(results.flatMap((result) => result.notes))].slice(0, 3),
    };
  } finally {
    for (const pool of pools) pool.close();
  }
}

interface ConnectRunOutput {
  connected: number;
  firstAtUs: number;
  lastAtUs: number;
}

/** Seconds from the first connection of any worker to the last. */
function spanOf(outputs: ConnectRunOutput[]): number {
  const opened = outputs.filter((output) => output.connected > 0);
  if (opened.length === 0) return 0;
  return (Math.max(...opened.map((output) => output.lastAtUs)) - Math.min(...opened.map((output) => output.firstAtUs))) / 1e6;
}

export const connectScenario: Scenario = {
  name: 'connect',
  title: 'WebSocket connections: open and hold idle',
  async run(settings, log) {
    const finish = startReport(connectScenario, settings);
    const runs: RunFigures[] = [];
    const { subject } = await startGatewaySubject(settings, log);
    try {
      runs.push(await runConnect(subject, settings, log));
    } finally {
      await subject.stop();
    }
    for (const name of baselineNames(settings))
      runs.push(
        await withSubject(
          () => startBaseline(name, 'idle'),
          (baseline) => runConnect(baseline, settings, log),
        ),
      );
    return finish({
      runs,
      ratioFigures: ['connects_per_s', 'rss_bytes_per_connection'],
      primaryLatency: 'connect',
      notes: [
        'Connect latency: from opening the TCP connection to the first frame (the gateway authenticates the key at the upgrade, then sends its welcome; baselines send a short welcome).',
        'Memory per connection: before each sample the server (started here with --expose-gc) collects garbage on request; then resident set size of the server process (/proc/<pid>/status VmRSS) after all connections are open and settled, minus before any, divided by connections. Kernel socket buffers are not in RSS.',
        'Connect rate is shared by the workers; on a loaded machine the clients limit it before the server does.',
      ],
      targets: (all) => {
        const ours = findRun(all, 'gateway');
        return [
          checkTarget({
            name: `idle connection memory at ${ours?.figures.connected ?? '-'} connections`,
            target: '<= 2 KB user-space RSS each (at 10,000)',
            measured: ours?.figures.rss_bytes_per_connection,
            limit: 2048,
            kind: 'at most',
            unit: 'bytes',
          }),
          checkTarget({ name: 'connection failures', target: '0', measured: ours?.figures.failures, limit: 0, kind: 'equal', unit: 'connections' }),
        ];
      },
    });
  },
};
