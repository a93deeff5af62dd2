import { normalize, type Embedder } from './embedder.js';
import { charNgrams, isStopWord, stem, words } from './text-features.js';

/**
 * The built-in embedder: deterministic, offline, no model. Signed feature hashing of word stems
 * and character 3/4-grams into a fixed number of dimensions, L2-normalised. Cosine similarity
 * between two such vectors measures shared vocabulary and shared word pieces, which finds
 * paraphrases that reuse word stems ("refund" / "refunded") but not pure synonyms.
 */
export const LEXICAL_DIMENSIONS = 1024;

// Weights chosen on the fixture in test/fixtures: whole stems dominate, pieces of words break ties
// and catch spelling variants. Raw n-gram counts per word are averaged so long words do not swamp.
const STEM_WEIGHT = 1;
const NGRAM_WEIGHT = 0.35;

export class LexicalEmbedder implements Embedder {
  readonly id: string;

  constructor(readonly dimensions: number = LEXICAL_DIMENSIONS) {
    if (!Number.isInteger(dimensions) || dimensions < 16 || dimensions > 2000) {
      throw new RangeError(`lexical embedder dimensions must be an integer in 16..2000, got ${dimensions}`);
    }
    this.id = `lexical-v1-${dimensions}`;
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    return texts.map((text) => this.embedOne(text));
  }

  embedOne(text: string): number[] {
    const vector = new Array<number>(this.dimensions).fill(0);
    const all = words(text);
    const content = all.filter((word) => !isStopWord(word));
    // A text made only of stop words still deserves a vector of its own words.
    const chosen = content.length > 0 ? content : all;
    for (const word of chosen) {
      const base = stem(word);
      this.add(vector, `w:${base}`, STEM_WEIGHT);
      const grams = [...charNgrams(base, 3), ...charNgrams(base, 4)];
      for (const gram of grams) this.add(vector, `g:${gram}`, NGRAM_WEIGHT / Math.sqrt(grams.length));
    }
    // No features at all (empty or punctuation only): a fixed direction, so cosine stays defined.
    if (chosen.length === 0) this.add(vector, 'empty', 1);
    return normalize(vector);
  }

  /**
   * Signed hashing into SLOTS places per feature: the sign comes from another bit of the same
   * mixed hash, so collisions cancel out on average, and spreading each feature over two slots
   * keeps one unlucky collision from making two unrelated texts look alike.
   */
  private add(vector: number[], feature: string, weight: number): void {
    for (let slot = 0; slot < SLOTS; slot++) {
      const hash = mix32(fnv1a(feature, FNV_OFFSET ^ SLOT_SEEDS[slot]!));
      const sign = hash & 0x80000000 ? -1 : 1;
      vector[(hash & 0x7fffffff) % this.dimensions]! += (sign * weight) / Math.sqrt(SLOTS);
    }
  }
}

const SLOTS = 2;
const SLOT_SEEDS = [0, 0x5bd1e995];
const FNV_OFFSET = 0x811c9dc5;

/** murmur3's finaliser: spreads FNV's weak low bits over the whole word. */
export function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit FNV-1a over UTF-16 code units; deterministic across runs and platforms. */
export function fnv1a(text: string, seed = FNV_OFFSET): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
