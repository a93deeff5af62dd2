import autocannon from 'autocannon';
import { runBareSelect } from '../baselines/bare-select-run.js';
import { deltaOf, sampleProcesses } from '../lib/proc.js';
import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import type { Settings } from '../settings.js';
import type { GatewayTarget } from '../target/gateway.js';
import { api, seedConversations } from '../target/seed.js';
import { autocannonLatency, cpuPer } from './measure.js';
import { REST_OPERATIONS, type RestRequest } from './rest-operations.js';
import { startReport, type Scenario } from './scenario.js';
import { startGatewaySubject, withSubject, type Subject } from './subjects.js';
import { forkServer, sibling } from '../target/child.js';

/**
 * autocannon against the hot REST operations, one after the other on one gateway, and the
 * bare-select baseline (the same store selecting an agent by id in a loop, no HTTP) as the
 * ceiling for reads.
 */
interface HttpTarget {
  httpUrl: string;
  apiKey: string;
}

async function cannon(target: HttpTarget, request: RestRequest, settings: Settings, durationS: number, connections: number) {
  return autocannon({
    url: `${target.httpUrl}${request.path}`,
    method: request.method,
    headers: { 'X-API-Key': target.apiKey, ...(request.body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
    connections,
    duration: durationS,
    // autocannon's own worker threads; one Node thread cannot saturate uWS.
    workers: settings.workers,
    timeout: 10,
  });
}

async function runOperation(
  gateway: HttpTarget,
  pids: number[],
  name: string,
  request: RestRequest,
  settings: Settings,
  log: (line: string) => void,
  subjectName = 'gateway',
): Promise<RunFigures> {
  const connections = settings.connections ?? (settings.quick ? 20 : 100);
  log(`- rest ${subjectName} ${name}: ${request.method} ${request.path.replace(/[?].*/, '')}, ${connections} connections`);
  await cannon(gateway, request, settings, settings.quick ? 1 : 2, connections); // warm-up, unmeasured
  const before = sampleProcesses(pids);
  const result = await cannon(gateway, request, settings, settings.durationS, connections);
  const server = deltaOf(before, sampleProcesses(pids));
  const ok = result['2xx'];
  const total = ok + result.non2xx;
  return {
    subject: subjectName,
    variant: name,
    figures: {
      requests_per_s: Math.round(total / result.duration),
      server_cpu_us_per_request: cpuPer(server, total),
      server_cores_busy: server ? Math.round(server.cores * 100) / 100 : null,
      non_2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    },
    latency: { request: autocannonLatency(result, total) },
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
    /** The gateway's answer to the cached agent read, for the raw uWS HTTP baseline to send. */
    let agentRead: { request: RestRequest; body: string } | null = null;
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
        if (operation.name === 'agents.get') agentRead = { request, body: await answerText(gateway, request) };
      }
    } finally {
      await subject.stop();
    }
    if (agentRead && settings.baselines.includes('uws')) {
      const { request, body } = agentRead;
      runs.push(
        await withSubject(
          () => startHttpBaseline(body),
          (baseline) => runOperation({ httpUrl: baseline.target.urls[0]!, apiKey: 'unused' }, baseline.pids, 'agents.get', request, settings, log, 'uws-http'),
        ),
      );
      notes.push(
        `uws-http: a bare uWS HTTP server answering every GET with the gateway's own agents.get body (${Buffer.byteLength(body)} bytes), same headers.`,
      );
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
        const rawP99 = findRun(all, 'uws-http', 'agents.get')?.latency.request?.p99;
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
          checkTarget({
            name: `REST get an agent: p99 against raw uWS HTTP at ${read?.counters.connections ?? '-'} connections`,
            target: '<= 1.2x raw uWS HTTP p99',
            measured: read?.latency.request?.p99,
            limit: rawP99 == null ? null : 1.2 * rawP99,
            kind: 'at most',
            unit: 'ms',
            why: rawP99 == null ? 'needs the uws baseline' : undefined,
          }),
        ];
      },
    });
  },
};

/** The exact body the gateway answers a request with. */
async function answerText(gateway: GatewayTarget, request: RestRequest): Promise<string> {
  const response = await fetch(`${gateway.httpUrl}${request.path}`, { method: request.method, headers: { 'X-API-Key': gateway.apiKey } });
  return response.text();
}

async function startHttpBaseline(body: string): Promise<Subject> {
  const child = await forkServer(sibling(import.meta.url, '../baselines/uws-http-server.ts'), [], { HTTP_BASELINE_BODY: body });
  const url = `http://127.0.0.1:${child.port}`;
  return {
    name: 'uws-http',
    target: { dialect: 'websocket', urls: [url] },
    pids: [child.pid],
    stop: () => child.stop(),
    collectGarbage: () => child.collectGarbage(),
  };
}
