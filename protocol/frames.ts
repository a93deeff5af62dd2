import { z } from 'zod';
import { ErrorBody } from './envelope.js';
import { StreamSnapshot } from './realtime.js';

/**
 * WebSocket frames, one schema per frame, joined by `type`. The same objects travel as JSON text
 * frames or MessagePack binary frames (see codec.ts).
 */
export const PROTOCOL_VERSION = 'stategate.v1';

/** Request id chosen by the client; replies carry it back. */
export const FrameId = z.union([z.string().min(1).max(64), z.number().int().nonnegative()]);
export type FrameId = z.infer<typeof FrameId>;

// ---------- client -> server ----------

/** client -> server: run an operation; answered by `result` or `error` with the same id. */
export const CallFrame = z.strictObject({
  type: z.literal('call'),
  id: FrameId,
  method: z.string().min(1).max(100),
  params: z.record(z.string(), z.unknown()).optional(),
  /** As REST's Idempotency-Key header: a repeat of a create with this key is answered, not run again. */
  idempotency_key: z.string().min(1).max(255).optional(),
});

/**
 * client -> server: receive the events of a topic; answered by `result` (data: SubscribeResult)
 * or `error`. With `since` (and the `epoch` it belongs to) the server first replays every event
 * after `since`, exactly once and in order, then continues live with no gap at the seam.
 */
export const SubscribeFrame = z
  .strictObject({
    type: z.literal('subscribe'),
    id: FrameId,
    topic: z.string().min(1).max(200),
    since: z.number().int().nonnegative().optional(),
    epoch: z.string().min(1).max(64).optional(),
  })
  .refine((frame) => (frame.since === undefined) === (frame.epoch === undefined), {
    message: 'since and epoch go together',
    path: ['epoch'],
  });

/** client -> server: stop receiving a topic; answered by `result` or `error`. */
export const UnsubscribeFrame = z.strictObject({
  type: z.literal('unsubscribe'),
  id: FrameId,
  topic: z.string().min(1).max(200),
});

/** client -> server: liveness check; answered by `pong` with the same id. */
export const PingFrame = z.strictObject({
  type: z.literal('ping'),
  id: FrameId.optional(),
});

export const ClientFrame = z.discriminatedUnion('type', [CallFrame, SubscribeFrame, UnsubscribeFrame, PingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export const CLIENT_FRAME_TYPES = ['call', 'subscribe', 'unsubscribe', 'ping'] as const;

// ---------- server -> client ----------

export const Limits = z.object({
  max_frame_bytes: z.number(),
  max_subscriptions: z.number(),
  max_frames_per_second: z.number(),
});

/** server -> client: first frame on every connection. */
export const WelcomeFrame = z.object({
  type: z.literal('welcome'),
  connection_id: z.string(),
  protocol: z.literal(PROTOCOL_VERSION),
  encoding: z.enum(['json', 'msgpack']),
  /** The server pings at this interval; a connection silent for twice as long is closed. */
  heartbeat_ms: z.number(),
  limits: Limits,
});

/** server -> client: the successful outcome of a `call`, `subscribe` or `unsubscribe`. */
export const ResultFrame = z.object({
  type: z.literal('result'),
  id: FrameId,
  data: z.unknown(),
});

/** server -> client: a failed request (with its id), or a frame that could not be read (no id). */
export const ErrorFrame = z.object({
  type: z.literal('error'),
  id: FrameId.optional(),
  error: ErrorBody,
});

/** server -> client: an event on a subscribed topic. */
export const EventFrame = z.object({
  type: z.literal('event'),
  topic: z.string(),
  /** Position on the topic: increases by one per event. 0 on ephemeral events, which have none. */
  seq: z.number().int(),
  /** Changes when the topic's history is lost; a `seq` is only comparable within one epoch. */
  epoch: z.string(),
  event: z.string(),
  data: z.unknown(),
  /** Time of the change the event announces, ISO 8601. */
  ts: z.string(),
  /** The event's id (numbered events): the same on every topic it went to, and in webhooks. */
  id: z.string().optional(),
  /** Live-only signal (typing, presence): not numbered, not replayed. */
  ephemeral: z.literal(true).optional(),
});

/** server -> client: reply to `ping`. */
export const PongFrame = z.object({
  type: z.literal('pong'),
  id: FrameId.optional(),
});

/**
 * server -> client: the connection's credentials (a client token) expire at `expires_at`. Hand
 * over a fresh token with a `connection.refresh` call before then to keep the connection and its
 * subscriptions; otherwise it is closed with 4001 at that time.
 */
export const CredentialsExpiringFrame = z.object({
  type: z.literal('credentials_expiring'),
  expires_at: z.string(),
});

/** server -> client: the server ended a subscription (the refreshed credentials no longer cover it). */
export const UnsubscribedFrame = z.object({
  type: z.literal('unsubscribed'),
  topic: z.string(),
  error: ErrorBody,
});

export const ServerFrame = z.discriminatedUnion('type', [
  WelcomeFrame,
  ResultFrame,
  ErrorFrame,
  EventFrame,
  PongFrame,
  CredentialsExpiringFrame,
  UnsubscribedFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
export type WelcomeFrame = z.infer<typeof WelcomeFrame>;
export type EventFrame = z.infer<typeof EventFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type CredentialsExpiringFrame = z.infer<typeof CredentialsExpiringFrame>;
export type UnsubscribedFrame = z.infer<typeof UnsubscribedFrame>;

/** The `connection.refresh` call (CONNECTION_REFRESH_METHOD, connection.ts): its params and result. */
export const ConnectionRefreshParams = z.strictObject({ token: z.string().min(1).max(8192) });
export const ConnectionRefreshResult = z.object({
  subject: z.string(),
  /** When the new credentials expire (null: an API key, which does not). */
  expires_at: z.string().nullable(),
  /** Subscriptions ended because the new credentials do not cover them. */
  ended: z.array(z.string()),
});
export type ConnectionRefreshResult = z.infer<typeof ConnectionRefreshResult>;

export const SubscribeResult = z.object({
  topic: z.string(),
  subscribed: z.boolean(),
  /**
   * Without `since`: the last seq published before the subscription started (0 when none); live
   * events follow from seq + 1. With `since`: the position the replay reaches.
   */
  seq: z.number().int(),
  epoch: z.string(),
  /**
   * Only with `since`. True: the events after `since` follow this result, then live ones.
   * False: history no longer covers `since` (or the epoch changed); nothing is replayed, refetch
   * the resource over REST, then continue from `seq`.
   */
  recovered: z.boolean().optional(),
  /** How many events are replayed after this result. */
  replayed: z.number().int().optional(),
  /**
   * Replies being streamed on the topic right now, with their text so far. Apply a later
   * `message.delta` only when its `index` is greater than the snapshot's.
   */
  streams: z.array(StreamSnapshot).optional(),
});
export type SubscribeResult = z.infer<typeof SubscribeResult>;
