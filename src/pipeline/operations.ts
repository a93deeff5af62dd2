import { API_VERSION, contracts, parseInput, textProblem, type OperationContract, type OperationName } from '../../protocol/index.js';
import { hasPermission, type Principal } from '../auth/keys.js';
import { quotaFor, type RateDecision, type RateLimiter } from '../limits/index.js';
import type { Logger } from '../logger.js';
import type { CredentialRegistry, HandlerTable, OperationContext, RealtimeServices } from '../operations/index.js';
import type { Subscriber } from '../realtime/delivery.js';
import type { Emit, Events } from '../realtime/events.js';
import type { IdempotencyStore } from '../store/repos/idempotency.js';
import type { Store, StoreTx } from '../store/store.js';
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
  /**
   * The transport already walked this very input for NULs, lone surrogates and depth (a WebSocket
   * frame is checked whole, params included): the pipeline does not walk it again.
   */
  inputChecked?: boolean;
  /**
   * This call's rate-limit unit is already paid (`chargeUnit`): a GraphQL document pays one unit
   * before it is parsed, and its first operation runs on it, so that the limiter is not asked again.
   */
  prepaid?: boolean;
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

  /**
   * Charges one unit of the principal's rate limit for work that is not one operation (a GraphQL
   * document, which may run none or many): null when admitted, else why not (a RateLimitedFailure,
   * with retry_after, when the budget is spent). The first operation the work runs is then
   * `prepaid`, so that a document of one operation still costs one unit.
   */
  async chargeUnit(principal: Principal): Promise<ApiFailure | null> {
    if (!this.deps.limiter) return null;
    try {
      const decision = await this.deps.limiter.consume(principal.keyId, quotaFor(principal));
      return decision.allowed ? null : rateLimited(decision);
    } catch (error) {
      const failure = toFailure(error);
      if (failure.code === 'INTERNAL_ERROR') this.deps.log.error({ err: error, account_id: principal.accountId }, 'rate limit could not be charged');
      return failure;
    }
  }

  /**
   * Runs one operation. The answer is synchronous when nothing on the way awaits (a cached read
   * with no rate limiter): no promise, no microtask; otherwise a promise. Never throws or rejects.
   */
  execute(name: string, rawInput: unknown, origin: CallOrigin): Outcome | Promise<Outcome> {
    const startedAt = origin.startedAt ?? performance.now();
    const outcome = this.outcomeOf(name, rawInput, origin, startedAt);
    if (outcome instanceof Promise) return outcome.then((settled) => this.observed(name, origin, startedAt, settled));
    return this.observed(name, origin, startedAt, outcome);
  }

  private observed(name: string, origin: CallOrigin, startedAt: number, outcome: Outcome): Outcome {
    this.deps.observe?.({
      operation: this.contract(name) ? name : 'unknown',
      transport: origin.transport,
      outcome: outcome.failure ? outcome.failure.code : 'ok',
      seconds: (performance.now() - startedAt) / 1000,
    });
    return outcome;
  }

  /** The checks run synchronously; only the rate limiter, an idempotent call's store and the handler may await. */
  private outcomeOf(name: string, rawInput: unknown, origin: CallOrigin, startedAt: number): Outcome | Promise<Outcome> {
    try {
      const { principal } = origin;
      if (this.deps.credentials.isRevoked(principal.keyId)) throw new ApiFailure('INVALID_API_KEY', 'API key has been revoked');
      // A connection outlives the check of its credentials at connect: a token is good until it expires, not after.
      if (principal.expiresAt !== undefined && principal.expiresAt <= Date.now()) {
        throw new ApiFailure('INVALID_API_KEY', 'Client token has expired', { suggestion: 'Mint a new token with tokens.create' });
      }
      const contract = this.contract(name);
      if (!contract) throw new ApiFailure('RESOURCE_NOT_FOUND', `Unknown method: ${name}`, { method: name }, 'method');
      if (this.deps.limiter && !contract.unmetered && origin.prepaid !== true) {
        return this.deps.limiter.consume(principal.keyId, quotaFor(principal)).then(
          (decision) => {
            if (!decision.allowed) return this.failed(rateLimited(decision), name, origin, decision, API_VERSION);
            return this.checkAndRun(name, contract, rawInput, origin, startedAt, decision);
          },
          (error: unknown) => this.failed(error, name, origin, null, API_VERSION),
        );
      }
      return this.checkAndRun(name, contract, rawInput, origin, startedAt, null);
    } catch (error) {
      return this.failed(error, name, origin, null, API_VERSION);
    }
  }

  private checkAndRun(
    name: string,
    contract: OperationContract,
    rawInput: unknown,
    origin: CallOrigin,
    startedAt: number,
    rateLimit: RateDecision | null,
  ): Outcome | Promise<Outcome> {
    let version: string = API_VERSION;
    try {
      const { principal } = origin;
      version = resolveApiVersion(origin.apiVersion);
      const fixed = typeof contract.permission === 'string' ? contract.permission : null;
      if (fixed !== null) checkPermission(principal, fixed);
      const idempotencyProblem = origin.idempotencyKey === undefined ? null : textProblem(origin.idempotencyKey);
      if (idempotencyProblem) throw new ApiFailure('VALIDATION_ERROR', `Idempotency key ${idempotencyProblem}`);
      const parsed = parseInput(contract.input, rawInput ?? {}, origin.inputChecked === true);
      if (!parsed.success) throw validationFailure(parsed.error, `input for ${name}`);
      // A permission that depends on the input (the topic's kind) is known only once it is valid.
      if (typeof contract.permission === 'function') checkPermission(principal, contract.permission(parsed.data));
      if (principal.topics) checkTokenScope(contract, parsed.data, principal.topics);

      const status = contract.http?.status ?? 200;
      if (origin.idempotencyKey !== undefined && contract.http?.method === 'POST' && this.deps.idempotency) {
        const runVersion = version;
        return runIdempotently(this.deps.idempotency, {
          accountId: principal.accountId,
          key: origin.idempotencyKey,
          operation: name,
          requestText: origin.requestText ?? JSON.stringify(rawInput ?? {}),
          requestId: origin.requestId,
          startedAt,
          version,
          successStatus: status,
          // A replayed answer has no after-reply work: the context's hook is dropped with it.
          run: async () => this.run(name, contract, parsed.data, new CallContext(this.deps, origin)),
          onInternalError: (error) => this.logInternal(error, name, origin),
        }).then(
          (result): Outcome => ({ ...result, rateLimit, version: runVersion }),
          (error: unknown) => this.failed(error, name, origin, rateLimit, runVersion),
        );
      }
      const ctx = new CallContext(this.deps, origin);
      const data = this.run(name, contract, parsed.data, ctx);
      if (data instanceof Promise) {
        const answerVersion = version;
        return data.then(
          (settled) => answered(status, settled, ctx, rateLimit, answerVersion),
          (error: unknown) => this.failed(error, name, origin, rateLimit, answerVersion),
        );
      }
      return answered(status, data, ctx, rateLimit, version);
    } catch (error) {
      return this.failed(error, name, origin, rateLimit, version);
    }
  }

  private failed(error: unknown, name: string, origin: CallOrigin, rateLimit: RateDecision | null, version: string): Outcome {
    const failure = toFailure(error);
    if (failure.code === 'INTERNAL_ERROR') this.logInternal(error, name, origin);
    return { status: failure.status, failure, body: null, replayed: false, rateLimit, version };
  }

  /**
   * The handler, then (in development and tests) a check of its output; a failed call undoes its
   * after-reply hook. A handler that answers synchronously (a cached read) is answered so here too.
   */
  private run(name: string, contract: OperationContract, input: unknown, ctx: CallContext): unknown {
    const handler = this.handlers[name as OperationName] as (ctx: OperationContext, input: unknown) => unknown;
    let output: unknown;
    try {
      output = handler(ctx, input);
    } catch (error) {
      ctx.hook?.abandon();
      throw error;
    }
    if (output instanceof Promise) {
      return output.then(
        (settled: unknown) => this.checked(name, contract, ctx, settled),
        (error: unknown) => {
          ctx.hook?.abandon();
          throw error;
        },
      );
    }
    return this.checked(name, contract, ctx, output);
  }

  private checked(name: string, contract: OperationContract, ctx: CallContext, output: unknown): unknown {
    if (!this.deps.checkOutput) return output;
    const checked = contract.output.safeParse(output);
    if (!checked.success) {
      ctx.log.error({ operation: name, issues: checked.error.issues }, 'handler output does not match its contract');
      ctx.hook?.abandon();
      throw new ApiFailure('INTERNAL_ERROR');
    }
    return output;
  }

  /** Internal errors are logged here, with the request id the client sees, and hidden from the client. */
  private logInternal(error: unknown, operation: string, origin: CallOrigin): void {
    this.deps.log.error({ err: error, request_id: origin.requestId, account_id: origin.principal.accountId, operation }, 'operation failed');
  }
}

