import { createHmac, randomBytes } from 'node:crypto';

/**
 * Signatures of a delivery. Two schemes over the same exact body bytes:
 * - `x-stateset-signature`: hex HMAC-SHA256 of the body, keyed with the secret string as given
 *   (the StateSet document's `verifyWebhookSignature` checks it unchanged);
 * - Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`): base64
 *   HMAC-SHA256 of `id.timestamp.body`, keyed with the base64 part of `whsec_…`; the timestamp
 *   gives receivers replay protection and the id de-duplication.
 * During a rotation's overlap the previous secret signs too: a second `v1,` entry in
 * `webhook-signature` and `x-stateset-signature-previous`.
 */
export const SECRET_PREFIX = 'whsec_';

export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

export function statesetSignature(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export function standardSignature(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** Every header that identifies and signs one delivery; `secrets[0]` is the current one. */
export function signedHeaders(options: { id: string; type: string; body: string; secrets: readonly string[]; now?: number }): Record<string, string> {
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000);
  const [current, previous] = options.secrets;
  if (!current) throw new Error('an endpoint always has a secret');
  return {
    'content-type': 'application/json',
    'user-agent': 'stategate-webhooks/1',
    'x-stateset-event': options.type,
    'x-stateset-event-id': options.id,
    'x-stateset-signature': statesetSignature(current, options.body),
    ...(previous ? { 'x-stateset-signature-previous': statesetSignature(previous, options.body) } : {}),
    'webhook-id': options.id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': options.secrets.map((secret) => standardSignature(secret, options.id, timestamp, options.body)).join(' '),
  };
}
