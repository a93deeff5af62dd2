import { API_VERSION, contracts, parseInput, textProblem, type OperationContract, type OperationName } from '../../protocol/index.js';
import { hasPermission, type Principal } from '../auth/keys.js';
import { quotaFor, type RateDecision, type RateLimiter } from '../limits/index.js';
import type { Logger } from '../logger.js';
import type { CredentialRegistry, HandlerTable, OperationContext, RealtimeServices } from '../operations/index.js';
import type { Subscriber } from '../realtime/delivery.js';
import type { Events } from '../realtime/events.js';
import type { IdempotencyStore } from '../store/repos/idempotency.js';
import type { Store } from '../store/store.js';
import { ApiFailure, RateLimitedFailure, toFailure, validationFailure } from '../kernel/errors.js';
import { runIdempotently } from './idempotent.js';
import { resolveApiVersion } from './versioning.js';

/** The transports that run operations, named for metrics and logs. */
export type TransportName = 'rest' | 'ws' | 'graphql';

export interface CallOrigin {
  principal: Principal;
  requestId: string;
  transport: TransportName;
  /** Set for calls over a WebSocket. */
  connectionId?: string;
  /** Where events go, for a transport whose connections receive them. */
  subscriber?: Subscriber;
  /** `performance.now()` when the request arrived, for `meta.execution_time_ms`. */
  startedAt?: number;
  /** The X-API-Version the client sent, if any. */
  apiVersion?: string | undefined;
  /** Idempotency-Key header (REST) or `idempotency_key` (WebSocket call); honoured on POST operations. */
  idempotencyKey?: string | undefined;
  /** What identifies "the same request" for idempotency: REST passes its URL and raw body. */
  requestText?: string | undefined;
}

/** Everything a transport needs to answer one call; `execute` never throws. */
export interface Outcome {
  status: number;
  data?: unknown;
  failure?: ApiFailure;
  /** The exact envelope text when the core built it (idempotent calls): a REST answer sends it as is. */
  body: string | null;
  /** Answered from an earlier request with the same Idempotency-Key. */
  replayed: boolean;
  rateLimit: RateDecision | null;
  /** For `meta.version`: the version the client asked for, or the default. */
  version: string;
  /**
   * To run right after the reply is sent, synchronously (a subscribe's replay follows its result).
   * A transport that cannot send the reply calls `abandon` instead.
   */
  afterReply?: { run: () => void; abandon: () => void };
}

export interface OperationsDeps {
  store: Store;
  events: Events;
  log: Logger;
  checkOutput: boolean;
  realtime: RealtimeServices;
  webhooks: OperationContext['webhooks'];
  caches: OperationContext['caches'];
  credentials: CredentialRegistry;
  /** Null: no rate limits (a configuration switch, for benchmarks and trusted deployments). */
  limiter: RateLimiter | null;
  /** Null: Idempotency-Key is ignored. */
  idempotency: IdempotencyStore | null;
  /** Told about every operation run: for metrics. */
  observe?: (observation: { operation: string; transport: TransportName; outcome: string; seconds: number }) => void;
}

/**
 * The one entry point through which every transport runs an operation, and so the one place for
 * cross-cutting rules: revocation, rate limit, version, permission, validation, idempotency, then
 * the handler (and, in development, a check of its output).
 */
export class Operations {
  constructor(
    private readonly handlers: HandlerTable,
    private readonly deps: OperationsDeps,
  ) {}

  contract(name: string): OperationContract | undefined {
    return Object.hasOwn(contracts, name) ? (contracts[name as OperationName] as OperationContract) : undefined;
  }

  /** For transports that answer with data or an error (WebSocket calls). */
  async invoke(name: string, rawInput: unknown, origin: CallOrigin): Promise<unknown> {
    const outcome = await this.execute(name, rawInput, origin);
    if (outcome.failure) throw outcome.failure;
    return outcome.data;
  }

  async execute(name: string, rawInput: unknown, origin: CallOrigin): Promise<Outcome> {
    const startedAt = origin.startedAt ?? performance.now();
    const outcome = await this.outcomeOf(name, rawInput, origin, startedAt);
    this.deps.observe?.({
      operation: this.contract(name) ? name : 'unknown',
      transport: origin.transport,
      outcome: outcome.failure ? outcome.failure.code : 'ok',
      seconds: (performance.now() - startedAt) / 1000,
    });
    return outcome;
  }

