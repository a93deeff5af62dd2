import { topicOf, type Conversation, type Topic } from '../../protocol/index.js';

/** Topics are scoped by account on the bus and in the log, so no topic can reach another account. */
export function topicKey(accountId: string, topic: Topic | string): string {
  return `${accountId}/${topic}`;
}

/** The client's name of a topic key: without the account scope. */
export function clientTopic(key: string): string {
  return key.slice(key.indexOf('/') + 1);
}

/**
 * The one place that says which topics announce a change to a resource. Every numbered event
 * also goes to the `account` topic (added where the event is drafted), as webhooks see them.
 */
export const topicsOf = {
  conversation: (conversation: Pick<Conversation, 'id' | 'agent_id'>): Topic[] =>
    conversation.agent_id ? [topicOf.conversation(conversation.id), topicOf.agent(conversation.agent_id)] : [topicOf.conversation(conversation.id)],
  /** A message goes where its conversation goes. */
  message: (conversationId: string, agentId: string | null): Topic[] => topicsOf.conversation({ id: conversationId, agent_id: agentId }),
  session: (sessionId: string): Topic[] => [topicOf.session(sessionId)],
  agent: (agentId: string): Topic[] => [topicOf.agent(agentId)],
  /** Keys have no topic of their own: the account's. */
  key: (): Topic[] => [],
  /** Orders and returns have no topic of their own yet: the account's (and webhooks). */
  order: (): Topic[] => [],
  return: (): Topic[] => [],
};
