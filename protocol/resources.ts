import { z } from 'zod';
import { Id, Metadata, Timestamp } from './common.js';
import { listParams, type FieldSpecs } from './query.js';

// ---------- Agents ----------

export const AgentStatus = z.enum(['active', 'inactive']);

/** The document's three capabilities, plus any other boolean flag a deployment defines. */
export const Capabilities = z
  .object({
    can_create_tickets: z.boolean().optional(),
    can_process_returns: z.boolean().optional(),
    can_issue_refunds: z.boolean().optional(),
  })
  .catchall(z.boolean());

export const Agent = z.object({
  id: z.string(),
  name: z.string(),
  role: z.string().nullable(),
  instructions: z.string().nullable(),
  capabilities: Capabilities,
  metadata: Metadata,
  status: AgentStatus,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Agent = z.infer<typeof Agent>;

export const AgentCreateInput = z.strictObject({
  name: z.string().trim().min(1).max(200),
  role: z.string().max(200).optional(),
  instructions: z.string().max(32_000).optional(),
  capabilities: Capabilities.optional(),
  metadata: Metadata.optional(),
  status: AgentStatus.optional(),
});
export type AgentCreateInput = z.infer<typeof AgentCreateInput>;

export const AgentUpdateInput = z.strictObject({
  agent_id: Id,
  name: z.string().trim().min(1).max(200).optional(),
  role: z.string().max(200).nullable().optional(),
  instructions: z.string().max(32_000).nullable().optional(),
  capabilities: Capabilities.optional(),
  metadata: Metadata.optional(),
  status: AgentStatus.optional(),
});
export type AgentUpdateInput = z.infer<typeof AgentUpdateInput>;

/** Fields a list of agents may be filtered (and, where marked, sorted) by. */
export const AGENT_LIST_FIELDS = {
  status: { kind: 'text', values: AgentStatus.options },
  name: { kind: 'text', sortable: true },
  role: { kind: 'text' },
  created_at: { kind: 'timestamp', sortable: true },
  updated_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const AgentListInput = z.strictObject({
  ...listParams(AGENT_LIST_FIELDS, '-created_at'),
  /** Shorthand for filter[status]. */
  status: AgentStatus.optional(),
});
export type AgentListInput = z.infer<typeof AgentListInput>;

// ---------- Conversations ----------

export const ConversationStatus = z.enum(['open', 'escalated', 'closed']);
export type ConversationStatus = z.infer<typeof ConversationStatus>;

/** Customer satisfaction on the usual 1-5 scale. */
export const SatisfactionScore = z.number().min(1).max(5);

export const Conversation = z.object({
  id: z.string(),
  /** Null once the agent has been deleted: the conversation and its messages are kept. */
  agent_id: z.string().nullable(),
  channel: z.string(),
  status: ConversationStatus,
  satisfaction_score: z.number().nullable(),
  metadata: Metadata,
  message_count: z.number().int(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type Conversation = z.infer<typeof Conversation>;

export const Channel = z.string().trim().min(1).max(50);

export const ConversationCreateInput = z.strictObject({
  agent_id: Id,
  channel: Channel.default('web'),
  metadata: Metadata.optional(),
});
export type ConversationCreateInput = z.infer<typeof ConversationCreateInput>;

export const ConversationUpdateInput = z.strictObject({
  conversation_id: Id,
  status: ConversationStatus.optional(),
  satisfaction_score: SatisfactionScore.nullable().optional(),
  metadata: Metadata.optional(),
});
export type ConversationUpdateInput = z.infer<typeof ConversationUpdateInput>;

export const CONVERSATION_LIST_FIELDS = {
  agent_id: { kind: 'text' },
  channel: { kind: 'text' },
  status: { kind: 'text', values: ConversationStatus.options },
  satisfaction_score: { kind: 'number' },
  message_count: { kind: 'number', sortable: true },
  created_at: { kind: 'timestamp', sortable: true },
  updated_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const ConversationListInput = z.strictObject({
  ...listParams(CONVERSATION_LIST_FIELDS, '-created_at'),
  /** Shorthands for filter[agent_id] and filter[status]. */
  agent_id: Id.optional(),
  status: ConversationStatus.optional(),
});
export type ConversationListInput = z.infer<typeof ConversationListInput>;

// ---------- Messages ----------

export const MessageRole = z.enum(['user', 'agent', 'assistant', 'system']);
export type MessageRole = z.infer<typeof MessageRole>;

export const MAX_MESSAGE_CHARS = 32_000;

export const Message = z.object({
  id: z.string(),
  conversation_id: z.string(),
  role: MessageRole,
  content: z.string(),
  metadata: Metadata,
  created_at: Timestamp,
});
export type Message = z.infer<typeof Message>;

export const MessageCreateInput = z.strictObject({
  conversation_id: Id,
  content: z.string().min(1).max(MAX_MESSAGE_CHARS),
  role: MessageRole.default('user'),
  metadata: Metadata.optional(),
});
export type MessageCreateInput = z.infer<typeof MessageCreateInput>;

export const MESSAGE_LIST_FIELDS = {
  role: { kind: 'text', values: MessageRole.options },
  created_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const MessageListInput = z.strictObject({
  ...listParams(MESSAGE_LIST_FIELDS, 'created_at'),
  conversation_id: Id,
});
export type MessageListInput = z.infer<typeof MessageListInput>;
