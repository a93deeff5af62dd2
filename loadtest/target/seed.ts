import type { GatewayTarget } from './gateway.js';

/** Creates the resources a scenario needs, over the gateway's own REST API. */
export async function api<T>(target: GatewayTarget, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${target.httpUrl}${path}`, {
    method,
    headers: { 'X-API-Key': target.apiKey, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const envelope = (await response.json()) as { success: boolean; data?: T; error?: unknown };
  if (!response.ok || !envelope.success) throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(envelope.error ?? envelope)}`);
  return envelope.data as T;
}

export interface Seeded {
  agentIds: string[];
  /** conversationIds[i] belongs to agentIds[i % agentIds.length]. */
  conversationIds: string[];
}

/** `agents` agents and `conversations` conversations spread over them, a few requests at a time. */
export async function seedConversations(target: GatewayTarget, counts: { agents: number; conversations: number }): Promise<Seeded> {
  const agentIds = await inBatches(counts.agents, (index) =>
    api<{ id: string }>(target, 'POST', '/v1/agents', { name: `load agent ${index}` }).then((agent) => agent.id),
  );
  const conversationIds = await inBatches(counts.conversations, (index) =>
    api<{ id: string }>(target, 'POST', '/v1/conversations', { agent_id: agentIds[index % agentIds.length] }).then((conversation) => conversation.id),
  );
  return { agentIds, conversationIds };
}

async function inBatches<T>(count: number, make: (index: number) => Promise<T>, width = 16): Promise<T[]> {
  const out: T[] = new Array(count);
  for (let start = 0; start < count; start += width) {
    const indexes = Array.from({ length: Math.min(width, count - start) }, (_, offset) => start + offset);
    const made = await Promise.all(indexes.map(make));
    made.forEach((value, offset) => (out[start + offset] = value));
  }
  return out;
}
