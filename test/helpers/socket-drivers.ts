import WebSocket from 'ws';
import type { SocketProtocol } from '../../protocol/index.js';
import { sleep } from './events.js';

/**
 * The gateway's socket transports seen the same way by a test: open with a credential, subscribe,
 * write, send raw frames, stop reading, and watch what arrives and how the socket closes. Raw
 * `ws` sockets (no client library): a test must see exactly what the server sends, with no
 * retry or reconnect in between.
 */
export interface ReceivedEvent {
  topic: string;
  seq: number;
  event: string;
  ephemeral: boolean;
}

/** `ok`, or the error code the gateway answered with. */
export type Answer = { ok: true } | { ok: false; code: string };

export interface SocketConnection {
  /** Numbered and ephemeral events received on every subscription, in order. */
  readonly events: ReceivedEvent[];
  /** `expires_at` of each credentials-expiring notice. */
  readonly expiring: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
  isOpen(): boolean;
  /**
   * Subscribes; resolves once events flow (graphql-ws acknowledges nothing: `probe` is called
   * until the subscription receives something) or with the refusal's code.
   */
  subscribe(topic: string, probe: () => Promise<unknown>): Promise<Answer>;
  /** messages.create in a conversation. */
  write(conversationId: string, content: string): Promise<Answer>;
  /** The cheapest metered request (graphql-ws: a document that runs no operation). */
  cheap(): Promise<Answer>;
  /** A request the protocol cannot read (`syntax`), or one nested far too deep (`deep`). */
  bad(kind: 'syntax' | 'deep'): Promise<Answer>;
  sendRaw(data: string | Buffer): void;
  /** Stops reading from the socket (the kernel's buffers fill, then the server's). */
  pause(): void;
  resume(): void;
  close(): void;
}

export interface SocketDriver {
  name: string;
  protocol: SocketProtocol;
  open(baseUrl: string, credential: string): Promise<SocketConnection>;
}

/** JSON text of arrays nested `levels` deep (too deep for JSON.stringify to make). */
export const deepJson = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

/** Shared by both drivers: the socket, its close, and pausing. */
function rawSocket(url: string, protocol: string, headers: Record<string, string>) {
  const ws = new WebSocket(url, protocol, { headers });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return {
    ws,
    closed,
    isOpen: () => ws.readyState === WebSocket.OPEN,
    pause: () => (ws as unknown as { _socket: { pause(): void } })._socket.pause(),
    resume: () => (ws as unknown as { _socket: { resume(): void } })._socket.resume(),
  };
}

/** Waits for `settled` while calling `probe` every 100 ms. */
async function probing<T>(settled: Promise<T>, probe: () => Promise<unknown>, timeoutMs = 5000): Promise<T> {
  let done = false;
  void settled.then(() => (done = true));
  const deadline = Date.now() + timeoutMs;
  while (!done) {
    if (Date.now() > deadline) throw new Error('subscription never delivered an event');
    await probe().catch(() => {});
    await Promise.race([settled, sleep(100)]);
  }
  return settled;
}

/** /v1/ws, stategate.v1.json, credentials in the query (as a browser would send a token). */
export const stategateDriver: SocketDriver = {
  name: '/v1/ws',
  protocol: 'stategate',
  async open(baseUrl, credential) {
    const raw = rawSocket(`${baseUrl.replace('http', 'ws')}/v1/ws?token=${encodeURIComponent(credential)}`, 'stategate.v1.json', {});
    const events: ReceivedEvent[] = [];
    const expiring: string[] = [];
    const pending = new Map<number, (answer: Answer) => void>();
    let nextId = 1;
    const welcomed = new Promise<void>((resolve, reject) => {
      raw.ws.once('error', reject);
      raw.closed.then((closed) => reject(new Error(`closed before welcome: ${closed.code}`)));
      raw.ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as Record<string, any>;
        if (frame.type === 'welcome') resolve();
        else if (frame.type === 'event') events.push({ topic: frame.topic, seq: frame.seq, event: frame.event, ephemeral: frame.ephemeral === true });
        else if (frame.type === 'credentials_expiring') expiring.push(frame.expires_at);
        else if (frame.type === 'result' || frame.type === 'error') {
          const answer = pending.get(frame.id);
          pending.delete(frame.id);
          answer?.(frame.type === 'result' ? { ok: true } : { ok: false, code: frame.error.code });
          // An unreadable frame's error carries no id: it answers the oldest request.
          if (frame.id === undefined) {
            const [first] = pending;
            if (first) {
              pending.delete(first[0]);
              first[1]({ ok: false, code: frame.error.code });
            }
          }
        }
      });
    });
    await welcomed;
    const request = (frame: Record<string, unknown> | string): Promise<Answer> => {
      const id = nextId++;
      const answer = new Promise<Answer>((resolve) => pending.set(id, resolve));
      raw.ws.send(typeof frame === 'string' ? frame : JSON.stringify({ ...frame, id }));
      return Promise.race([answer, raw.closed.then((closed) => ({ ok: false as const, code: `closed ${closed.code}` }))]);
    };
    return {
      events,
      expiring,
      closed: raw.closed,
      isOpen: raw.isOpen,
      subscribe: (topic) => request({ type: 'subscribe', topic }),
      write: (conversationId, content) => request({ type: 'call', method: 'messages.create', params: { conversation_id: conversationId, content } }),
      cheap: () => request({ type: 'call', method: 'agents.list', params: {} }),
      bad: (kind) =>
        kind === 'syntax'
          ? request('{"type": "call", nope')
          : request(`{"type": "call", "id": ${nextId}, "method": "agents.list", "params": {"deep": ${deepJson(100)}}}`),
      sendRaw: (data) => raw.ws.send(data),
      pause: raw.pause,
      resume: raw.resume,
      close: () => raw.ws.close(1000),
    };
  },
};

