import { createHash } from 'node:crypto';
import { ErrorEnvelope } from '../../protocol/index.js';
import type { IdempotencyStore } from '../store/repos/idempotency.js';
import { errorBody, successBody } from '../kernel/envelope.js';
import { ApiFailure, ReplayedFailure, toFailure } from '../kernel/errors.js';

/** Records are kept 24 hours, as the StateSet document says. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A claim whose runner died is taken over after this long. */
export const IDEMPOTENCY_LOCK_MS = 60_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface IdempotentCall {
  accountId: string;
  key: string;
  operation: string;
  /** The request as sent; a repeat must match it byte for byte. */
  requestText: string;
  requestId: string;
  startedAt: number;
  version: string;
  successStatus: number;
  run: () => Promise<unknown>;
  onInternalError: (error: unknown) => void;
}

export interface IdempotentResult {
  status: number;
  data?: unknown;
  failure?: ApiFailure;
  body: string;
  replayed: boolean;
}

/**
 * Runs a call at most once per (account, key): the first completed answer (status and exact body)
 * is stored and replayed for repeats; a different request under the same key is refused (422); a
 * repeat while the first still runs is refused (409). Validation and server errors are not stored,
 * so the client may correct or retry.
 */
export async function runIdempotently(store: IdempotencyStore, call: IdempotentCall): Promise<IdempotentResult> {
  if (!KEY_PATTERN.test(call.key)) {
    throw new ApiFailure('VALIDATION_ERROR', 'Idempotency-Key must be 1-255 printable ASCII characters without spaces', {
      header: 'Idempotency-Key',
    });
  }
  const fingerprint = createHash('sha256').update(call.operation).update('\n').update(call.requestText).digest('hex');
  const claim = await store.begin({
    accountId: call.accountId,
    key: call.key,
    operation: call.operation,
    fingerprint,
    ttlMs: IDEMPOTENCY_TTL_MS,
    lockMs: IDEMPOTENCY_LOCK_MS,
  });
  switch (claim.kind) {
    case 'mismatch':
      throw new ApiFailure('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request; use a new key', {
        idempotency_key: call.key,
        first_operation: claim.operation,
      });
    case 'running':
      throw new ApiFailure('CONFLICT', 'A request with this Idempotency-Key is still in progress; retry once it has finished', {
        idempotency_key: call.key,
      });
    case 'replay':
      return replay(claim.status, claim.response);
    case 'started':
      break;
  }

  let result: IdempotentResult;
  try {
    const data = await call.run();
    result = { status: call.successStatus, data, body: successBody(data, call.requestId, call.startedAt, call.version), replayed: false };
  } catch (error) {
    const failure = toFailure(error);
    if (failure.code === 'INTERNAL_ERROR') call.onInternalError(error);
    if (failure.code === 'VALIDATION_ERROR' || failure.status >= 500) {
      await store.release(call.accountId, call.key);
      throw failure;
    }
    result = { status: failure.status, failure, body: errorBody(failure, call.requestId), replayed: false };
  }
  try {
    await store.complete(call.accountId, call.key, result.status, result.body);
  } catch (error) {
    // The work is done and is answered; the claim stays locked and a repeat is refused until it expires.
    call.onInternalError(error);
  }
  return result;
}

function replay(status: number, body: string): IdempotentResult {
  const parsed = JSON.parse(body) as { success: boolean; data?: unknown };
  if (parsed.success) return { status, data: parsed.data, body, replayed: true };
  return { status, failure: new ReplayedFailure(ErrorEnvelope.parse(parsed).error), body, replayed: true };
}
