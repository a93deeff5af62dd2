import { z } from 'zod';
import { EmbedderUnavailable, normalize, type Embedder } from './embedder.js';

export interface HttpEmbedderOptions {
  /** Base URL of an OpenAI-compatible API; requests go to `{url}/embeddings`. */
  url: string;
  apiKey: string | undefined;
  model: string;
  dimensions: number;
  timeoutMs: number;
  fetch?: typeof fetch;
}

const EmbeddingsResponse = z.object({
  data: z.array(z.object({ index: z.number().int().min(0), embedding: z.array(z.number()) })),
});

/**
 * An OpenAI-compatible embeddings endpoint (OpenAI, Azure-style proxies, Ollama, vLLM, LiteLLM...).
 * The dimension is fixed by configuration because the HNSW index needs it; an answer of any other
 * length is refused rather than stored.
 */
export class HttpEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly endpoint: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HttpEmbedderOptions) {
    this.dimensions = options.dimensions;
    this.id = `http:${options.model}:${options.dimensions}`;
    this.endpoint = `${options.url.replace(/\/+$/, '')}/embeddings`;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    let response: Response;
    try {
      response = await this.fetchImpl(this.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
        },
        body: JSON.stringify({ model: this.options.model, input: texts, dimensions: this.dimensions, encoding_format: 'float' }),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (error) {
      throw new EmbedderUnavailable(`embedding request failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!response.ok) {
      throw new EmbedderUnavailable(`embedding service answered HTTP ${response.status}`);
    }
    const parsed = EmbeddingsResponse.safeParse(await response.json().catch(() => null));
    if (!parsed.success) throw new EmbedderUnavailable('embedding service answered an unexpected body');
    const vectors = new Array<number[] | undefined>(texts.length);
    for (const item of parsed.data.data) {
      if (item.index >= texts.length) throw new EmbedderUnavailable(`embedding service answered index ${item.index} for ${texts.length} inputs`);
      if (item.embedding.length !== this.dimensions) {
        throw new EmbedderUnavailable(`embedding service answered ${item.embedding.length} dimensions, expected ${this.dimensions}`);
      }
      vectors[item.index] = normalize(item.embedding);
    }
    if (vectors.some((vector) => vector === undefined)) throw new EmbedderUnavailable('embedding service left some inputs without a vector');
    return vectors as number[][];
  }
}
