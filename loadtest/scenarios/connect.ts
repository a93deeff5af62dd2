import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import type { Settings } from '../settings.js';
import type { ConnectParams } from '../worker/jobs/connect.js';
import { cpuPer, measure } from './measure.js';
import { countShare, startReport, type Scenario } from './scenario.js';
import { baselineNames, startBaseline, startGatewaySubject, withSubject, type Subject } from './subjects.js';

/**
 * Opens N WebSocket connections at a given rate and holds them idle: connect rate, failures,
 * and the server's resident memory per idle connection (RSS after minus before, divided by N).
 * Baselines: minimal idle servers.
 */
async function runConnect(subject: Subject, settings: Settings, log: (line: string) => void): Promise<RunFigures> {
  const connections = settings.connections ?? (settings.quick ? 20 : 10_000);
  const measured = await measure({
    label: `connect ${subject.name} ${connections} at ${settings.connectRate}/s`,
    subject,
    settings,
    kind: 'connect',
    cpuUntil: 'ran',
    settleMs: settings.quick ? 300 : 2000,
    collectGarbage: true,
    log,
    paramsFor: (index): ConnectParams => ({ connections: countShare(connections, index, settings.workers), rate: settings.connectRate / settings.workers }),
  });
  const outputs = measured.outputs as Array<{ connected: number; firstAtUs: number; lastAtUs: number }>;
  const connected = outputs.reduce((sum, output) => sum + output.connected, 0);
  const first = Math.min(...outputs.filter((output) => output.connected > 0).map((output) => output.firstAtUs));
  const last = Math.max(...outputs.map((output) => output.lastAtUs));
  const spanS = (last - first) / 1e6;
  const server = measured.server;
  return {
    subject: subject.name,
    variant: `${connections}`,
    figures: {
      connected,
      failures: measured.counters.failures ?? 0,
      connects_per_s: spanS > 0 ? Math.round(connected / spanS) : null,
      rss_bytes_per_connection: server && connected > 0 ? Math.round((server.rssAfterBytes - server.rssBeforeBytes) / connected) : null,
      server_rss_mib_after: server ? Math.round((server.rssAfterBytes / 2 ** 20) * 10) / 10 : null,
      server_cpu_us_per_connect: cpuPer(server, connected),
    },
    latency: measured.latency,
    counters: measured.counters,
    server,
    notes: measured.notes,
  };
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
    for (const name of baselineNames(settings)) runs.push(await withSubject(() => startBaseline(name, 'idle'), (baseline) => runConnect(baseline, settings, log)));
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
          checkTarget({ name: `idle connection memory at ${ours?.figures.connected ?? '-'} connections`, target: '<= 2 KB user-space RSS each (at 10,000)', measured: ours?.figures.rss_bytes_per_connection, limit: 2048, kind: 'at most', unit: 'bytes' }),
          checkTarget({ name: 'connection failures', target: '0', measured: ours?.figures.failures, limit: 0, kind: 'equal', unit: 'connections' }),
        ];
      },
    });
  },
};
