import type { EmbeddingsConfig } from '../config.js';
import type { Embedder } from './embedder.js';
import { HttpEmbedder } from './http.js';
import { LexicalEmbedder } from './lexical.js';

export { EmbedderUnavailable, type Embedder } from './embedder.js';
export { HttpEmbedder } from './http.js';
export { LexicalEmbedder } from './lexical.js';

export const DEFAULT_EMBEDDINGS: EmbeddingsConfig = { kind: 'lexical', dimensions: 1024 };

/** The built-in lexical embedder unless an HTTP endpoint is configured. */
export function createEmbedder(config: EmbeddingsConfig = DEFAULT_EMBEDDINGS): Embedder {
  return config.kind === 'http' ? new HttpEmbedder(config) : new LexicalEmbedder(config.dimensions);
}
