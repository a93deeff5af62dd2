import { parseTopic, topicOf } from '../../protocol/index.js';
import { ApiFailure, notFound } from '../kernel/errors.js';
import type { HandlerTable, OperationContext } from './context.js';

type RealtimeHandlers = Pick<
  HandlerTable,
  'conversations.typing' | 'streams.start' | 'streams.append' | 'streams.end' | 'presence.get' | 'tokens.create' | 'topics.subscribe' | 'topics.unsubscribe'
>;

/** Subscriptions need a connection that receives events; REST has none. */
function subscriberOf(ctx: { subscriber: OperationContext['subscriber'] }, method: string) {
  if (!ctx.subscriber) {
    throw new ApiFailure('VALIDATION_ERROR', `${method} needs a connection that receives events: use the WebSocket at /v1/ws`, { method });
  }
  return ctx.subscriber;
}

export const realtimeHandlers: RealtimeHandlers = {
  'conversations.typing': async (ctx, input) => {
    if (!(await ctx.store.conversations.exists(ctx.principal.accountId, input.conversation_id))) {
      throw notFound('conversation', 'conversation_id', input.conversation_id);
    }
    await ctx.events.signal(ctx.principal.accountId, [topicOf.conversation(input.conversation_id)], 'typing', {
      conversation_id: input.conversation_id,
      subject: ctx.principal.subject,
      typing: input.typing,
    });
    return { conversation_id: input.conversation_id, typing: input.typing };
  },

  'streams.start': (ctx, input) => ctx.realtime.streams.start(ctx.principal.accountId, input, ctx.connectionId),

  'streams.append': (ctx, input) => ctx.realtime.streams.append(ctx.principal.accountId, input.stream_id, input.delta),

  'streams.end': (ctx, input) => ctx.realtime.streams.end(ctx.principal.accountId, input.stream_id, input.metadata),

  'topics.subscribe': async (ctx, input) => {
    const pending = await ctx.realtime.delivery.subscribe(subscriberOf(ctx, 'topics.subscribe'), ctx.principal, input);
    ctx.afterReply(pending.start, pending.abandon);
    return pending.result;
  },

  'topics.unsubscribe': async (ctx, input) => ctx.realtime.delivery.unsubscribe(subscriberOf(ctx, 'topics.unsubscribe'), input.topic),

  'presence.get': async (ctx, input) => {
    // Same rule as subscribing: a topic of another account is not found.
    await ctx.realtime.authorizeTopic(ctx.principal, input.topic);
    return await ctx.realtime.presence.get(ctx.principal.accountId, input.topic);
  },

  'tokens.create': async (ctx, input) => {
    if (ctx.principal.topics) throw new ApiFailure('INSUFFICIENT_PERMISSIONS', 'A client token cannot mint tokens', { required: 'tokens:write' });
    const missing = ctx.realtime.tokens.missingPermissions(ctx.principal, input.permissions);
    if (missing.length > 0) {
      throw new ApiFailure('INSUFFICIENT_PERMISSIONS', 'A token cannot carry permissions its minting key lacks', { missing });
    }
    for (const topic of input.topics) {
      if (!parseTopic(topic)) throw new ApiFailure('VALIDATION_ERROR', `Unknown topic: ${topic.slice(0, 80)}`, { topic: topic.slice(0, 80) });
      await ctx.realtime.authorizeTopic(ctx.principal, topic);
    }
    const minted = await ctx.realtime.tokens.mint(ctx.principal, {
      subject: input.subject,
      topics: input.topics,
      permissions: input.permissions,
      ttlSeconds: input.ttl_seconds,
    });
    return {
      token: minted.token,
      expires_at: minted.expiresAt.toISOString(),
      topics: input.topics,
      permissions: input.permissions,
      subject: input.subject,
    };
  },
};
