import { api } from '../target/seed.js';
import type { GatewayTarget } from '../target/gateway.js';

/**
 * The hot REST operations the `rest` scenario loads. To add one, add an entry: `prepare` creates
 * what it needs and returns the request, or null when the gateway does not have the route yet
 * (an operation whose probe answers 404 is skipped and the report says so).
 */
export interface RestRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
}

export interface RestOperation {
  name: string;
  /** Reads are compared with the bare-select baseline; writes are not. */
  kind: 'read' | 'write';
  prepare(gateway: GatewayTarget, seeded: { agentId: string; conversationId: string }): Promise<RestRequest | null>;
}

/** 404 on a probe means "route not there yet"; any other failure is a real error. */
async function probe(gateway: GatewayTarget, request: RestRequest): Promise<boolean> {
  const response = await fetch(`${gateway.httpUrl}${request.path}`, {
    method: request.method,
    headers: { 'X-API-Key': gateway.apiKey, 'Content-Type': 'application/json' },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
  });
  await response.arrayBuffer();
  if (response.status === 404) return false;
  if (!response.ok) throw new Error(`${request.method} ${request.path} answered ${response.status}`);
  return true;
}

export const REST_OPERATIONS: RestOperation[] = [
  {
    name: 'messages.create',
    kind: 'write',
    async prepare(gateway, seeded) {
      const request: RestRequest = {
        method: 'POST',
        path: '/v1/messages',
        body: { conversation_id: seeded.conversationId, role: 'user', content: 'I need help with my order', metadata: { source: 'loadtest' } },
      };
      return (await probe(gateway, request)) ? request : null;
    },
  },
  {
    name: 'messages.list',
    kind: 'read',
    async prepare(gateway, seeded) {
      const request: RestRequest = { method: 'GET', path: `/v1/conversations/${seeded.conversationId}/messages?limit=20` };
      return (await probe(gateway, request)) ? request : null;
    },
  },
  {
    name: 'agents.get',
    kind: 'read',
    async prepare(gateway, seeded) {
      const request: RestRequest = { method: 'GET', path: `/v1/agents/${seeded.agentId}` };
      return (await probe(gateway, request)) ? request : null;
    },
  },
  {
    // The agent's per-turn call: state, memories similar to the query, recent turns.
    name: 'sessions.context',
    kind: 'read',
    async prepare(gateway, seeded) {
      if (!(await probe(gateway, { method: 'GET', path: '/v1/sessions?limit=1' }))) return null;
      const session = await api<{ id: string }>(gateway, 'POST', '/v1/sessions', { agent_id: seeded.agentId }).catch(() => null);
      if (!session) return null;
      for (let i = 0; i < 20; i++) {
        await api(gateway, 'POST', `/v1/sessions/${session.id}/memories`, { content: `The customer prefers option ${i} for delivery and billing` });
        await api(gateway, 'POST', `/v1/sessions/${session.id}/turns`, { input: `question ${i}`, output: `answer ${i}` });
      }
      const request: RestRequest = {
        method: 'POST',
        path: `/v1/sessions/${session.id}/context`,
        body: { query: 'what delivery option does the customer prefer?', memory_limit: 5, turn_limit: 10 },
      };
      return (await probe(gateway, request)) ? request : null;
    },
  },
];
