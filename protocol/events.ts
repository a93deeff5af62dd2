import { z } from 'zod';
import { StreamedMessageCreated } from './realtime.js';
import { ApiKey } from './keys.js';
import { Agent, Conversation } from './resources.js';
import { Session } from './sessions.js';
import { Order, Return } from './commerce.js';

/**
 * The event catalogue: every event a topic can carry, with the shape of its `data`. One list for
 * WebSocket pushes and webhooks. Every numbered event has an `id` (the same on each of
 * its topics), a `ts`, and goes to the `account` topic as well as the resource's own.
 */
export const EventSchemas = {
  'agent.created': z.object({ agent: Agent }),
  'agent.updated': z.object({ agent: Agent }),
  'agent.deleted': z.object({ agent_id: z.string() }),
  'conversation.started': z.object({ conversation: Conversation }),
  'conversation.updated': z.object({ conversation: Conversation }),
  'conversation.escalated': z.object({ conversation: Conversation }),
  'conversation.closed': z.object({ conversation: Conversation }),
  'message.created': StreamedMessageCreated,
  /** An agent started streaming a reply; deltas follow, then `message.created`. */
  'message.stream_started': z.object({ stream_id: z.string(), conversation_id: z.string(), role: z.string(), started_at: z.string() }),
  'message.delta': z.object({ stream_id: z.string(), index: z.number().int(), delta: z.string() }),
  /** A stream ended without a message: it could not be stored (no message.created follows). */
  'message.stream_failed': z.object({ stream_id: z.string(), conversation_id: z.string(), reason: z.literal('not_stored') }),
  /** Ephemeral: not numbered, not replayed. */
  typing: z.object({ conversation_id: z.string(), subject: z.string(), typing: z.boolean() }),
  'presence.joined': z.object({ topic: z.string(), subject: z.string() }),
  'presence.left': z.object({ topic: z.string(), subject: z.string() }),
  'session.created': z.object({ session: Session }),
  /** Carries the state version the change created (null when only metadata changed). */
  'session.updated': z.object({ session: Session, version: z.number().int().nullable(), reasoning: z.string().nullable() }),
  'session.deleted': z.object({ session_id: z.string() }),
  'session.expired': z.object({ session_id: z.string(), ttl_expires_at: z.string() }),
  /** The key as `keys.list` shows it: never its secret. */
  'key.created': z.object({ key: ApiKey }),
  'key.revoked': z.object({ key: ApiKey }),
  /** Order lifecycle: one event per state, `order.updated` for tracking number or metadata only. */
  'order.created': z.object({ order: Order }),
  'order.updated': z.object({ order: Order }),
  'order.paid': z.object({ order: Order }),
  'order.shipped': z.object({ order: Order }),
  'order.delivered': z.object({ order: Order }),
  'order.cancelled': z.object({ order: Order }),
  'return.requested': z.object({ return: Return }),
  'return.approved': z.object({ return: Return }),
  'return.rejected': z.object({ return: Return }),
  /** Carries the order too: its refunded_amount changed with a refund. */
  'return.completed': z.object({ return: Return, order: Order }),
} as const;

/** Events delivered live only. */
export const EPHEMERAL_EVENTS = new Set<string>(['typing', 'presence.joined', 'presence.left']);

/**
 * A reply streamed token by token: numbered on the conversation and agent topics, which show it
 * being written, but not on `account`, which carries changes as webhooks see them (the stored
 * message arrives there as message.created).
 */
export const STREAM_EVENTS = new Set<string>(['message.stream_started', 'message.delta']);

export type EventName = keyof typeof EventSchemas;
export type EventData<E extends EventName> = z.infer<(typeof EventSchemas)[E]>;
export const EVENT_NAMES = Object.keys(EventSchemas) as [EventName, ...EventName[]];
