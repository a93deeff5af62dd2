import type { HttpMethod, StreamSnapshot, Topic } from '../../protocol/index.js';
import type { Principal } from '../auth/keys.js';
import type { BusEvent, HistoryResult, TopicPosition } from '../bus/index.js';
import type { CallOrigin, Outcome } from '../core/operations.js';

/**
 * What the transports may ask of the gateway. Transports see this interface and nothing of the
 * store, the bus or the handlers behind it.
 */
export interface GatewayCore {
  routes: readonly RouteSpec[];
  /** An API key or a client token; throws ApiFailure(INVALID_API_KEY) when missing, unknown, expired or revoked. */
  authenticate(credential: string | undefined): Promise<Principal>;
  /** A WebSocket connection closed: whatever it had started (streams) is wound up. */
  connectionClosed(connectionId: string): void;
  /** A connection's principal started or stopped following a topic. */
  presence(principal: Principal, topic: string, joined: boolean): void;
  /** Replies being streamed on a topic right now, for a subscriber joining mid-stream (after its position is read). */
  streamSnapshots(principal: Principal, topic: string, key: string): Promise<StreamSnapshot[]>;
  /** Runs an operation; resolves to its data or rejects with an ApiFailure. */
  invoke(name: string, input: unknown, origin: CallOrigin): Promise<unknown>;
  /** Runs an operation and reports everything a response needs (rate-limit state, replays); never rejects. */
  execute(name: string, input: unknown, origin: CallOrigin): Promise<Outcome>;
  /** The API version a client asked for, or ApiFailure(VALIDATION_ERROR) naming the supported ones. */
  resolveApiVersion(requested: string | undefined): string;
  /** Checks that the principal may follow the topic; returns the node-wide stream key. */
  authorizeTopic(principal: Principal, topic: string): Promise<string>;
  /** Starts receiving a stream's events on this node; resolves, once active, to the function that stops it. */
  follow(key: string, listener: (event: BusEvent) => void): Promise<() => void>;
  position(key: string): Promise<TopicPosition>;
  history(key: string, since: number, epoch: string): Promise<HistoryResult>;
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  /** Prometheus text exposition of this node's metrics. */
  metrics(): Promise<string>;
  newRequestId(): string;
  newConnectionId(): string;
}

export interface RouteSpec {
  name: string;
  method: HttpMethod;
  path: string;
  status: number;
}

export type { CallOrigin, Outcome, Topic };
