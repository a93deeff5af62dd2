import { z } from 'zod';
import { Id } from './common.js';
import { connectionContract } from './contract.js';
import { Conversation, Message } from './resources.js';
import { topicOf } from './topics.js';

/** Most keys one batched read takes: a GraphQL level with more parents is split by its loader. */
export const MAX_BATCH_KEYS = 100;
/** Most children per parent a batched read returns. */
export const MAX_BATCH_CHILDREN = 100;

const Last = z.coerce.number().int().min(1).max(MAX_BATCH_CHILDREN);

/**
 * Batched reads for loaders (GraphQL's batch loading): the children of many parents in one
 * statement. No REST route; they run through the same pipeline (permission, rate limit, account).
 * Each has the permission of the operation it stands for (`conversations.list` by agent,
 * `messages.list`) and a topic per parent, so that a nested field is allowed exactly when that
 * operation would be, client tokens included.
 */
export const batchContracts = {
  'conversations.last_by_agents': connectionContract({
    name: 'conversations.last_by_agents',
    summary:
      'The newest `last` (or oldest `first`) conversations of each agent, optionally after/before a conversation id, oldest first within an agent (one statement for all agents)',
    permission: 'conversations:read',
    input: z
      .strictObject({
        agent_ids: z.array(Id).min(1).max(MAX_BATCH_KEYS),
        first: Last.optional(),
        last: Last.optional(),
        after: Id.optional(),
        before: Id.optional(),
      })
      .refine((input) => input.first === undefined || input.last === undefined, { message: 'Give first or last, not both', path: ['first'] }),
    output: z.object({ data: z.array(Conversation) }),
    scope: (input) => input.agent_ids.map(topicOf.agent),
  }),
  'messages.last_by_conversations': connectionContract({
    name: 'messages.last_by_conversations',
    summary: 'The newest `last` messages of each conversation, oldest first within a conversation (one statement for all)',
    permission: 'messages:read',
    input: z.strictObject({ conversation_ids: z.array(Id).min(1).max(MAX_BATCH_KEYS), last: Last.default(50) }),
    output: z.object({ data: z.array(Message) }),
    scope: (input) => input.conversation_ids.map(topicOf.conversation),
  }),
} as const;

/** Operations that exist for loaders only: not offered as GraphQL fields of their own. */
export const BATCH_OPERATION_NAMES = Object.keys(batchContracts) as (keyof typeof batchContracts)[];
