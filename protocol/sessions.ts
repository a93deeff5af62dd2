import { z } from 'zod';
import { Id, Metadata, PageInput, Timestamp } from './common.js';

/**
 * Sessions, their state versions, turns and memories, as the StateBase Sessions document defines
 * them (field names, defaults and limits are that document's).
 */
export const DEFAULT_TTL_SECONDS = 86_400;
export const MAX_TTL_SECONDS = 2_592_000;
export const MAX_STATE_BYTES = 256 * 1024;
export const MAX_TEXT_CHARS = 32_000;
export const DEFAULT_MEMORY_LIMIT = 5;
export const MAX_MEMORY_LIMIT = 20;
export const DEFAULT_TURN_LIMIT = 10;
export const MAX_TURN_LIMIT = 50;
/** Longest client-supplied embedding accepted before the dimension check (pgvector's own cap is 16,000). */
export const MAX_EMBEDDING_DIMENSIONS = 4096;

/** A JSON object (never an array or a scalar), bounded in size. */
export const State = z.record(z.string(), z.unknown()).refine((value) => JSON.stringify(value).length <= MAX_STATE_BYTES, {
  message: `state must serialise to at most ${MAX_STATE_BYTES} bytes`,
});
export type State = z.infer<typeof State>;

export const TtlSeconds = z.number().int().min(1).max(MAX_TTL_SECONDS);
/** A state version: 0 is the initial state. */
export const Version = z.number().int().min(0);
const Identifier = z.string().trim().min(1).max(128);

export const Session = z.object({
  id: z.string(),
  agent_id: z.string(),
  user_id: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
  state: State,
  metadata: Metadata,
  memory_count: z.number().int(),
  turn_count: z.number().int(),
  ttl_expires_at: Timestamp,
});
export type Session = z.infer<typeof Session>;

export const SessionCreateInput = z.strictObject({
  agent_id: Identifier,
  user_id: Identifier.optional(),
  initial_state: State.default({}),
  metadata: Metadata.optional(),
  ttl_seconds: TtlSeconds.default(DEFAULT_TTL_SECONDS),
});
export type SessionCreateInput = z.infer<typeof SessionCreateInput>;

export const SessionListInput = z.strictObject({
  ...PageInput,
  /** StateBase paging: the id of the last session of the previous page. */
  starting_after: Id.optional(),
  agent_id: Identifier.optional(),
  user_id: Identifier.optional(),
  /** StateBase client filters: sessions created strictly after / before an ISO 8601 instant. */
  created_after: z.iso.datetime({ offset: true }).optional(),
  created_before: z.iso.datetime({ offset: true }).optional(),
});
export type SessionListInput = z.infer<typeof SessionListInput>;

export const SessionStateInput = z.strictObject({
  session_id: Id,
  state: State,
  reasoning: z.string().max(4000).optional(),
  /** Optimistic concurrency: fail with CONFLICT unless this is still the latest version. */
  expected_version: Version.optional(),
  /** Extends the session's lifetime to this many seconds from now. */
  ttl_seconds: TtlSeconds.optional(),
});
export type SessionStateInput = z.infer<typeof SessionStateInput>;

export const SessionRollbackInput = z.strictObject({
  session_id: Id,
  version: Version,
  reasoning: z.string().max(4000).optional(),
  expected_version: Version.optional(),
});
export type SessionRollbackInput = z.infer<typeof SessionRollbackInput>;

export const SessionForkInput = z.strictObject({
  session_id: Id,
  /** Defaults to the latest version. */
  version: Version.optional(),
  ttl_seconds: TtlSeconds.default(DEFAULT_TTL_SECONDS),
});
export type SessionForkInput = z.infer<typeof SessionForkInput>;

export const StateVersion = z.object({
  version: z.number().int(),
  created_at: Timestamp,
  reasoning: z.string().nullable(),
});
export type StateVersion = z.infer<typeof StateVersion>;

export const VersionListInput = z.strictObject({ ...PageInput, session_id: Id });
export type VersionListInput = z.infer<typeof VersionListInput>;

// ---------- Turns ----------

export const Turn = z.object({
  id: z.string(),
  session_id: z.string(),
  input: z.string(),
  output: z.string(),
  metadata: Metadata,
  created_at: Timestamp,
  /** The kind of each side (`text`, `image`, `tool_call`, `tool_result`…); `text` for plain strings. */
  input_type: z.string(),
  output_type: z.string(),
  reasoning: z.string().nullable(),
  /** 1 for a session's first turn. */
  turn_number: z.number().int(),
});
export type Turn = z.infer<typeof Turn>;