  private async outcomeOf(name: string, rawInput: unknown, origin: CallOrigin, startedAt: number): Promise<Outcome> {
    let rateLimit: RateDecision | null = null;
    let version: string = API_VERSION;
    try {
      const { principal } = origin;
      if (this.deps.credentials.isRevoked(principal.keyId)) throw new ApiFailure('INVALID_API_KEY', 'API key has been revoked');
      const contract = this.contract(name);
      if (!contract) throw new ApiFailure('RESOURCE_NOT_FOUND', `Unknown method: ${name}`, { method: name }, 'method');
      if (this.deps.limiter && !contract.unmetered) {
        rateLimit = await this.deps.limiter.consume(principal.keyId, quotaFor(principal));
        if (!rateLimit.allowed) {
          throw new RateLimitedFailure(rateLimit.retryAfter, { window: rateLimit.window, limit: rateLimit.limit, reset_at: rateLimit.resetAt });
        }
      }
      version = resolveApiVersion(origin.apiVersion);
      const fixed = typeof contract.permission === 'string' ? contract.permission : null;
      if (fixed !== null) checkPermission(principal, fixed);
      const idempotencyProblem = origin.idempotencyKey === undefined ? null : textProblem(origin.idempotencyKey);
      if (idempotencyProblem) throw new ApiFailure('VALIDATION_ERROR', `Idempotency key ${idempotencyProblem}`);
      const parsed = parseInput(contract.input, rawInput ?? {});
      if (!parsed.success) throw validationFailure(parsed.error, `input for ${name}`);
      // A permission that depends on the input (the topic's kind) is known only once it is valid.
      if (typeof contract.permission === 'function') checkPermission(principal, contract.permission(parsed.data));
      if (principal.topics) checkTokenScope(contract, parsed.data, principal.topics);

      let afterReply: Outcome['afterReply'];
      const run = () => this.run(name, contract, parsed.data, origin, (hook) => (afterReply = hook));
      const status = contract.http?.status ?? 200;
      if (origin.idempotencyKey !== undefined && contract.http?.method === 'POST' && this.deps.idempotency) {
        const result = await runIdempotently(this.deps.idempotency, {
          accountId: principal.accountId,
          key: origin.idempotencyKey,
          operation: name,
          requestText: origin.requestText ?? JSON.stringify(rawInput ?? {}),
          requestId: origin.requestId,
          startedAt,
          version,
          successStatus: status,
          run,
          onInternalError: (error) => this.logInternal(error, name, origin),
        });
        return { ...result, rateLimit, version };
      }
      const data = await run();
      return { status, data, body: null, replayed: false, rateLimit, version, ...(afterReply ? { afterReply } : {}) };
    } catch (error) {
      const failure = toFailure(error);
      if (failure.code === 'INTERNAL_ERROR') this.logInternal(error, name, origin);
      return { status: failure.status, failure, body: null, replayed: false, rateLimit, version };
    }
  }

  private async run(
    name: string,
    contract: OperationContract,
    input: unknown,
    origin: CallOrigin,
    setAfterReply: (hook: NonNullable<Outcome['afterReply']>) => void,
  ): Promise<unknown> {
    let hook: NonNullable<Outcome['afterReply']> | null = null;
    const ctx = this.context(origin, (run, abandon) => (hook = { run, abandon }));
    const handler = this.handlers[name as OperationName] as (ctx: OperationContext, input: unknown) => Promise<unknown>;
    try {
      const output = await handler(ctx, input);
      if (this.deps.checkOutput) {
        const checked = contract.output.safeParse(output);
        if (!checked.success) {
          ctx.log.error({ operation: name, issues: checked.error.issues }, 'handler output does not match its contract');
          throw new ApiFailure('INTERNAL_ERROR');
        }
      }
      if (hook) setAfterReply(hook);
      return output;
    } catch (error) {
      (hook as NonNullable<Outcome['afterReply']> | null)?.abandon();
      throw error;
    }
  }

  /** Internal errors are logged here, with the request id the client sees, and hidden from the client. */
  private logInternal(error: unknown, operation: string, origin: CallOrigin): void {
    this.deps.log.error({ err: error, request_id: origin.requestId, account_id: origin.principal.accountId, operation }, 'operation failed');
  }

  private context(origin: CallOrigin, afterReply: OperationContext['afterReply']): OperationContext {
    const { store, events, realtime, webhooks, caches, log, credentials } = this.deps;
    const accountId = origin.principal.accountId;
    let child: Logger | undefined;
    return {
      principal: origin.principal,
      requestId: origin.requestId,
      connectionId: origin.connectionId,
      subscriber: origin.subscriber,
      afterReply,
      store,
      events,
      write: (fn) => events.write(accountId, fn),
      realtime,
      webhooks,
      caches,
      credentials,
      // Built on first use: most calls never log.
      get log() {
        return (child ??= log.child({ request_id: origin.requestId, account_id: origin.principal.accountId }));
      },
    };
  }
}

function checkPermission(principal: Principal, permission: string): void {
  if (!hasPermission(principal.scopes, permission)) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `This key lacks the ${permission} permission`, { required: permission });
  }
}

/** A client token acts only on its topics: the operation must name one, and it must be among them. */
function checkTokenScope(contract: OperationContract, input: unknown, topics: readonly string[]): void {
  const topic = contract.scope?.(input as never);
  if (topic === undefined || !topics.includes(topic)) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', topic ? `This token does not cover ${topic}` : `A client token cannot call ${contract.name}`, {
      ...(topic ? { topic } : { method: contract.name }),
      allowed_topics: topics,
    });
  }
}
