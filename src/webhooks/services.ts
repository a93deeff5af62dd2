import { WEBHOOK_PING_EVENT, type WebhookAttempt, type WebhookDelivery } from '../../protocol/index.js';
import type { WebhookSettings } from '../config.js';
import { ApiFailure } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import type { WebhookDeliveryRepo } from '../store/repos/webhook-deliveries.js';
import { hostOf, isPrivateAddress, resolveHost } from './address-guard.js';
import { prepareDelivery, webhookBody } from './payload.js';
import { postWebhook } from './sender.js';
import { signedHeaders } from './signing.js';

/** What webhook handlers need beyond the store: URL checks, the test ping, redelivery. */
export interface WebhookServices {
  /** Refuses (VALIDATION_ERROR) a URL whose host is or resolves to a blocked address. */
  checkUrl(url: string): Promise<void>;
  /** Sends a signed `webhook.test` now and records it; null when the endpoint is not the account's. */
  ping(accountId: string, endpointId: string): Promise<WebhookAttempt | null>;
  redeliver(accountId: string, endpointId: string, eventId: string): Promise<WebhookDelivery | null>;
  /** Wakes this node's worker (a redelivery is due now). */
  poke(): void;
}

export function webhookServices(repo: WebhookDeliveryRepo, settings: WebhookSettings, poke: () => void): WebhookServices {
  return {
    async checkUrl(text) {
      const url = new URL(text);
      if (url.username || url.password) {
        throw new ApiFailure('VALIDATION_ERROR', 'url must not carry credentials', { field: 'url' });
      }
      if (settings.allowPrivate) return;
      const host = hostOf(url);
      let addresses;
      try {
        addresses = await resolveHost(host);
      } catch {
        throw new ApiFailure('VALIDATION_ERROR', `url host ${host.slice(0, 100)} does not resolve`, { field: 'url' });
      }
      const blocked = addresses.find((entry) => isPrivateAddress(entry.address));
      if (blocked) {
        throw new ApiFailure('VALIDATION_ERROR', 'url must not point at a private, loopback or link-local address', {
          field: 'url',
          address: blocked.address,
        });
      }
    },

    async ping(accountId, endpointId) {
      const target = await repo.signingTarget(accountId, endpointId);
      if (!target) return null;
      const id = newId('event');
      const body = webhookBody({ id, type: WEBHOOK_PING_EVENT, ts: new Date().toISOString(), accountId, data: { webhook_id: endpointId } });
      const headers = signedHeaders({ id, type: WEBHOOK_PING_EVENT, body, secrets: target.secrets });
      const result = await postWebhook(target.url, body, headers, {
        timeoutMs: settings.timeoutMs,
        maxResponseBytes: settings.maxResponseBytes,
        allowPrivate: settings.allowPrivate,
      });
      const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
      return repo.insertAttempt(repo.executor, {
        id: newId('webhookAttempt'),
        endpointId,
        accountId,
        eventId: id,
        eventType: WEBHOOK_PING_EVENT,
        attempt: 1,
        statusCode: result.statusCode,
        succeeded: ok,
        error: result.error,
        latencyMs: result.latencyMs,
        responseBody: result.responseBody,
      });
    },

    redeliver: (accountId, endpointId, eventId) => repo.redeliver(accountId, endpointId, eventId, prepareDelivery, () => newId('webhookDelivery')),
    poke,
  };
}
