import { ApiFailure, notFound } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import { newWebhookSecret } from '../webhooks/signing.js';
import type { HandlerTable } from './context.js';

type WebhookHandlers = Pick<
  HandlerTable,
  | 'webhooks.create'
  | 'webhooks.get'
  | 'webhooks.list'
  | 'webhooks.update'
  | 'webhooks.delete'
  | 'webhooks.rotate_secret'
  | 'webhooks.test'
  | 'webhooks.attempts'
  | 'webhooks.redeliver'
>;

const webhookNotFound = (id: string) => notFound('webhook', 'webhook_id', id);

/** Webhook endpoints. Endpoint changes are configuration, not account events: none is emitted. */
export const webhookHandlers: WebhookHandlers = {
  'webhooks.create': async (ctx, input) => {
    await ctx.webhooks.checkUrl(input.url);
    const secret = newWebhookSecret();
    const endpoint = await ctx.store.webhooks.create(ctx.principal.accountId, newId('webhook'), input, secret);
    return { ...endpoint, secret };
  },

  'webhooks.get': async (ctx, { webhook_id }) => {
    const endpoint = await ctx.store.webhooks.get(ctx.principal.accountId, webhook_id);
    if (!endpoint) throw webhookNotFound(webhook_id);
    return endpoint;
  },

  'webhooks.list': (ctx, input) => ctx.store.webhooks.list(ctx.principal.accountId, input),

  'webhooks.update': async (ctx, input) => {
    if (input.url !== undefined) await ctx.webhooks.checkUrl(input.url);
    const endpoint = await ctx.store.webhooks.update(ctx.principal.accountId, input);
    if (!endpoint) throw webhookNotFound(input.webhook_id);
    return endpoint;
  },

  'webhooks.delete': async (ctx, { webhook_id }) => {
    if (!(await ctx.store.webhooks.delete(ctx.principal.accountId, webhook_id))) throw webhookNotFound(webhook_id);
    return { id: webhook_id, deleted: true as const };
  },

  'webhooks.rotate_secret': async (ctx, input) => {
    const secret = newWebhookSecret();
    const endpoint = await ctx.store.webhooks.rotate(ctx.principal.accountId, input.webhook_id, secret, input.overlap_seconds);
    if (!endpoint) throw webhookNotFound(input.webhook_id);
    return { ...endpoint, secret };
  },

  'webhooks.test': async (ctx, { webhook_id }) => {
    const attempt = await ctx.webhooks.ping(ctx.principal.accountId, webhook_id);
    if (!attempt) throw webhookNotFound(webhook_id);
    return attempt;
  },

  'webhooks.attempts': async (ctx, input) => {
    const page = await ctx.store.webhookDeliveries.attempts(ctx.principal.accountId, input);
    if (!page) throw webhookNotFound(input.webhook_id);
    return page;
  },

  'webhooks.redeliver': async (ctx, input) => {
    if (!(await ctx.store.webhooks.get(ctx.principal.accountId, input.webhook_id))) throw webhookNotFound(input.webhook_id);
    const delivery = await ctx.webhooks.redeliver(ctx.principal.accountId, input.webhook_id, input.event_id);
    if (!delivery) {
      throw new ApiFailure(
        'RESOURCE_NOT_FOUND',
        'No such event for this endpoint: it never had a delivery of it, and the event log no longer holds it',
        { event_id: input.event_id },
        'event',
      );
    }
    ctx.webhooks.poke();
    return delivery;
  },
};