const SUBSCRIBE = 'subscription($topic: String!) { topics_subscribe(topic: $topic) { topic seq event ephemeral data } }';
const WRITE = 'mutation($c: String!, $t: String!) { messages_create(conversation_id: $c, content: $t) { id } }';

/** graphql-ws (graphql-transport-ws) at /graphql, credentials in `connection_init`. */
export const graphqlWsDriver: SocketDriver = {
  name: 'graphql-ws',
  protocol: 'graphql-ws',
  async open(baseUrl, credential) {
    const raw = rawSocket(`${baseUrl.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', {});
    const events: ReceivedEvent[] = [];
    const expiring: string[] = [];
    /** Per operation id: called with its first `next` or `error`. */
    const pending = new Map<string, (answer: Answer) => void>();
    let nextId = 1;
    const acked = new Promise<void>((resolve, reject) => {
      raw.ws.once('error', reject);
      raw.closed.then((closed) => reject(new Error(`closed before connection_ack: ${closed.code}`)));
      raw.ws.on('message', (data) => {
        const message = JSON.parse(data.toString()) as Record<string, any>;
        switch (message.type) {
          case 'connection_ack':
            resolve();
            return;
          case 'ping':
            if (message.payload?.event === 'credentials.expiring') expiring.push(message.payload.expires_at);
            if (raw.isOpen()) raw.ws.send(JSON.stringify({ type: 'pong' }));
            return;
          case 'next': {
            const value = message.payload?.data?.topics_subscribe;
            if (value) events.push({ topic: value.topic, seq: value.seq, event: value.event, ephemeral: value.ephemeral === true });
            const errors = message.payload?.errors as { extensions?: { code?: string } }[] | undefined;
            const answer = pending.get(message.id);
            pending.delete(message.id);
            answer?.(errors?.length ? { ok: false, code: errors[0]!.extensions?.code ?? 'UNKNOWN' } : { ok: true });
            return;
          }
          case 'error': {
            const answer = pending.get(message.id);
            pending.delete(message.id);
            answer?.({ ok: false, code: message.payload?.[0]?.extensions?.code ?? 'UNKNOWN' });
            return;
          }
        }
      });
    });
    raw.ws.once('open', () => raw.ws.send(JSON.stringify({ type: 'connection_init', payload: { token: credential } })));
    await acked;
    const operation = (payload: Record<string, unknown> | string): Promise<Answer> => {
      const id = String(nextId++);
      const answer = new Promise<Answer>((resolve) => pending.set(id, resolve));
      raw.ws.send(typeof payload === 'string' ? payload.replace('$ID', id) : JSON.stringify({ id, type: 'subscribe', payload }));
      return Promise.race([answer, raw.closed.then((closed) => ({ ok: false as const, code: `closed ${closed.code}` }))]);
    };
    return {
      events,
      expiring,
      closed: raw.closed,
      isOpen: raw.isOpen,
      subscribe: (topic, probe) => probing(operation({ query: SUBSCRIBE, variables: { topic } }), probe),
      write: (conversationId, content) => operation({ query: WRITE, variables: { c: conversationId, t: content } }),
      cheap: () => operation({ query: '{ __typename }' }),
      bad: (kind) =>
        kind === 'syntax'
          ? operation({ query: 'query {' })
          : operation(`{"id": "$ID", "type": "subscribe", "payload": {"query": "{ __typename }", "variables": {"deep": ${deepJson(20_000)}}}}`),
      sendRaw: (data) => raw.ws.send(data),
      pause: raw.pause,
      resume: raw.resume,
      close: () => raw.ws.close(1000),
    };
  },
};

export const socketDrivers: readonly SocketDriver[] = [stategateDriver, graphqlWsDriver];
