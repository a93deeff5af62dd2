import { jsonText, type Codec, type Encoding, type FrameId, type ServerFrame } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { ApiFailure } from '../kernel/errors.js';
import type { Subscriber } from './core.js';
import type { PolicedConnection } from './socket/policy.js';
import type { WebSocket } from './uws.js';

/** Per-connection state, kept as uWS user data: what the connection policy keeps, and the protocol's own. */
export interface Connection extends PolicedConnection {
  principal: Principal;
  encoding: Encoding;
  codec: Codec;
  /** What the realtime layer delivers to (set once the socket is open). */
  subscriber: Subscriber | null;
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
