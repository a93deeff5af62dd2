/**
 * Topics a WebSocket client can subscribe to. One conversation, one session, one agent (all of
 * its conversations), or the whole account (every event, as webhooks see them).
 */
export type Topic = `conversation:${string}` | `session:${string}` | `agent:${string}` | 'account';

export type TopicKind = 'conversation' | 'session' | 'agent' | 'account';

export interface ParsedTopic {
  kind: TopicKind;
  /** The resource id; empty for `account`. */
  id: string;
}

const TOPIC_PATTERN = /^(conversation|session|agent):([A-Za-z0-9_-]{1,64})$/;

export function parseTopic(topic: string): ParsedTopic | null {
  if (topic === 'account') return { kind: 'account', id: '' };
  const match = TOPIC_PATTERN.exec(topic);
  if (!match) return null;
  return { kind: match[1] as TopicKind, id: match[2]! };
}

export const topicOf = {
  conversation: (id: string): Topic => `conversation:${id}`,
  session: (id: string): Topic => `session:${id}`,
  agent: (id: string): Topic => `agent:${id}`,
  account: (): Topic => 'account',
};

/** What a key must hold to follow a topic of each kind. */
export const TOPIC_PERMISSION: Record<TopicKind, string> = {
  conversation: 'conversations:read',
  agent: 'agents:read',
  session: 'sessions:read',
  account: 'events:read',
};
