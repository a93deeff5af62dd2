import type { OperationName, OutputOf, ParsedInputOf } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import type { Agent } from '../../protocol/index.js';
import type { ClientTokens } from '../auth/client-tokens.js';
import type { ReadCache } from '../cache/read-cache.js';
import type { PresenceRegistry } from '../realtime/presence.js';
import type { EventPublisher } from '../realtime/publisher.js';
import type { StreamRegistry } from '../realtime/streams.js';
import type { Store } from '../store/store.js';

/** The node's memory of credentials: a revocation must stop a key at once, not when a cache expires. */
export interface CredentialRegistry {
  isRevoked(keyId: string): boolean;
  revoke(keyId: string, keyHash: string): void;
}

/** What every handler receives; built once per request or WebSocket call, whatever the transport. */
export interface OperationContext {
  principal: Principal;
  requestId: string;
  store: Store;
  events: EventPublisher;
  credentials: CredentialRegistry;
  realtime: RealtimeServices;
  caches: { agents: ReadCache<Agent> };
  /** The WebSocket connection a call came over; undefined for REST. Opaque to handlers. */
  connectionId: string | undefined;
  log: Logger;
}

export interface RealtimeServices {
  streams: StreamRegistry;
  presence: PresenceRegistry;
  tokens: ClientTokens;
  /** Checks a principal may follow a topic (not found otherwise); returns the stream key. */
  authorizeTopic(principal: Principal, topic: string): Promise<string>;
}

export type Handler<N extends OperationName> = (ctx: OperationContext, input: ParsedInputOf<N>) => Promise<OutputOf<N>>;

export type HandlerTable = { [N in OperationName]: Handler<N> };
