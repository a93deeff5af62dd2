import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

/**
 * One client connection, whatever the server: the gateway and the raw uWS and `ws` baselines
 * speak the same JSON frames over plain WebSocket; Socket.IO gets the same frame text as the
 * payload of its events. Hot loops send pre-encoded strings and read frames as Buffers.
 */
export interface ClientTarget {
  dialect: 'websocket' | 'socketio';
  /** Connection i goes to urls[i % urls.length] (several nodes of a multi-node baseline). */
  urls: string[];
  headers?: Record<string, string>;
}

export interface LinkHandlers {
  onFrame(frame: Buffer): void;
  onClose?(code: number): void;
}

export interface Link {
  send(text: string): void;
  close(): void;
  readonly isOpen: boolean;
}

export function openLink(target: ClientTarget, index: number, handlers: LinkHandlers, timeoutMs = 10_000): Promise<Link> {
  const url = target.urls[index % target.urls.length]!;
  return target.dialect === 'socketio' ? openSocketIo(url, handlers, timeoutMs) : openWebSocket(url, target.headers ?? {}, handlers, timeoutMs);
}

/** Resolves at the first frame (the server's welcome), so that the connection is fully set up. */
function openWebSocket(url: string, headers: Record<string, string>, handlers: LinkHandlers, timeoutMs: number): Promise<Link> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    let welcomed = false;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('no welcome frame in time'));
    }, timeoutMs);
    const link: Link = {
      send: (text) => socket.send(text),
      close: () => socket.terminate(),
      get isOpen() {
        return socket.readyState === WebSocket.OPEN;
      },
    };
    socket.on('message', (data: Buffer) => {
      if (welcomed) return handlers.onFrame(data);
      welcomed = true;
      clearTimeout(timer);
      resolve(link);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (!welcomed) reject(error);
    });
    socket.on('close', (code) => {
      clearTimeout(timer);
      if (!welcomed) reject(new Error(`closed with ${code} before the welcome frame`));
      else handlers.onClose?.(code);
    });
  });
}

function openSocketIo(url: string, handlers: LinkHandlers, timeoutMs: number): Promise<Link> {
  return new Promise((resolve, reject) => {
    const socket: Socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: timeoutMs });
    const deliver = (text: string) => handlers.onFrame(Buffer.from(text));
    const link: Link = {
      send: (text) => {
        // Subscriptions are Socket.IO room joins, acknowledged with the same result frame.
        if (text.startsWith('{"type":"subscribe"')) {
          const topic = (JSON.parse(text) as { topic: string }).topic;
          socket.emit('subscribe', topic, deliver);
        } else socket.emit('call', text);
      },
      close: () => socket.disconnect(),
      get isOpen() {
        return socket.connected;
      },
    };
    socket.on('reply', deliver);
    socket.on('event', deliver);
    socket.once('connect', () => resolve(link));
    socket.once('connect_error', (error) => reject(error));
    socket.on('disconnect', () => handlers.onClose?.(1006));
  });
}

/** Opens `count` links, `parallel` at a time; failures are counted, not thrown. */
export async function openMany(
  count: number,
  open: (index: number) => Promise<Link>,
  parallel = 50,
): Promise<{ links: Link[]; failures: number; firstError: string | undefined }> {
  const links: Link[] = [];
  let failures = 0;
  let firstError: string | undefined;
  for (let start = 0; start < count; start += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - start) }, (_, offset) => open(start + offset));
    for (const settled of await Promise.allSettled(batch)) {
      if (settled.status === 'fulfilled') links.push(settled.value);
      else {
        failures++;
        firstError ??= settled.reason instanceof Error ? settled.reason.message : String(settled.reason);
      }
    }
  }
  return { links, failures, firstError };
}