/** A side of a turn: plain text, or typed content as the StateBase client sends it. */
export const TurnContent = z.union([
  z.string().max(MAX_TEXT_CHARS),
  z.strictObject({ type: z.string().trim().min(1).max(64), content: z.string().max(MAX_TEXT_CHARS) }),
]);
export type TurnContent = z.infer<typeof TurnContent>;

export const TurnCreateInput = z.strictObject({
  session_id: Id,
  input: TurnContent,
  output: TurnContent,
  metadata: Metadata.optional(),
  reasoning: z.string().max(4000).optional(),
});
export type TurnCreateInput = z.infer<typeof TurnCreateInput>;

/** A recorded turn with the session's state around it (a turn does not change state, so both are equal). */
export const TurnCreated = Turn.extend({ state_before: State, state_after: State });

export const TurnListInput = z.strictObject({
  ...PageInput,
  session_id: Id,
  /** StateBase paging: the id of the last turn of the previous page. */
  starting_after: Id.optional(),
});
export type TurnListInput = z.infer<typeof TurnListInput>;

// ---------- Memories ----------

export const Memory = z.object({
  id: z.string(),
  session_id: z.string(),
  content: z.string(),
  metadata: Metadata,
  /** Which embedder produced (or, for client vectors, whose space holds) the stored vector. */
  embedder: z.string(),
  created_at: Timestamp,
  /** StateBase's classification (`general`, `fact`, `preference`…) and tags. */
  type: z.string(),
  tags: z.array(z.string()),
  /** 1 when created, +1 on every update. */
  version: z.number().int(),
  updated_at: Timestamp,
});
export type Memory = z.infer<typeof Memory>;

/** A memory as retrieval returns it: `score` is the cosine similarity to the query, null without one. */
export const ScoredMemory = Memory.extend({ score: z.number().nullable() });
export type ScoredMemory = z.infer<typeof ScoredMemory>;

export const Embedding = z.array(z.number().finite()).min(1).max(MAX_EMBEDDING_DIMENSIONS);

export const MemoryType = z.string().trim().min(1).max(64);
export const MemoryTags = z.array(z.string().trim().min(1).max(64)).max(32);

export const MemoryCreateInput = z.strictObject({
  session_id: Id,
  content: z.string().trim().min(1).max(MAX_TEXT_CHARS),
  metadata: Metadata.optional(),
  type: MemoryType.default('general'),
  tags: MemoryTags.default([]),
  /** A vector the client computed itself; must have the active embedder's dimensions. */
  embedding: Embedding.optional(),
});
export type MemoryCreateInput = z.infer<typeof MemoryCreateInput>;

export const MemoryListInput = z.strictObject({ ...PageInput, session_id: Id });
export type MemoryListInput = z.infer<typeof MemoryListInput>;

export const MemoryDeleteInput = z.strictObject({ session_id: Id, memory_id: Id });

export const MemorySearchInput = z
  .strictObject({
    session_id: Id,
    query: z.string().trim().min(1).max(MAX_TEXT_CHARS).optional(),
    /** Search with a client vector instead of a text query. */
    embedding: Embedding.optional(),
    limit: z.number().int().min(1).max(MAX_MEMORY_LIMIT).default(DEFAULT_MEMORY_LIMIT),
  })
  .refine((input) => (input.query === undefined) !== (input.embedding === undefined), {
    message: 'give exactly one of query or embedding',
    path: ['query'],
  });
export type MemorySearchInput = z.infer<typeof MemorySearchInput>;

export const MemorySearchResult = z.object({ data: z.array(ScoredMemory) });

// ---------- Context ----------

export const ContextInput = z.strictObject({
  session_id: Id,
  query: z.string().max(MAX_TEXT_CHARS).optional(),
  memory_limit: z.number().int().min(0).max(MAX_MEMORY_LIMIT).default(DEFAULT_MEMORY_LIMIT),
  turn_limit: z.number().int().min(0).max(MAX_TURN_LIMIT).default(DEFAULT_TURN_LIMIT),
});
export type ContextInput = z.infer<typeof ContextInput>;

export const SessionContext = z.object({
  state: State,
  /** Most similar to `query` first (each with its `score`); without a query, the most recent. */
  memories: z.array(ScoredMemory),
  /** Newest first. */
  recent_turns: z.array(Turn),
});
export type SessionContext = z.infer<typeof SessionContext>;
