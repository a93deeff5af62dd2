import { z } from 'zod';
import { Deleted, Id, pageOf } from './common.js';
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
import { sessionContracts } from './session-operations.js';

/**
 * The contract of every operation, defined once: its name (also the WebSocket `call` method),
 * route, permission and schemas. The server implements each by name; clients get types from it.
 */
export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface OperationContract<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  name: string;
  summary: string;
  /** `path` uses `{param}` for values taken from the path; they become input fields. */
  http: { method: HttpMethod; path: string; status?: number };
  permission: string;
  input: I;
  output: O;
}

function contract<I extends z.ZodType, O extends z.ZodType>(c: OperationContract<I, O>): OperationContract<I, O> {
  return c;
}

const byId = <K extends string>(key: K) => z.strictObject({ [key]: Id } as { [P in K]: typeof Id });

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
  }),
  ...sessionContracts,
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