function answered(status: number, data: unknown, ctx: CallContext, rateLimit: RateDecision | null, version: string): Outcome {
  const outcome: Outcome = { status, data, body: null, replayed: false, rateLimit, version };
  if (ctx.hook) outcome.afterReply = ctx.hook;
  return outcome;
}

function rateLimited(decision: RateDecision): RateLimitedFailure {
  return new RateLimitedFailure(decision.retryAfter, { window: decision.window, limit: decision.limit, reset_at: decision.resetAt });
}

function checkPermission(principal: Principal, permission: string): void {
  if (!hasPermission(principal.scopes, permission)) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `This key lacks the ${permission} permission`, { required: permission });
  }
}

/** A client token acts only on its topics: the operation must name them, and each must be among them. */
function checkTokenScope(contract: OperationContract, input: unknown, topics: readonly string[]): void {
  const scope = contract.scope?.(input as never);
  const named = scope === undefined ? [] : typeof scope === 'string' ? [scope] : scope;
  const topic = named.find((one) => !topics.includes(one));
  if (named.length === 0 || topic !== undefined) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', topic ? `This token does not cover ${topic}` : `A client token cannot call ${contract.name}`, {
      ...(topic ? { topic } : { method: contract.name }),
      allowed_topics: topics,
    });
  }
}

