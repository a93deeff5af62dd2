import { z } from 'zod';
import { Id, Metadata } from './common.js';
import { MAX_MESSAGE_CHARS, Message, MessageRole } from './resources.js';
import { parseTopic } from './topics.js';

// ---------- Token streaming ----------

export const StreamStartInput = z.strictObject({
  conversation_id: Id,
  role: MessageRole.default('agent'),
  metadata: Metadata.optional(),
});

export const StreamStarted = z.object({
  stream_id: z.string(),
  conversation_id: z.string(),
  role: MessageRole,
  started_at: z.string(),
});
export type StreamStarted = z.infer<typeof StreamStarted>;

export const StreamAppendInput = z.strictObject({
  stream_id: Id,
  /** The next piece of text: a token or a few. */
  delta: z.string().min(1).max(8_000),
});

export const StreamAppended = z.object({
  stream_id: z.string(),
  /** 0-based position of this delta in the stream. */
  index: z.number().int(),
  /** Characters so far. */
  length: z.number().int(),
});

export const StreamEndInput = z.strictObject({
  stream_id: Id,
  metadata: Metadata.optional(),
});

/** A stream the subscriber joined in the middle of: the text so far; later deltas follow live. */
export const StreamSnapshot = z.object({
  stream_id: z.string(),
  conversation_id: z.string(),
  role: MessageRole,
  text: z.string(),
  /** Index of the last delta included in `text` (-1 when none yet). */
  index: z.number().int(),
  started_at: z.string(),
});
export type StreamSnapshot = z.infer<typeof StreamSnapshot>;

export const MAX_STREAM_CHARS = MAX_MESSAGE_CHARS;

// ---------- Subscriptions ----------

/** What `subscribe` frames carry; also the input of the `topics.subscribe` operation. */
export const TopicSubscribeInput = z
  .strictObject({
    topic: z
      .string()
      .min(1)
      .max(200)
      .refine((topic) => parseTopic(topic) !== null, { message: 'Unknown topic: expected conversation:<id>, agent:<id>, session:<id> or account' }),
    since: z.number().int().nonnegative().optional(),
    epoch: z.string().min(1).max(64).optional(),
  })
  .refine((input) => (input.since === undefined) === (input.epoch === undefined), {
    message: 'since and epoch go together',
    path: ['epoch'],
  });

export const TopicUnsubscribeInput = z.strictObject({ topic: z.string().min(1).max(200) });

export const TopicUnsubscribed = z.object({ topic: z.string(), subscribed: z.literal(false) });

// ---------- Typing and presence ----------

export const TypingInput = z.strictObject({
  conversation_id: Id,
  typing: z.boolean().default(true),
});

export const PresenceInput = z.strictObject({
  topic: z.string().min(1).max(200),
});

export const PresenceMember = z.object({
  /** The end user of a client token, or the API key id. */
  subject: z.string(),
  connections: z.number().int(),
});

export const Presence = z.object({
  topic: z.string(),
  members: z.array(PresenceMember),
});
export type Presence = z.infer<typeof Presence>;

// ---------- Client tokens ----------

export const MAX_TOKEN_TTL_SECONDS = 24 * 60 * 60;

export const ClientTokenInput = z.strictObject({
  /** Topics the token may follow, e.g. `conversation:conv_…`. Its calls are limited to them too. */
  topics: z.array(z.string().min(1).max(200)).min(1).max(20),
  /** Permissions the token carries, e.g. `messages:write`; a subset of the minting key's. */
  permissions: z.array(z.string().min(1).max(64)).min(1).max(20),
  /** The end user this token stands for (shown in presence and typing events). */
  subject: z.string().min(1).max(128),
  ttl_seconds: z.number().int().min(60).max(MAX_TOKEN_TTL_SECONDS).default(3600),
});

export const ClientToken = z.object({
  token: z.string(),
  expires_at: z.string(),
  topics: z.array(z.string()),
  permissions: z.array(z.string()),
  subject: z.string(),
});

/** `message.created` after a stream ends carries the stream id; incomplete when the sender went away. */
export const StreamedMessageCreated = z.object({
  message: Message,
  stream_id: z.string().optional(),
  incomplete: z.boolean().optional(),
  reason: z.enum(['sender_disconnected', 'timeout']).optional(),
});

/** Offered in Sec-WebSocket-Protocol next to an encoding: `stategate.token.<jwt>`. */
export const TOKEN_SUBPROTOCOL_PREFIX = 'stategate.token.';
