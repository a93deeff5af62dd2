import { codecs, type Encoding, type EventFrame } from '../../protocol/index.js';
import type { BroadcastSink, Subscriber } from './core.js';
import { toEventFrame } from './socket/event-frame.js';
import type { TemplatedApp } from './uws.js';
import { send, type GatewayWebSocket } from './ws-connection.js';

const ENCODINGS = Object.keys(codecs) as Encoding[];

/** The uWS topic that carries a topic key's events in one encoding. */
export function channelOf(key: string, encoding: Encoding): string {
  return `${key}#${encoding}`;
}

/**
 * uWS native topics as the node's broadcast sink: each event is encoded once per encoding in
 * use, and uWS copies the bytes to every socket on the topic in C++.
 */
export function uwsBroadcast(app: TemplatedApp): BroadcastSink {
  return {
    publish(key, event) {
      let frame: EventFrame | null = null;
      for (const encoding of ENCODINGS) {
        const channel = channelOf(key, encoding);
        if (app.numSubscribers(channel) === 0) continue;
        frame ??= toEventFrame(event);
        const codec = codecs[encoding];
        app.publish(channel, codec.encode(frame), codec.binary);
      }
    },
  };
}

/**
 * A WebSocket connection as a subscriber: direct sends while it catches up, then the native topic.
 * `resume`: closes the socket so that its client resumes (the connection policy picks the code).
 */
export function socketSubscriber(ws: GatewayWebSocket, resume: () => void): Subscriber {
  const connection = ws.getUserData();
  return {
    id: connection.id,
    get closed() {
      return connection.closed;
    },
    send: (event) => send(ws, connection, toEventFrame(event)),
    shared: {
      join: (key) => {
        if (!connection.closed) ws.subscribe(channelOf(key, connection.encoding));
      },
      leave: (key) => {
        if (!connection.closed) ws.unsubscribe(channelOf(key, connection.encoding));
      },
    },
    resume,
  };
}
