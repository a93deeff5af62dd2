import { ApiFailure } from '../kernel/errors.js';
import { EmbedderUnavailable } from '../embeddings/index.js';
import type { OperationContext } from './context.js';

/** The active embedder's vector for a text; an unreachable embedding service is a 503, not a 500. */
export async function embedText(ctx: OperationContext, text: string): Promise<number[]> {
  try {
    const [vector] = await ctx.store.embedder.embed([text]);
    return vector!;
  } catch (error) {
    if (error instanceof EmbedderUnavailable) {
      ctx.log.warn({ err: error }, 'embedding failed');
      throw new ApiFailure('SERVICE_UNAVAILABLE', 'The embedding service is unavailable; retry with exponential backoff', { reason: error.message });
    }
    throw error;
  }
}

/** A vector the client sent must live in the active embedder's space: same length, not all zeros. */
export function clientVector(ctx: OperationContext, vector: number[], field: string): number[] {
  const { id, dimensions } = ctx.store.embedder;
  if (vector.length !== dimensions) {
    throw new ApiFailure('VALIDATION_ERROR', `${field} has ${vector.length} dimensions; the active embedder ${id} uses ${dimensions}`, {
      field,
      dimensions: vector.length,
      expected_dimensions: dimensions,
      embedder: id,
    });
  }
  if (vector.every((value) => value === 0)) {
    throw new ApiFailure('VALIDATION_ERROR', `${field} is all zeros: it has no direction to compare`, { field });
  }
  return vector;
}
