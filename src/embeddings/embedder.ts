/**
 * Turns text into vectors for semantic memory search. Every vector stored records the `id` of
 * the embedder whose space it lives in; search only compares vectors of the same id.
 */
export interface Embedder {
  /** Stable name of the vector space, e.g. `lexical-v1-1024` or `http:text-embedding-3-small:1536`. */
  readonly id: string;
  readonly dimensions: number;
  /** One unit-length vector per text, in order. */
  embed(texts: readonly string[]): Promise<number[][]>;
}

/** The embedding service failed or answered something unusable. */
export class EmbedderUnavailable extends Error {}

/** Scales a vector to unit length; a zero vector is returned unchanged. */
export function normalize(vector: number[]): number[] {
  let sum = 0;
  for (const value of vector) sum += value * value;
  if (sum === 0) return vector;
  const norm = Math.sqrt(sum);
  return vector.map((value) => value / norm);
}
