import autocannon from 'autocannon';
import { deltaOf, sampleProcesses } from '../lib/proc.js';
import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import type { Settings } from '../settings.js';
import type { GatewayTarget } from '../target/gateway.js';
import { api, seedConversations } from '../target/seed.js';
import { autocannonLatency, cpuPer } from './measure.js';
import { startReport, type Scenario } from './scenario.js';
import { startGatewaySubject } from './subjects.js';
import { DOCUMENT_QUERY } from './graphql-document.js';

type Request = { method: 'GET' | 'POST'; path: string; body?: string; headers?: Record<string, string> };

/**
 * The document's query (`POST /graphql`, one request: agent, its 10 newest conversations, their
 * messages) against REST doing the same work: `GET /v1/agents/{id}`, `GET /v1/conversations?agent_id=…&limit=10`
 * and `GET /v1/conversations/{id}/messages?limit=50` per conversation, sent in order on each
 * connection (autocannon's request sequence). Both are compared per document: documents/s, and
 * a document's latency (GraphQL: one request; REST: its requests one after the other).
 */
async function cannon(gateway: GatewayTarget, requests: Request[], settings: Settings, durationS: number, connections: number) {
  return autocannon({
    url: gateway.httpUrl,
    headers: { 'X-API-Key': gateway.apiKey, 'Content-Type': 'application/json' },
    requests,
    connections,
    duration: durationS,
    workers: settings.workers,
    timeout: 10,
  });
}

async function runDocument(
  gateway: GatewayTarget,
  pids: number[],
  subject: 'gateway' | 'rest',
  requests: Request[],
  settings: Settings,
  log: (line: string) => void,
): Promise<RunFigures> {
  const connections = settings.connections ?? (settings.quick ? 10 : 50);
  const perDocument = requests.length;
  log(`- graphql ${subject === 'gateway' ? 'POST /graphql' : `REST, ${perDocument} requests`} per document, ${connections} connections`);
  await cannon(gateway, requests, settings, settings.quick ? 1 : 2, connections); // warm-up, unmeasured
  const before = sampleProcesses(pids);
  const result = await cannon(gateway, requests, settings, settings.durationS, connections);
  const server = deltaOf(before, sampleProcesses(pids));
  const ok = result['2xx'];
  const total = ok + result.non2xx;
  const documents = total / perDocument;
  // A connection sends a document's requests one after the other: its latency is their sum.
  const scale = (ms: number | undefined) => (ms === undefined ? 0 : Math.round(ms * perDocument * 100) / 100);
  return {
    subject,
    variant: 'document',
    figures: {
      documents_per_s: Math.round(documents / result.duration),
      http_requests_per_s: Math.round(total / result.duration),
      requests_per_document: perDocument,
      document_latency_mean_ms: scale(result.latency.mean),
      server_cpu_us_per_document: cpuPer(server, documents),
      non_2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    },
    latency: { request: autocannonLatency(result, total) },
    counters: { '2xx': ok, non_2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, connections, requests_per_document: perDocument },
    server,
    notes: [
      ...(perDocument > 1 ? [`request latency is per HTTP request; a document is ${perDocument} of them in sequence (document_latency_mean_ms)`] : []),
      ...(Object.keys(result.statusCodeStats).some((code) => !code.startsWith('2')) ? [`status codes: ${JSON.stringify(result.statusCodeStats)}`] : []),
    ],
  };
}

export const graphqlScenario: Scenario = {
  name: 'graphql',
  title: "GraphQL: the document's query against REST doing the same work (autocannon)",
  async run(settings, log) {
    const finish = startReport(graphqlScenario, settings);
    const runs: RunFigures[] = [];
    const { subject, gateway } = await startGatewaySubject(settings, log);
    try {
      // One agent, 10 conversations of 2 messages (the query's last 10, each with its messages).
      const seeded = await seedConversations(gateway, { agents: 1, conversations: 10 });
      const agentId = seeded.agentIds[0]!;
      for (const conversationId of seeded.conversationIds) {
        for (let index = 0; index < 2; index++)
          await api(gateway, 'POST', '/v1/messages', { conversation_id: conversationId, content: `seed message ${index}`, role: index ? 'agent' : 'user' });
      }
      const probe = await fetch(`${gateway.httpUrl}/graphql`, {
        method: 'POST',
        headers: { 'X-API-Key': gateway.apiKey, 'Content-Type': 'application/json' },
        body: JSON.stringify({ query: DOCUMENT_QUERY, variables: { agentId } }),
      });
      const answer = (await probe.json()) as { data?: { agent?: { conversations: { edges: unknown[] } } }; errors?: unknown[] };
      if (!probe.ok || answer.errors || answer.data?.agent?.conversations.edges.length !== seeded.conversationIds.length) {
        throw new Error(`the document's query answered ${probe.status}: ${JSON.stringify(answer).slice(0, 300)}`);
      }
      const graphql: Request[] = [{ method: 'POST', path: '/graphql', body: JSON.stringify({ query: DOCUMENT_QUERY, variables: { agentId } }) }];
      const rest: Request[] = [
        { method: 'GET', path: `/v1/agents/${agentId}` },
        { method: 'GET', path: `/v1/conversations?agent_id=${agentId}&limit=10` },
        ...seeded.conversationIds.map((id): Request => ({ method: 'GET', path: `/v1/conversations/${id}/messages?limit=50` })),
      ];
      runs.push(await runDocument(gateway, subject.pids, 'gateway', graphql, settings, log));
      runs.push(await runDocument(gateway, subject.pids, 'rest', rest, settings, log));
    } finally {
      await subject.stop();
    }
    return finish({
      runs,
      ratioFigures: ['documents_per_s', 'document_latency_mean_ms', 'server_cpu_us_per_document'],
      primaryLatency: 'request',
      notes: [
        "subject gateway = the document's query over POST /graphql (one request per document); subject rest = the same data over REST (12 requests per document, in sequence on a connection).",
        'Latency in ms as autocannon measures it (1 ms resolution), per HTTP request; document latency for REST is the sum of its requests.',
      ],
      targets: (all) => {
        const ours = findRun(all, 'gateway', 'document');
        const theirs = findRun(all, 'rest', 'document');
        const restRate = theirs?.figures.documents_per_s;
        return [
          checkTarget({
            name: "GraphQL document's query: rate",
            target: '>= REST doing the same work',
            measured: ours?.figures.documents_per_s,
            limit: restRate ?? null,
            kind: 'at least',
            unit: 'documents/s',
          }),
        ];
      },
    });
  },
};
