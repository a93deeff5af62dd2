import { parseTopic, TOPIC_PERMISSION } from '../../protocol/index.js';
import { hasPermission, type Principal } from '../auth/keys.js';
import { ApiFailure, notFound } from '../kernel/errors.js';
import type { Store } from '../store/store.js';
import { topicKey } from './topics.js';

/**
 * Decides whether a principal may follow a topic, and returns the account-scoped stream key.
 * A resource of another account is reported as not found, never as forbidden.
 */
export async function authorizeTopic(store: Store, principal: Principal, topic: string): Promise<string> {
  const parsed = parseTopic(topic);
  if (!parsed) {
    throw new ApiFailure('VALIDATION_ERROR', `Unknown topic: ${topic.slice(0, 80)}`, {
      topic: topic.slice(0, 80),
      expected: ['conversation:<id>', 'agent:<id>', 'session:<id>', 'account'],
    });
  }
  if (principal.topics && !principal.topics.includes(topic)) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `This token does not cover ${topic}`, { topic, allowed_topics: principal.topics });
  }
  const permission = TOPIC_PERMISSION[parsed.kind];
  if (!hasPermission(principal.scopes, permission)) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `This key lacks the ${permission} permission`, { required: permission });
  }
  const accountId = principal.accountId;
  switch (parsed.kind) {
    case 'conversation':
      if (!(await store.conversations.exists(accountId, parsed.id))) throw notFound('conversation', 'conversation_id', parsed.id);
      break;
    case 'agent':
      if (!(await store.agents.get(accountId, parsed.id))) throw notFound('agent', 'agent_id', parsed.id);
      break;
    case 'session':
      if (!(await store.sessions.exists(accountId, parsed.id))) throw notFound('session', 'session_id', parsed.id);
      break;
    case 'account':
      break;
  }
  return topicKey(accountId, topic);
}
