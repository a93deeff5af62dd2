import { randomFillSync } from 'node:crypto';
import { contracts, ID_LENGTH, ID_PREFIX, REST_OPERATION_NAMES, STATEBASE_PREFIX, statebaseView } from '../protocol/index.js';
import { looksLikeToken, type ClientTokens } from './auth/client-tokens.js';
import type { KeyResolver } from './auth/key-resolver.js';
import type { Principal } from './auth/keys.js';
import type { Bus } from './bus/index.js';
import { ApiFailure } from './kernel/errors.js';
import type { CallOrigin, Operations, Outcome } from './pipeline/operations.js';
import { resolveApiVersion } from './pipeline/versioning.js';
import type { GraphqlObservation, Metrics } from './metrics.js';
import type { Delivery, Subscriber } from './realtime/delivery.js';
import type { BroadcastSink, Feeds } from './realtime/feeds.js';
import type { StreamRegistry } from './realtime/streams.js';
import type { Store } from './store/store.js';
import type { GatewayCore, RouteSpec } from './transport/core.js';
import { uws } from './transport/uws.js';
import type { WorkerLink } from './workers/supervisor-link.js';

export interface CoreDeps {
  operations: Operations;
  keys: KeyResolver;
  tokens: ClientTokens;
  streams: StreamRegistry;
  delivery: Delivery;
  feeds: Feeds;
  store: Store;
  bus: Bus;
  metrics: Metrics;
  /** Set when this process is one worker of several: /metrics then describes them all. */
  worker?: WorkerLink | null;
}

/** The gateway as the transports see it (GatewayCore): authentication, operations, delivery hooks, health. */
export class Core implements GatewayCore {
  readonly routes: readonly RouteSpec[] = [
    ...REST_OPERATION_NAMES.map((name) => {
      const { method, path, status } = contracts[name].http;
      return { name, method, path, status: status ?? 200 };
    }),
    // The same operations in the StateBase client's wire format, under its prefix.
    ...statebaseView.map(({ operation, status, present }) => {
      const http = contracts[operation].http;
      return { name: operation, method: http.method, path: STATEBASE_PREFIX + http.path, status: status ?? http.status ?? 200, present };
    }),
  ];
  /** Set while the node drains: readiness says so, so that load balancers stop sending. */
  draining = false;
  readonly worker: { index: number; pid: number } | null;

  constructor(private readonly deps: CoreDeps) {
    this.worker = deps.worker ? { index: deps.worker.index, pid: deps.worker.pid } : null;
  }

  async authenticate(credential: string | undefined): Promise<Principal> {
    if (credential && looksLikeToken(credential)) {
      const principal = await this.deps.tokens.verify(credential);
      if (!principal) throw new ApiFailure('INVALID_API_KEY', 'Client token is invalid or expired', { suggestion: 'Mint a new token with tokens.create' });
      return principal;
    }
    const principal = credential ? await this.deps.keys.resolve(credential) : null;
    if (!principal) {
      throw new ApiFailure('INVALID_API_KEY', credential ? 'API key is invalid or revoked' : 'API key is missing', {
        suggestion: 'Send the key as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
      });
    }
    return principal;
  }

  chargeUnit(principal: Principal): Promise<ApiFailure | null> {
    return this.deps.operations.chargeUnit(principal);
  }

  execute(name: string, input: unknown, origin: CallOrigin): Outcome | Promise<Outcome> {
    return this.deps.operations.execute(name, input, origin);
  }

  credentialsRenewed(subscriber: Subscriber, principal: Principal): Promise<{ topic: string; failure: ApiFailure }[]> {
    return this.deps.delivery.renew(subscriber, principal);
  }

  connectionClosed(connectionId: string, subscriber: Subscriber): void {
    this.deps.delivery.closed(subscriber);
    this.deps.streams.connectionClosed(connectionId);
  }

  useBroadcast(sink: BroadcastSink): void {
    this.deps.feeds.useBroadcast(sink);
  }

  resolveApiVersion(requested: string | undefined): string {
    return resolveApiVersion(requested);
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const busHealth = this.deps.bus.health();
    const checks: Record<string, string> = {
      store: 'ok',
      bus: busHealth.ok ? this.deps.bus.kind : busHealth.detail,
      uws: uws.native ? 'native' : 'fallback',
    };
    if (this.draining) return { ready: false, checks: { ...checks, state: 'draining' } };
    try {
      await this.deps.store.ping();
    } catch {
      return { ready: false, checks: { ...checks, store: 'unreachable' } };
    }
    return { ready: busHealth.ok, checks };
  }

  metrics(): Promise<string> {
    return this.deps.worker ? this.deps.worker.gatewayMetrics() : this.deps.metrics.text();
  }

  observeGraphql(observation: GraphqlObservation): void {
    this.deps.metrics.observeGraphql(observation);
  }

  newRequestId(): string {
    return `${ID_PREFIX.request}_${randomBase62(ID_LENGTH.request)}`;
  }

  newConnectionId(): string {
    return `${ID_PREFIX.connection}_${randomBase62(ID_LENGTH.connection)}`;
  }
}

/**
 * The ids of `newId` (same alphabet, same lengths) for the two made on every request and
 * connection, drawn from a large pool of random bytes: nanoid fetches a few bytes through Web
 * Crypto per id, which showed in a REST read's profile. Bytes of 62 and 63 are skipped, so every
 * character is equally likely.
 */
const BASE62 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomBase62(length: number): string {
  let id = '';
  while (id.length < length) {
    if (poolOffset >= pool.length) {
      pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
      poolOffset = 0;
    }
    const value = pool[poolOffset++]! & 63;
    if (value < 62) id += BASE62[value];
  }
  return id;
}
