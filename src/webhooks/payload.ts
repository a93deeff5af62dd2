import type { LoggedEvent, PreparedDelivery } from '../store/repos/webhook-deliveries.js';

/**
 * The body a receiver gets: the event's id (the same as on the WebSocket, and `webhook-id`),
 * type, time, account and the resource as data. Made once, stored with the delivery and sent as
 * the same bytes on every attempt. It is JSON.stringify output, so a receiver that parses and
 * re-serializes it (`JSON.stringify(req.body)`, as the StateSet document's handler does) gets
 * the signed bytes back.
 */
export function webhookBody(event: { id: string; type: string; ts: string; accountId: string; data: unknown }): string {
  return JSON.stringify({ id: event.id, type: event.type, created_at: event.ts, account_id: event.accountId, data: event.data });
}

/**
 * The resource an event is about: events of one resource are delivered in order; events of
 * different resources do not wait for each other. Messages follow their conversation.
 */
export function resourceKey(type: string, data: unknown): string {
  const d = (data ?? {}) as Record<string, any>;
  const family = type.split('.')[0];
  switch (family) {
    case 'order':
      return `order:${d.order?.id}`;
    case 'return':
      return `return:${d.return?.id}`;
    case 'conversation':
      return `conversation:${d.conversation?.id}`;
    case 'message':
      return `conversation:${d.message?.conversation_id ?? d.conversation_id}`;
    case 'session':
      return `session:${d.session?.id ?? d.session_id}`;
    case 'agent':
      return `agent:${d.agent?.id ?? d.agent_id}`;
    case 'key':
      return `key:${d.key?.id}`;
    default:
      return 'account';
  }
}

export function prepareDelivery(event: LoggedEvent): PreparedDelivery {
  return { body: webhookBody(event), resourceKey: resourceKey(event.type, event.data) };
}
