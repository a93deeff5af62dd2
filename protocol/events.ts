import { z } from 'zod';
import { Conversation, Message } from './resources.js';

/** Every event a topic can carry, with the shape of its `data`. */
export const EventSchemas = {
  'conversation.started': z.object({ conversation: Conversation }),
  'conversation.updated': z.object({ conversation: Conversation }),
  'conversation.escalated': z.object({ conversation: Conversation }),
  'conversation.closed': z.object({ conversation: Conversation }),
  'message.created': z.object({ message: Message }),
} as const;

export type EventName = keyof typeof EventSchemas;
export type EventData<E extends EventName> = z.infer<(typeof EventSchemas)[E]>;
export const EVENT_NAMES = Object.keys(EventSchemas) as [EventName, ...EventName[]];
