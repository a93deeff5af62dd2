import type { OperationName, OutputOf, ParsedInputOf } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import type { Agent } from '../../protocol/index.js';
import type { ClientTokens } from '../auth/client-tokens.js';
import type { CredentialRegistry } from '../auth/revocations.js';
import type { ReadCache } from '../cache/read-cache.js';
import type { PresenceRegistry } from '../realtime/presence.js';
import type { Delivery, Subscriber } from '../realtime/delivery.js';
import type { Emit, Events } from '../realtime/events.js';
import type { StoreTx } from '../store/store.js';
import type { StreamRegistry } from '../realtime/streams.js';
import type { Store } from '../store/store.js';
import type { WebhookServices } from '../webhooks/services.js';

export type { CredentialRegistry };

/** What every handler receives; built once per request or WebSocket call, whatever the transport. */
export interface OperationContext {
  principal: Principal;
  requestId: string;
  store: Store;
  events: Events;
  /** Runs `fn` in one transaction; the events it emits commit with the change and are announced after. */
  write<T>(fn: (tx: StoreTx, emit: Emit) => Promise<T>): Promise<T>;
  /** Where a connection that receives events takes them; undefined over REST. */
  subscriber: Subscriber | undefined;
  /**
   * Runs `run` right after the reply has reached the client, synchronously (a subscribe's replay
   * must follow its result), or `abandon` when no reply is sent after all.
   */
  afterReply(run: () => void, abandon: () => void): void;
  credentials: CredentialRegistry;
  realtime: RealtimeServices;
  webhooks: WebhookServices;
  caches: { agents: ReadCache<Agent> };
  /** The WebSocket connection a call came over; undefined for REST. Opaque to handlers. */
  connectionId: string | undefined;
  log: Logger;
}

export interface RealtimeServices {
  streams: StreamRegistry;
  presence: PresenceRegistry;
  tokens: ClientTokens;
  delivery: Delivery;
  /** Checks a principal may follow a topic (not found otherwise); returns the stream key. */
  authorizeTopic(principal: Principal, topic: string): Promise<string>;
}

/** A handler may answer synchronously (a cached read): the pipeline then answers without a promise. */
export type Handler<N extends OperationName> = (ctx: OperationContext, input: ParsedInputOf<N>) => Promise<OutputOf<N>> | OutputOf<N>;

export type HandlerTable = { [N in OperationName]: Handler<N> };
