import { z } from 'zod';
import { Id, Metadata, Timestamp } from './common.js';
import { MAX_TEXT_CHARS, MemoryTags, MemoryType, ScoredMemory, State, TtlSeconds, Version } from './sessions.js';

/**
 * Inputs and outputs of the operations the StateBase client calls beyond the Sessions document
 * (read from `StateBase/statebase-node`: `src/index.ts`, `src/client.ts`, `src/schema.ts`). Field
 * names are that client's, so the same JSON serves it and the gateway's own envelope.
 */

// ---------- State ----------

/** The current state and its version (`GET /v1/sessions/{id}/state`, and the answer of every state write). */
export const StateView = z.object({
  session_id: z.string(),
  version: z.number().int(),
  state: State,
  /** When this version was written. */
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type StateView = z.infer<typeof StateView>;

const StateWrite = {
  session_id: Id,
  state: State,
  reasoning: z.string().max(4000).optional(),
  expected_version: Version.optional(),
};

/** PATCH: the given top-level keys replace the current ones, others are kept (a shallow merge). */
export const StatePatchInput = z.strictObject(StateWrite);
/** PUT: the state is replaced, as the document's `POST …/state` does. */
export const StateReplaceInput = z.strictObject(StateWrite);

export const StateRollbackInput = z.strictObject({
  session_id: Id,
  /** A version, or a negative number counting back from the latest (-1: the one before it). */
  version: z.number().int().min(-1_000_000),
  /** StateBase's name; `reasoning` is the document's. */
  reason: z.string().max(4000).optional(),
  reasoning: z.string().max(4000).optional(),
  expected_version: Version.optional(),
});

export const StateRollbackResult = z.object({
  success: z.literal(true),
  session_id: z.string(),
  new_version: z.number().int(),
  restored_from_version: z.number().int(),
  state: State,
});

export const StateHistoryInput = z.strictObject({
  session_id: Id,
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** Only versions after this one. */
  since_version: z.coerce.number().int().min(-1).optional(),
  /** Opaque cursor from a previous page's `next_cursor`. */
  cursor: z.string().max(200).optional(),
});

export const StateVersionEntry = z.object({
  version: z.number().int(),
  state: State,
  created_at: Timestamp,
  /** Who wrote the version; stategate does not record it, so always null. */
  updated_by: z.string().nullable(),
  reasoning: z.string().nullable(),
});

export const StateHistory = z.object({
  /** Newest first. */
  data: z.array(StateVersionEntry),
  current_version: z.number().int(),
  has_more: z.boolean(),
  next_cursor: z.string().nullable(),
});
export type StateHistory = z.infer<typeof StateHistory>;

// ---------- Sessions ----------

export const SessionUpdateInput = z.strictObject({
  session_id: Id,
  /** Replaces the metadata (as every PATCH of this API does). */
  metadata: Metadata.nullable().optional(),
  /** Resets the lifetime to this many seconds from now. */
  ttl_seconds: TtlSeconds.nullable().optional(),
});

export const TurnGetInput = z.strictObject({ session_id: Id, turn_id: Id });

// ---------- Account-level memories ----------

export const AccountMemoryCreateInput = z.strictObject({
  session_id: Id,
  content: z.string().trim().min(1).max(MAX_TEXT_CHARS),
  type: MemoryType.default('general'),
  tags: MemoryTags.nullable().optional(),
  metadata: Metadata.nullable().optional(),
  /** Accepted for the client's sake; every memory is embedded (search needs the vector). */
  embed: z.boolean().optional(),
});

/** Comma-separated query values (`types=fact,preference`) or a repeated parameter. */
const CommaList = z
  .union([z.string().max(2000), z.array(z.string().max(200)).max(32)])
  .transform((value) => (Array.isArray(value) ? value : value.split(',')).map((item) => item.trim()).filter((item) => item.length > 0));

export const MemoryFindInput = z.strictObject({
  query: z.string().trim().min(1).max(MAX_TEXT_CHARS),
  session_id: Id.optional(),
  types: CommaList.optional(),
  tags: CommaList.optional(),
  top_k: z.coerce.number().int().min(1).max(100).optional(),
  /** The client sends its `limit` as well as `top_k`; `top_k` wins when both are given. */
  limit: z.coerce.number().int().min(1).max(100).optional(),
  /** Lowest cosine similarity returned. */
  threshold: z.coerce.number().min(-1).max(1).optional(),
});
export type MemoryFindInput = z.infer<typeof MemoryFindInput>;

export const MemoryFindResult = z.object({ data: z.array(ScoredMemory), query: z.string() });

export const MemoryByIdInput = z.strictObject({ memory_id: Id });

export const MemoryUpdateInput = z.strictObject({
  memory_id: Id,
  content: z.string().trim().min(1).max(MAX_TEXT_CHARS).nullable().optional(),
  type: MemoryType.nullable().optional(),
  tags: MemoryTags.nullable().optional(),
  metadata: Metadata.nullable().optional(),
});
export type MemoryUpdateInput = z.infer<typeof MemoryUpdateInput>;
