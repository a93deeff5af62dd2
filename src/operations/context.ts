import type { OperationName, OutputOf, ParsedInputOf } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import type { EventPublisher } from '../realtime/publisher.js';
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
  log: Logger;
}

export type Handler<N extends OperationName> = (ctx: OperationContext, input: ParsedInputOf<N>) => Promise<OutputOf<N>>;

export type HandlerTable = { [N in OperationName]: Handler<N> };
