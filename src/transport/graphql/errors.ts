import { GraphQLError } from 'graphql';
import type { ApiFailure } from '../../kernel/errors.js';

/** A gateway failure as a GraphQL error: its code, type, status, details and retry_after in `extensions`. */
export function failureError(failure: ApiFailure): GraphQLError {
  const body = failure.toBody();
  return new GraphQLError(body.message, {
    extensions: {
      code: body.code,
      type: body.type,
      status: failure.status,
      ...(body.details ? { details: body.details } : {}),
      ...(body.retry_after !== undefined ? { retry_after: body.retry_after } : {}),
    },
  });
}

/** An error of graphql-js (syntax, validation) with the code clients match on. */
export function coded(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    extensions: { ...error.extensions, code },
  });
}

/** A request-level error of this adapter, with its code. */
export function codedError(message: string, code: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

/** `ok`, or the first error's code: what the operation metrics count. */
export function outcomeOf(errors: readonly unknown[] | undefined): string {
  const first = errors?.[0] as { extensions?: { code?: unknown } } | undefined;
  if (!first) return 'ok';
  return typeof first.extensions?.code === 'string' ? first.extensions.code : 'INTERNAL_ERROR';
}
