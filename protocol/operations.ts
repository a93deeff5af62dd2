import { z } from 'zod';
import { Deleted, pageOf } from './common.js';
import { ApiKey, ApiKeyCreated, ApiKeyCreateInput, ApiKeyListInput } from './keys.js';
import {
  ClientToken,
  ClientTokenInput,
  Presence,
  PresenceInput,
  StreamAppended,
  StreamAppendInput,
  StreamEndInput,
  StreamStarted,
  StreamStartInput,
  TopicSubscribeInput,
  TopicUnsubscribed,
  TopicUnsubscribeInput,
  TypingInput,
} from './realtime.js';
import { SubscribeResult } from './frames.js';
import { parseTopic, TOPIC_PERMISSION } from './topics.js';
import {
  Agent,
  AgentCreateInput,
  AgentListInput,
  AgentUpdateInput,
  Conversation,
  ConversationCreateInput,
  ConversationListInput,
  ConversationUpdateInput,
  Message,
  MessageCreateInput,
  MessageListInput,
} from './resources.js';
import { byId, connectionContract, contract } from './contract.js';
import { sessionContracts } from './session-operations.js';
import { compatContracts } from './compat-operations.js';
import { commerceContracts } from './commerce-operations.js';
import { webhookContracts } from './webhook-operations.js';
import { batchContracts } from './batch-operations.js';

export type { HttpMethod, OperationContract, RestContract } from './contract.js';

