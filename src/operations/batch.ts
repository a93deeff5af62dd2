import type { HandlerTable } from './context.js';

type BatchHandlers = Pick<HandlerTable, 'conversations.last_by_agents' | 'messages.last_by_conversations'>;

/** Batched reads for loaders: one statement for many parents, always within the caller's account. */
export const batchHandlers: BatchHandlers = {
  'conversations.last_by_agents': async (ctx, { agent_ids, first, last, after, before }) => ({
    data: await ctx.store.conversations.lastByAgents(ctx.principal.accountId, agent_ids, {
      ...(first !== undefined ? { first } : { last: last ?? 10 }),
      after,
      before,
    }),
  }),
  'messages.last_by_conversations': async (ctx, { conversation_ids, last }) => ({
    data: await ctx.store.messages.lastByConversations(ctx.principal.accountId, conversation_ids, last),
  }),
};
