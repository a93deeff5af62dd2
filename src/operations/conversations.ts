import type { Conversation, EventName } from '../../protocol/index.js';
import { newId } from '../kernel/ids.js';
import { notFound } from '../kernel/errors.js';
import { topicsOf } from '../realtime/topics.js';
import type { HandlerTable } from './context.js';

type ConversationHandlers = Pick<HandlerTable, 'conversations.create' | 'conversations.get' | 'conversations.list' | 'conversations.update'>;

/** A status change is announced by its own name, so widgets and agents need not diff. */
function eventForUpdate(before: Conversation, after: Conversation): EventName {
  if (before.status !== after.status && after.status === 'escalated') return 'conversation.escalated';
  if (before.status !== after.status && after.status === 'closed') return 'conversation.closed';
  return 'conversation.updated';
}

export const conversationHandlers: ConversationHandlers = {
  'conversations.create': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const conversation = await tx.conversations.create(ctx.principal.accountId, newId('conversation'), input);
      if (!conversation) throw notFound('agent', 'agent_id', input.agent_id);
      emit(topicsOf.conversation(conversation), 'conversation.started', { conversation });
      return conversation;
    }),

  'conversations.get': async (ctx, { conversation_id }) => {
    const conversation = await ctx.store.conversations.get(ctx.principal.accountId, conversation_id);
    if (!conversation) throw notFound('conversation', 'conversation_id', conversation_id);
    return conversation;
  },

  'conversations.list': (ctx, input) => ctx.store.conversations.list(ctx.principal.accountId, input),

  'conversations.update': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const result = await tx.conversations.update(ctx.principal.accountId, input);
      if (!result) throw notFound('conversation', 'conversation_id', input.conversation_id);
      emit(topicsOf.conversation(result.after), eventForUpdate(result.before, result.after) as 'conversation.updated', { conversation: result.after });
      return result.after;
    }),
};