export const contracts = {
  'agents.create': contract({
    name: 'agents.create',
    summary: 'Create an agent',
    http: { method: 'POST', path: '/v1/agents', status: 201 },
    permission: 'agents:write',
    input: AgentCreateInput,
    output: Agent,
  }),
  'agents.get': contract({
    name: 'agents.get',
    summary: 'Get an agent',
    http: { method: 'GET', path: '/v1/agents/{agent_id}' },
    permission: 'agents:read',
    input: byId('agent_id'),
    output: Agent,
  }),
  'agents.list': contract({
    name: 'agents.list',
    summary: 'List agents, newest first',
    http: { method: 'GET', path: '/v1/agents' },
    permission: 'agents:read',
    input: AgentListInput,
    output: pageOf(Agent),
  }),
  'agents.update': contract({
    name: 'agents.update',
    summary: 'Update an agent; absent fields are left as they are',
    http: { method: 'PATCH', path: '/v1/agents/{agent_id}' },
    permission: 'agents:write',
    input: AgentUpdateInput,
    output: Agent,
  }),
  'agents.delete': contract({
    name: 'agents.delete',
    summary: 'Delete an agent; its conversations are kept with agent_id set to null',
    http: { method: 'DELETE', path: '/v1/agents/{agent_id}' },
    permission: 'agents:write',
    input: byId('agent_id'),
    output: Deleted,
  }),
  'conversations.create': contract({
    name: 'conversations.create',
    summary: 'Start a conversation with an agent',
    http: { method: 'POST', path: '/v1/conversations', status: 201 },
    permission: 'conversations:write',
    input: ConversationCreateInput,
    output: Conversation,
  }),
  'conversations.get': contract({
    name: 'conversations.get',
    summary: 'Get a conversation',
    http: { method: 'GET', path: '/v1/conversations/{conversation_id}' },
    permission: 'conversations:read',
    input: byId('conversation_id'),
    output: Conversation,
    scope: (input) => `conversation:${input.conversation_id}`,
  }),
  'conversations.list': contract({
    name: 'conversations.list',
    summary: 'List conversations, newest first',
    http: { method: 'GET', path: '/v1/conversations' },
    permission: 'conversations:read',
    input: ConversationListInput,
    output: pageOf(Conversation),
  }),
  'conversations.update': contract({
    name: 'conversations.update',
    summary: 'Update status, satisfaction score or metadata of a conversation',
    http: { method: 'PATCH', path: '/v1/conversations/{conversation_id}' },
    permission: 'conversations:write',
    input: ConversationUpdateInput,
    output: Conversation,
  }),
  'messages.create': contract({
    name: 'messages.create',
    summary: 'Add a message to a conversation (durable when answered)',
    http: { method: 'POST', path: '/v1/messages', status: 201 },
    permission: 'messages:write',
    input: MessageCreateInput,
    output: Message,
    scope: (input) => `conversation:${input.conversation_id}`,
  }),
  'messages.get': contract({
    name: 'messages.get',
    summary: 'Get a message',
    http: { method: 'GET', path: '/v1/messages/{message_id}' },
    permission: 'messages:read',
    input: byId('message_id'),
    output: Message,
  }),
  'messages.list': contract({
    name: 'messages.list',
    summary: "List a conversation's messages, oldest first",
    http: { method: 'GET', path: '/v1/conversations/{conversation_id}/messages' },
    permission: 'messages:read',
    input: MessageListInput,
    output: pageOf(Message),
    scope: (input) => `conversation:${input.conversation_id}`,
  }),
  'keys.create': contract({
    name: 'keys.create',
    summary: 'Create an API key; the secret is in this answer only',
    http: { method: 'POST', path: '/v1/keys', status: 201 },
    permission: 'keys:write',
    input: ApiKeyCreateInput,
    output: ApiKeyCreated,
  }),
  'keys.list': contract({
    name: 'keys.list',
    summary: "List the account's API keys (never their secrets), newest first",
    http: { method: 'GET', path: '/v1/keys' },
    permission: 'keys:read',
    input: ApiKeyListInput,
    output: pageOf(ApiKey),
  }),
  'keys.revoke': contract({
    name: 'keys.revoke',
    summary: 'Revoke an API key; it stops working at once',
    http: { method: 'DELETE', path: '/v1/keys/{key_id}' },
    permission: 'keys:write',
    input: byId('key_id'),
    output: ApiKey,
  }),
  'conversations.typing': contract({
    name: 'conversations.typing',
    summary: 'Say that the caller is (or stopped) typing; an ephemeral event, not stored',
    http: { method: 'POST', path: '/v1/conversations/{conversation_id}/typing' },
    permission: 'messages:write',
    input: TypingInput,
    output: z.object({ conversation_id: z.string(), typing: z.boolean() }),
    scope: (input) => `conversation:${input.conversation_id}`,
    unmetered: true,
  }),
  'streams.start': contract({
    name: 'streams.start',
    summary: 'Start streaming a reply into a conversation; deltas follow, then streams.end',
    http: { method: 'POST', path: '/v1/streams', status: 201 },
    permission: 'messages:write',
    input: StreamStartInput,
    output: StreamStarted,
  }),
  'streams.append': contract({
    name: 'streams.append',
    summary: 'Append the next text delta to a stream',
    http: { method: 'POST', path: '/v1/streams/{stream_id}/deltas' },
    permission: 'messages:write',
    input: StreamAppendInput,
    output: StreamAppended,
    unmetered: true,
  }),
  'streams.end': contract({
    name: 'streams.end',
    summary: 'End a stream: its full text is stored once as a message and announced as message.created',
    http: { method: 'POST', path: '/v1/streams/{stream_id}/end' },
    permission: 'messages:write',
    input: StreamEndInput,
    output: Message,
  }),
  'presence.get': contract({
    name: 'presence.get',
    summary: 'Who is connected to a topic',
    http: { method: 'GET', path: '/v1/presence' },
    permission: 'conversations:read',
    input: PresenceInput,
    output: Presence,
    scope: (input) => input.topic,
  }),
  'tokens.create': contract({
    name: 'tokens.create',
    summary: 'Mint a short-lived client token limited to topics and permissions, for browsers',
    http: { method: 'POST', path: '/v1/tokens', status: 201 },
    permission: 'tokens:write',
    input: ClientTokenInput,
    output: ClientToken,
  }),
  'topics.subscribe': connectionContract({
    name: 'topics.subscribe',
    summary: 'Receive the events of a topic on this connection, resuming after `since` of `epoch` when given (the `subscribe` frame)',
    permission: (input) => TOPIC_PERMISSION[parseTopic(input.topic)!.kind],
    input: TopicSubscribeInput,
    output: SubscribeResult,
    scope: (input) => input.topic,
  }),
  'topics.unsubscribe': connectionContract({
    name: 'topics.unsubscribe',
    summary: 'Stop receiving a topic on this connection (the `unsubscribe` frame)',
    permission: 'events:read',
    input: TopicUnsubscribeInput,
    output: TopicUnsubscribed,
    scope: (input) => input.topic,
  }),
  ...sessionContracts,
  ...compatContracts,
  ...commerceContracts,
  ...webhookContracts,
  ...batchContracts,
} as const;

export type Contracts = typeof contracts;
export type OperationName = keyof Contracts;
/** What a caller sends (defaults may be left out). */
export type InputOf<N extends OperationName> = z.input<Contracts[N]['input']>;
/** What a caller receives. */
export type OutputOf<N extends OperationName> = z.output<Contracts[N]['output']>;
/** What a handler receives, after defaults are applied. */
export type ParsedInputOf<N extends OperationName> = z.output<Contracts[N]['input']>;

export const OPERATION_NAMES = Object.keys(contracts) as OperationName[];

/** Operations with a REST route (all but those that need a connection receiving events). */
export type RestOperationName = { [N in OperationName]: Contracts[N] extends { http: object } ? N : never }[OperationName];
export const REST_OPERATION_NAMES = OPERATION_NAMES.filter((name) => contracts[name].http !== undefined) as RestOperationName[];
