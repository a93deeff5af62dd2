import type { HttpMethod } from '../../protocol/index.js';
import type { GraphqlObservation } from '../metrics.js';
import type { Principal } from '../auth/keys.js';
import type { ApiFailure } from '../kernel/errors.js';
import type { CallOrigin, Outcome } from '../pipeline/operations.js';
import type { BroadcastSink } from '../realtime/feeds.js';
import type { Subscriber } from '../realtime/delivery.js';

/**
 * What the transports may ask of the gateway. Transports see this interface and nothing of the
 * store, the bus or the handlers behind it: they translate frames and requests into operations
 * (subscribing included) and events into frames.
 */
export interface GatewayCore {
  routes: readonly RouteSpec[];
  /** An API key or a client token; throws ApiFailure(INVALID_API_KEY) when missing, unknown, expired or revoked. */
  authenticate(credential: string | undefined): Promise<Principal>;
  /**
   * Charges one unit of the principal's rate limit for a request that is not one operation (a
   * GraphQL document): null when admitted, else the refusal (RATE_LIMITED with retry_after). The
   * request's first operation then runs with `origin.prepaid`, on that unit.
   */
  chargeUnit(principal: Principal): Promise<ApiFailure | null>;
  /** Runs an operation and reports everything a response needs (rate-limit state, replays); never rejects. */
  /** Synchronous when nothing had to wait (a cached read): transports answer at once then. */
  execute(name: string, input: unknown, origin: CallOrigin): Outcome | Promise<Outcome>;
  /**
   * A connection's subscriber acts with renewed credentials (same account and subject): its topics
   * are authorized again; those no longer covered end, returned with the reason.
   */
  credentialsRenewed(subscriber: Subscriber, principal: Principal): Promise<{ topic: string; failure: ApiFailure }[]>;
  /** A connection closed: what it had started (streams) is wound up, its subscriptions released. */
  connectionClosed(connectionId: string, subscriber: Subscriber): void;
  /** The transport's native fan-out, fed once per event per node. */
  useBroadcast(sink: BroadcastSink): void;
  /** The API version a client asked for, or ApiFailure(VALIDATION_ERROR) naming the supported ones. */
  resolveApiVersion(requested: string | undefined): string;
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  /** Which of the gateway's worker processes this is (health answers say it), or null when it runs alone. */
  readonly worker: { index: number; pid: number } | null;
  /** Prometheus text exposition of this node's metrics (with workers: all of them); rejects when they cannot be gathered. */
  metrics(): Promise<string>;
  /** Counts one GraphQL operation by name, type and outcome (ok or its first error code). */
  observeGraphql(observation: GraphqlObservation): void;
  newRequestId(): string;
  newConnectionId(): string;
}

export interface RouteSpec {
  name: string;
  method: HttpMethod;
  path: string;
  status: number;
  /**
   * Set for routes of a client's own wire format (`/statebase/…`): the answer is this function of
   * the operation's output, sent without the envelope (status 204: no body), and errors are sent
   * as `{error, detail}` without the envelope.
   */
  present?: (data: unknown) => unknown;
}

export type { BroadcastSink, CallOrigin, GraphqlObservation, Outcome, Subscriber };
