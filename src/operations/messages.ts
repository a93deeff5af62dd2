import { notFound } from '../kernel/errors.js';
import { MissingConversation } from '../store/repos/messages.js';
import type { HandlerTable } from './context.js';

type MessageHandlers = Pick<HandlerTable, 'messages.create' | 'messages.get' | 'messages.list'>;

export const messageHandlers: MessageHandlers = {
  // Answered only after the group commit that holds this row and its event has committed; then announced.
  'messages.create': async (ctx, input) => {
    try {
      return await ctx.events.commitMessage(ctx.principal.accountId, input);
    } catch (error) {
      if (error instanceof MissingConversation) throw notFound('conversation', 'conversation_id', input.conversation_id);
      throw error;
    }
  },

  'messages.get': async (ctx, { message_id }) => {
    const message = await ctx.store.messages.get(ctx.principal.accountId, message_id);
    if (!message) throw notFound('message', 'message_id', message_id);
    return message;
  },

  'messages.list': async (ctx, input) => {
    // An unknown conversation is a 404, not an empty page.
    if (!(await ctx.store.conversations.exists(ctx.principal.accountId, input.conversation_id))) {
      throw notFound('conversation', 'conversation_id', input.conversation_id);
    }
    return ctx.store.messages.list(ctx.principal.accountId, input);
  },
};