/**
 * What a handler receives, as a class: its shape is fixed and its methods live on the prototype,
 * so a call allocates one small object (an object literal with a getter and closures per call
 * went to dictionary mode in V8). The request id and the child logger are made on first use.
 */
class CallContext implements OperationContext {
  /** Set by `afterReply`: what runs once the reply is sent. */
  hook: { run: () => void; abandon: () => void } | null = null;
  private child: Logger | undefined;

  constructor(
    private readonly deps: OperationsDeps,
    private readonly origin: CallOrigin,
  ) {}

  get principal(): Principal {
    return this.origin.principal;
  }

  get requestId(): string {
    return this.origin.requestId;
  }

  get connectionId(): string | undefined {
    return this.origin.connectionId;
  }

  get subscriber(): Subscriber | undefined {
    return this.origin.subscriber;
  }

  get store(): Store {
    return this.deps.store;
  }

  get events(): Events {
    return this.deps.events;
  }

  get realtime(): RealtimeServices {
    return this.deps.realtime;
  }

  get webhooks(): OperationContext['webhooks'] {
    return this.deps.webhooks;
  }

  get caches(): OperationContext['caches'] {
    return this.deps.caches;
  }

  get credentials(): CredentialRegistry {
    return this.deps.credentials;
  }

  get log(): Logger {
    return (this.child ??= this.deps.log.child({ request_id: this.origin.requestId, account_id: this.origin.principal.accountId }));
  }

  write<T>(fn: (tx: StoreTx, emit: Emit) => Promise<T>): Promise<T> {
    return this.deps.events.write(this.origin.principal.accountId, fn);
  }

  afterReply(run: () => void, abandon: () => void): void {
    this.hook = { run, abandon };
  }
}
