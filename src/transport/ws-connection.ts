import { jsonText, type Codec, type Encoding, type FrameId, type ServerFrame } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { ApiFailure } from '../kernel/errors.js';
import type { Subscriber } from './core.js';
import type { WebSocket } from './uws.js';

/** Per-connection state, kept as uWS user data. */
export interface Connection {
  id: string;
  principal: Principal;
  encoding: Encoding;
  codec: Codec;
  /** What the realtime layer delivers to (set once the socket is open). */
  subscriber: Subscriber | null;
  /** Inbound frame budget (token bucket). */
  budget: { tokens: number; refilledAt: number };
  /** Closes the connection when its client token expires. */
  expiry: NodeJS.Timeout | null;
  closed: boolean;
}

export type GatewayWebSocket = WebSocket<Connection>;

/**
 * The connection, not the socket, says whether it is closed: a closed uWS socket must not be touched.
 * `corked`: called from within uWS's message handler, where uWS has corked the socket already
 * (sends there are batched anyway); elsewhere the send is corked here.
 */
export function send(ws: GatewayWebSocket, connection: Connection, frame: ServerFrame, corked = false): void {
  if (connection.closed) return;
  const bytes = connection.codec.encode(frame);
  if (corked) ws.send(bytes, connection.codec.binary);
  else ws.cork(() => ws.send(bytes, connection.codec.binary));
}

/** A call's result: in JSON the envelope is written around the data, without an object for the frame. */
export function sendResult(ws: GatewayWebSocket, connection: Connection, id: FrameId, data: unknown, corked = false): void {
  if (connection.closed) return;
  if (connection.codec.binary || data === undefined) {
    send(ws, connection, { type: 'result', id, data }, corked);
    return;
  }
  // The same text JSON.stringify({ type, id, data }) gives.
  const text = `{"type":"result","id":${JSON.stringify(id)},"data":${jsonText(data)}}`;
  if (corked) ws.send(text, false);
  else ws.cork(() => ws.send(text, false));
}

export function sendError(ws: GatewayWebSocket, connection: Connection, id: FrameId | undefined, failure: ApiFailure): void {
  send(ws, connection, { type: 'error', ...(id === undefined ? {} : { id }), error: failure.toBody() });
}

/** Takes one inbound frame from the connection's budget; false when it is spent. */
export function takeFrameBudget(connection: Connection, perSecond: number): boolean {
  const now = performance.now();
  const budget = connection.budget;
  budget.tokens = Math.min(perSecond * 2, budget.tokens + ((now - budget.refilledAt) / 1000) * perSecond);
  budget.refilledAt = now;
  if (budget.tokens < 1) return false;
  budget.tokens -= 1;
  return true;
}
