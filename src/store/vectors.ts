import { toSql } from 'pgvector';
import type { Embedder } from '../embeddings/index.js';
import type { SqlDriver } from './driver.js';

/**
 * The SQL of one embedder's vector space. Vectors live in an unconstrained `vector` column tagged
 * with the embedder's id; each space has a partial HNSW index over a fixed-dimension cast, and
 * queries repeat that exact expression and predicate so the planner can use the index. The id
 * and dimension come from configuration, never from a request; they are checked before being
 * written into SQL text.
 */
export class VectorSpace {
  readonly embedderId: string;
  readonly dimensions: number;
  /** `(m.embedding::vector(D)) <=> ($n::vector(D))`, the indexed cosine distance. */
  readonly distance: (param: string) => string;
  /** `m.embedder = '<id>'`, the index's predicate. */
  readonly predicate: string;
  readonly indexName: string;

  constructor(embedder: Pick<Embedder, 'id' | 'dimensions'>) {
    if (!/^[A-Za-z0-9:._/-]{1,100}$/.test(embedder.id)) throw new Error(`embedder id not usable in SQL: ${embedder.id}`);
    if (!Number.isInteger(embedder.dimensions) || embedder.dimensions < 1 || embedder.dimensions > 2000) {
      // HNSW on `vector` indexes at most 2,000 dimensions.
      throw new Error(`embedder dimensions must be 1..2000 for an HNSW index, got ${embedder.dimensions}`);
    }
    this.embedderId = embedder.id;
    this.dimensions = embedder.dimensions;
    const d = embedder.dimensions;
    this.distance = (param) => `(m.embedding::vector(${d})) <=> (${param}::vector(${d}))`;
    this.predicate = `m.embedder = '${embedder.id}'`;
    this.indexName = `session_memories_hnsw_${embedder.id.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`.slice(0, 63);
  }

  /** The text form pgvector reads (`[1,2,3]`), so the same SQL runs on pg and PGlite. */
  static literal(vector: readonly number[]): string {
    return toSql([...vector]) as string;
  }

  /** Creates this space's index when it does not exist (the built-in one comes with migration 2). */
  async ensureIndex(driver: SqlDriver): Promise<void> {
    await driver.transaction(async (tx) => {
      // Several nodes starting together must not race on the same CREATE INDEX.
      await tx.query(`select pg_advisory_xact_lock(hashtext('stategate.vector-index'))`);
      await tx.query(
        `create index if not exists ${this.indexName} on session_memories
           using hnsw ((embedding::vector(${this.dimensions})) vector_cosine_ops) where embedder = '${this.embedderId}'`,
      );
    });
  }
}
