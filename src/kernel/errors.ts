import { z } from 'zod';
import { ERROR_CODES, statebaseCodeOf, type ErrorBody, type ErrorCode } from '../../protocol/index.js';

/**
 * The one error type handlers throw. Transports turn it into the error envelope (REST) or an
 * error frame (WebSocket); anything else thrown becomes INTERNAL_ERROR with its details hidden.
 */
export class ApiFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    /** For not-found: the resource, so the StateBase name reads `session_not_found`. */
    readonly resource?: string,
  ) {
    super(message ?? ERROR_CODES[code].message);
    this.name = 'ApiFailure';
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toBody(): ErrorBody {
    const param = paramOf(this.details);
    return {
      code: this.code,
      type: statebaseCodeOf(this.code, this.resource),
      message: this.message,
      ...(param ? { param } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** The field an error is about: the first invalid input's path, or the id a not-found names. */
function paramOf(details: Record<string, unknown> | undefined): string | undefined {
  if (!details) return undefined;
  const issues = details.issues;
  if (Array.isArray(issues)) {
    const path = (issues[0] as { path?: unknown } | undefined)?.path;
    return typeof path === 'string' && path.length > 0 ? path : undefined;
  }
  return Object.keys(details).find((key) => key.endsWith('_id'));
}

/** 429 with the document's `retry_after` (seconds) in the error body. */
export class RateLimitedFailure extends ApiFailure {
  constructor(
    readonly retryAfter: number,
    details: Record<string, unknown>,
  ) {
    super('RATE_LIMITED', `Rate limit exceeded. Please retry after ${retryAfter} seconds.`, details);
  }

  override toBody(): ErrorBody {
    return { ...super.toBody(), retry_after: this.retryAfter };
  }
}

/**
 * 503 for a dependency that is down (PostgreSQL): the request did nothing that needs undoing
 * from the client's side; retry after `retry_after` seconds (also sent as Retry-After on REST).
 */
export class UnavailableFailure extends ApiFailure {
  constructor(
    message: string,
    details: Record<string, unknown>,
    readonly retryAfter: number,
  ) {
    super('SERVICE_UNAVAILABLE', message, { ...details, retryable: true });
  }

  override toBody(): ErrorBody {
    return { ...super.toBody(), retry_after: this.retryAfter };
  }
}

/** A failure answered earlier and replayed as it was (idempotency). */
export class ReplayedFailure extends ApiFailure {
  constructor(private readonly body: ErrorBody) {
    super(body.code, body.message, body.details);
  }

  override toBody(): ErrorBody {
    return this.body;
  }
}

export function notFound(resource: string, idField: string, id: string): ApiFailure {
  return new ApiFailure(
    'RESOURCE_NOT_FOUND',
    `The requested ${resource} does not exist`,
    { [idField]: id, suggestion: `Check that the ${resource} id is correct and belongs to this account` },
    resource,
  );
}

export function validationFailure(error: z.ZodError, where?: string): ApiFailure {
  const issues = error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    code: issue.code,
    message: issue.message,
  }));
  const first = issues[0];
  const summary = first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'invalid input';
  return new ApiFailure('VALIDATION_ERROR', `Invalid ${where ?? 'request'}: ${summary}`, { issues });
}

/** Anything thrown, as an ApiFailure safe to show a client. */
export function toFailure(error: unknown): ApiFailure {
  if (error instanceof ApiFailure) return error;
  if (error instanceof z.ZodError) return validationFailure(error);
  return new ApiFailure('INTERNAL_ERROR', 'An unexpected error occurred; retry with exponential backoff');
}
