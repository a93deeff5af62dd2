import { topicOf, type Conversation, type EventName, type Topic } from '../../protocol/index.js';
import { newId } from '../core/ids.js';
import { notFound } from '../core/errors.js';
import type { HandlerTable, OperationContext } from './context.js';

type ConversationHandlers = Pick<HandlerTable, 'conversations.create' | 'conversations.get' | 'conversations.list' | 'conversations.update'>;

export function conversationTopics(conversation: Pick<Conversation, 'id' | 'agent_id'>): Topic[] {
  const topics: Topic[] = [topicOf.conversation(conversation.id)];
  if (conversation.agent_id) topics.push(topicOf.agent(conversation.agent_id));
  return topics;
}

/** A status change is announced by its own name, so widgets and agents need not diff. */
function eventForUpdate(before: Conversation, after: Conversation): EventName {
  if (before.status !== after.status && after.status === 'escalated') return 'conversation.escalated';
  if (before.status !== after.status && after.status === 'closed') return 'conversation.closed';
  return 'conversation.updated';
}

async function announce(ctx: OperationContext, event: EventName, conversation: Conversation): Promise<void> {
  await ctx.events.emit(ctx.principal.accountId, conversationTopics(conversation), event as 'conversation.updated', { conversation });
}

export const conversationHandlers: ConversationHandlers = {
  'conversations.create': async (ctx, input) => {
    const conversation = await ctx.store.conversations.create(ctx.principal.accountId, newId('conversation'), input);
    if (!conversation) throw notFound('agent', 'agent_id', input.agent_id);
    await announce(ctx, 'conversation.started', conversation);
    return conversation;
  },

  'conversations.get': async (ctx, { conversation_id }) => {
    const conversation = await ctx.store.conversations.get(ctx.principal.accountId, conversation_id);
    if (!conversation) throw notFound('conversation', 'conversation_id', conversation_id);
    return conversation;
  },

  'conversations.list': (ctx, input) => ctx.store.conversations.list(ctx.principal.accountId, input),

  'conversations.update': async (ctx, input) => {
    const result = await ctx.store.conversations.update(ctx.principal.accountId, input);
    if (!result) throw notFound('conversation', 'conversation_id', input.conversation_id);
    await announce(ctx, eventForUpdate(result.before, result.after), result.after);
    return result.after;
  },
};
