import { z } from 'zod';
import { Id, Metadata, PageInput, Timestamp } from './common.js';
import { EPHEMERAL_EVENTS, EVENT_NAMES, STREAM_EVENTS } from './events.js';
import { listParams, type FieldSpecs } from './query.js';

/**
 * Webhook endpoints and their delivery history. Every numbered event of the catalogue except the
 * token-by-token stream events can be subscribed to; `*` means all of them.
 */
export const WEBHOOK_EVENT_NAMES = EVENT_NAMES.filter((name) => !EPHEMERAL_EVENTS.has(name) && !STREAM_EVENTS.has(name)) as [string, ...string[]];
export const WebhookEventName = z.enum([...WEBHOOK_EVENT_NAMES, '*'] as [string, ...string[]]);

/** The type of the signed ping `webhooks.test` sends; never an event of the log. */
export const WEBHOOK_PING_EVENT = 'webhook.test';

export const MAX_WEBHOOK_URL_LENGTH = 2048;
/** Longest overlap during which a rotated-out secret still signs deliveries. */
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 86_400;

/** Shape only; whether the host is allowed (no private addresses) is checked by the server after DNS. */
export const WebhookUrl = z
  .string()
  .max(MAX_WEBHOOK_URL_LENGTH, `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`)
  .refine((text) => {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'url must be an absolute http:// or https:// URL');

const Events = z
  .array(WebhookEventName)
  .min(1)
  .max(WEBHOOK_EVENT_NAMES.length + 1)
  .transform((events) => [...new Set(events)]);

export const WebhookEndpoint = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  metadata: Metadata,
  enabled: z.boolean(),
  /** Why the gateway disabled it (410 Gone, failing for days); null when enabled or disabled by hand. */
  disabled_reason: z.string().nullable(),
  /** The last characters of the current secret, to tell secrets apart. */
  secret_hint: z.string(),
  /** Until when the previous secret still signs deliveries after a rotation; null when none does. */
  previous_secret_expires_at: Timestamp.nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type WebhookEndpoint = z.infer<typeof WebhookEndpoint>;

/** Creation and rotation: the only answers that carry the secret. */
export const WebhookEndpointWithSecret = WebhookEndpoint.extend({ secret: z.string() });
export type WebhookEndpointWithSecret = z.infer<typeof WebhookEndpointWithSecret>;

export const WebhookCreateInput = z.strictObject({
  url: WebhookUrl,
  events: Events,
  metadata: Metadata.optional(),
  enabled: z.boolean().default(true),
});
export type WebhookCreateInput = z.infer<typeof WebhookCreateInput>;

export const WebhookUpdateInput = z.strictObject({
  webhook_id: Id,
  url: WebhookUrl.optional(),
  events: Events.optional(),
  metadata: Metadata.optional(),
  /** Re-enabling clears disabled_reason; delivery resumes with events from then on. */
  enabled: z.boolean().optional(),
});
export type WebhookUpdateInput = z.infer<typeof WebhookUpdateInput>;

export const WEBHOOK_LIST_FIELDS = {
  url: { kind: 'text' },
  created_at: { kind: 'timestamp', sortable: true },
  updated_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const WebhookListInput = z.strictObject({ ...listParams(WEBHOOK_LIST_FIELDS, '-created_at') });
export type WebhookListInput = z.infer<typeof WebhookListInput>;

export const WebhookRotateInput = z.strictObject({
  webhook_id: Id,
  /** How long the old secret keeps signing deliveries beside the new one (default one day). */
  overlap_seconds: z.number().int().min(0).max(MAX_ROTATION_OVERLAP_SECONDS).default(86_400),
});

export const WebhookAttempt = z.object({
  id: z.string(),
  webhook_id: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  /** 1 for the first try of a delivery; counts on across a manual redelivery. */
  attempt: z.number().int(),
  /** The receiver's HTTP status; null when none came (refused, timed out, blocked address). */
  status_code: z.number().int().nullable(),
  succeeded: z.boolean(),
  /** Why no status came, or a short description of the failure. */
  error: z.string().nullable(),
  latency_ms: z.number().int(),
  /** The first bytes of the response body. */
  response_body: z.string().nullable(),
  created_at: Timestamp,
});
export type WebhookAttempt = z.infer<typeof WebhookAttempt>;

export const WebhookAttemptListInput = z.strictObject({
  webhook_id: Id,
  ...PageInput,
  /** Only the attempts to deliver this event. */
  event_id: Id.optional(),
});
export type WebhookAttemptListInput = z.infer<typeof WebhookAttemptListInput>;

export const DeliveryStatus = z.enum(['pending', 'succeeded', 'failed']);

export const WebhookDelivery = z.object({
  id: z.string(),
  webhook_id: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  status: DeliveryStatus,
  attempts: z.number().int(),
  next_attempt_at: Timestamp.nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const WebhookRedeliverInput = z.strictObject({ webhook_id: Id, event_id: Id });
