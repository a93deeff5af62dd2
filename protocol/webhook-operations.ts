import { Deleted, pageOf } from './common.js';
import { byId, contract } from './contract.js';
import {
  WebhookAttempt,
  WebhookAttemptListInput,
  WebhookCreateInput,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookListInput,
  WebhookRedeliverInput,
  WebhookRotateInput,
  WebhookUpdateInput,
} from './webhooks.js';

const byWebhook = byId('webhook_id');

/** Webhook endpoints (`client.webhooks.create({ url, events, metadata })`), their attempts and tests. */
export const webhookContracts = {
  'webhooks.create': contract({
    name: 'webhooks.create',
    summary: 'Create a webhook endpoint; its signing secret is in this answer only',
    http: { method: 'POST', path: '/v1/webhooks', status: 201 },
    permission: 'webhooks:write',
    input: WebhookCreateInput,
    output: WebhookEndpointWithSecret,
  }),
  'webhooks.get': contract({
    name: 'webhooks.get',
    summary: 'Get a webhook endpoint (never its secret)',
    http: { method: 'GET', path: '/v1/webhooks/{webhook_id}' },
    permission: 'webhooks:read',
    input: byWebhook,
    output: WebhookEndpoint,
  }),
  'webhooks.list': contract({
    name: 'webhooks.list',
    summary: 'List webhook endpoints, newest first',
    http: { method: 'GET', path: '/v1/webhooks' },
    permission: 'webhooks:read',
    input: WebhookListInput,
    output: pageOf(WebhookEndpoint),
  }),
  'webhooks.update': contract({
    name: 'webhooks.update',
    summary: 'Change url, events, metadata or enabled',
    http: { method: 'PATCH', path: '/v1/webhooks/{webhook_id}' },
    permission: 'webhooks:write',
    input: WebhookUpdateInput,
    output: WebhookEndpoint,
  }),
  'webhooks.delete': contract({
    name: 'webhooks.delete',
    summary: 'Delete a webhook endpoint with its pending deliveries and history',
    http: { method: 'DELETE', path: '/v1/webhooks/{webhook_id}' },
    permission: 'webhooks:write',
    input: byWebhook,
    output: Deleted,
  }),
  'webhooks.rotate_secret': contract({
    name: 'webhooks.rotate_secret',
    summary: 'Replace the signing secret; the old one keeps signing beside it for overlap_seconds',
    http: { method: 'POST', path: '/v1/webhooks/{webhook_id}/rotate-secret' },
    permission: 'webhooks:write',
    input: WebhookRotateInput,
    output: WebhookEndpointWithSecret,
  }),
  'webhooks.test': contract({
    name: 'webhooks.test',
    summary: 'Send a signed webhook.test ping now and answer with the recorded attempt',
    http: { method: 'POST', path: '/v1/webhooks/{webhook_id}/test' },
    permission: 'webhooks:write',
    input: byWebhook,
    output: WebhookAttempt,
  }),
  'webhooks.attempts': contract({
    name: 'webhooks.attempts',
    summary: "An endpoint's delivery attempts, newest first (filter by event_id for one event's)",
    http: { method: 'GET', path: '/v1/webhooks/{webhook_id}/attempts' },
    permission: 'webhooks:read',
    input: WebhookAttemptListInput,
    output: pageOf(WebhookAttempt),
  }),
  'webhooks.redeliver': contract({
    name: 'webhooks.redeliver',
    summary: 'Deliver an event to an endpoint again, from the first attempt of a fresh retry schedule',
    http: { method: 'POST', path: '/v1/webhooks/{webhook_id}/redeliver' },
    permission: 'webhooks:write',
    input: WebhookRedeliverInput,
    output: WebhookDelivery,
  }),
} as const;
