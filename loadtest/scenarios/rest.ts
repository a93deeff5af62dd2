import autocannon from 'autocannon';
import { runBareSelect } from '../baselines/bare-select-run.js';
import { deltaOf, sampleProcesses } from '../lib/proc.js';
import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import type { Settings } from '../settings.js';
import type { GatewayTarget } from '../target/gateway.js';
import { api, seedConversations } from '../target/seed.js';
import { cpuPer } from './measure.js';
import { REST_OPERATIONS, type RestRequest } from './rest-operations.js';
import { startReport, type Scenario } from './scenario.js';
import { startGatewaySubject } from './subjects.js';

/**
 * autocannon against the hot REST operations, one after the other on one gateway, and the
 * bare-select baseline (the same store selecting an agent by id in a loop, no HTTP) as the
 * ceiling for reads.
 */
async function cannon(gateway: GatewayTarget, request: RestRequest, settings: Settings, durationS: number, connections: number) {
  return autocannon({
    url: `${gateway.httpUrl}${request.path}`,
    method: request.method,
    headers: { 'X-API-Key': gateway.apiKey, ...(request.body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
    connections,
    duration: durationS,
    // autocannon's own worker threads; one Node thread cannot saturate uWS.
    workers: settings.workers,
    timeout: 10,
  });
}

async function runOperation(
  gateway: GatewayTarget,
  pids: number[],
  name: string,
  request: RestRequest,
  settings: Settings,
  log: (line: string) => void,
): Promise<RunFigures> {
  const connections = settings.connections ?? (settings.quick ? 20 : 100);
  log(`- rest gateway ${name}: ${request.method} ${request.path.replace(/[?].*/, '')}, ${connections} connections`);
  await cannon(gateway, request, settings, settings.quick ? 1 : 2, connections); // warm-up, unmeasured
  const before = sampleProcesses(pids);
  const result = await cannon(gateway, request, settings, settings.durationS, connections);
  const server = deltaOf(before, sampleProcesses(pids));
  const ok = result['2xx'];
  const total = ok + result.non2xx;
  return {
    subject: 'gateway',
    variant: name,
    figures: {
      requests_per_s: Math.round(total / result.duration),
      server_cpu_us_per_request: cpuPer(server, total),
      server_cores_busy: server ? Math.round(server.cores * 100) / 100 : null,
      non_2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    },
    latency: {
      request: {
        count: total,
        mean: result.latency.mean,
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        p999: result.latency.p99_9 ?? result.latency.p999 ?? result.latency.max,
        max: result.latency.max,
      },
    },
    counters: { '2xx': ok, non_2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, connections },
    server,
    notes: Object.keys(result.statusCodeStats).some((code) => !code.startsWith('2')) ? [`status codes: ${JSON.stringify(result.statusCodeStats)}`] : [],
  };
}

export const restScenario: Scenario = {
  name: 'rest',
  title: 'REST operations (autocannon)',
  async run(settings, log) {
    const finish = startReport(restScenario, settings);
    const runs: RunFigures[] = [];
    const notes: string[] = [];
    const { subject, gateway } = await startGatewaySubject(settings, log);
    try {
      const seeded = await seedConversations(gateway, { agents: 1, conversations: 1 });
      const ids = { agentId: seeded.agentIds[0]!, conversationId: seeded.conversationIds[0]! };
      for (let index = 0; index < 20; index++)
        await api(gateway, 'POST', '/v1/messages', { conversation_id: ids.conversationId, content: `seed message ${index}` });
      const wanted = REST_OPERATIONS.filter((operation) => !settings.restOperations || settings.restOperations.includes(operation.name));
      for (const operation of wanted) {
        const request = await operation.prepare(gateway, ids);
        if (!request) {
          notes.push(`${operation.name}: skipped, its route answers 404 on this gateway.`);
          log(`- rest ${operation.name}: skipped (route answers 404)`);
          continue;
        }
        runs.push(await runOperation(gateway, subject.pids, operation.name, request, settings, log));
      }
    } finally {
      await subject.stop();
    }
    log('- bare select baseline');
    const bare = await runBareSelect({ durationMs: settings.durationS * 1000, concurrency: 10, databaseUrl: settings.databaseUrl });
    runs.push({
      subject: 'bare-select',
      variant: 'agents.get',
      figures: { requests_per_s: bare.selectsPerS },
      latency: { request: bare.latency },
      counters: {},
      server: null,
      notes: [`${bare.store}: select by id through the store's agent repository, in a loop, in its own process`],
    });
    return finish({
      runs,
      ratioFigures: ['requests_per_s'],
      primaryLatency: 'request',
      notes: [...notes, 'Latency in ms as autocannon measures it (1 ms resolution); server CPU from /proc of the gateway over the measured window.'],
      targets: (all) => {
        const read = findRun(all, 'gateway', 'agents.get');
        const bareRate = findRun(all, 'bare-select')?.figures.requests_per_s;
        return [
          checkTarget({
            name: 'REST get an agent: rate',
            target: '>= 0.5x bare select loop',
            measured: read?.figures.requests_per_s,
            limit: bareRate == null ? null : bareRate / 2,
            kind: 'at least',
            unit: 'req/s',
          }),
          checkTarget({
            name: `REST get an agent: p99 at ${read?.counters.connections ?? '-'} connections`,
            target: '< 10 ms',
            measured: read?.latency.request?.p99,
            limit: 10,
            kind: 'at most',
            unit: 'ms',
          }),
        ];
      },
    });
  },
};
