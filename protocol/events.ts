import { z } from 'zod';
import { Conversation, Message } from './resources.js';
import { Session } from './sessions.js';

/** Every event a topic can carry, with the shape of its `data`. */
export const EventSchemas = {
  'conversation.started': z.object({ conversation: Conversation }),
  'conversation.updated': z.object({ conversation: Conversation }),
  'conversation.escalated': z.object({ conversation: Conversation }),
  'conversation.closed': z.object({ conversation: Conversation }),
  'message.created': z.object({ message: Message }),
  'session.created': z.object({ session: Session }),
  /** Carries the state version the change created (null when only metadata changed). */
  'session.updated': z.object({ session: Session, version: z.number().int().nullable(), reasoning: z.string().nullable() }),
  'session.deleted': z.object({ session_id: z.string() }),
  'session.expired': z.object({ session_id: z.string(), ttl_expires_at: z.string() }),
} as const;

export type EventName = keyof typeof EventSchemas;
export type EventData<E extends EventName> = z.infer<(typeof EventSchemas)[E]>;
export const EVENT_NAMES = Object.keys(EventSchemas) as [EventName, ...EventName[]];
