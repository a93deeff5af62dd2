import type { Migration } from './migration.js';

/**
 * Sessions with versioned state, turns and memories. `ttl_expires_at` is checked by every query,
 * so an expired session is gone at once even before the sweeper deletes it. Children cascade:
 * deleting a session deletes its versions, turns and memories in the same statement.
 *
 * Embeddings are an unconstrained `vector` column tagged with the embedder that produced them;
 * each embedder gets a partial HNSW index over a fixed-dimension cast (see docs/sessions.md).
 * The built-in embedder's index is created here; others are ensured at start-up.
 */
export const sessions: Migration = {
  id: 2,
  name: 'sessions, state versions, turns, memories',
  sql: `
      create table sessions (
        pk bigint generated always as identity,
        id text primary key,
        account_id text not null references accounts(id) on delete cascade,
        agent_id text not null,
        user_id text,
        state jsonb not null default '{}',
        version integer not null default 0,
        metadata jsonb not null default '{}',
        memory_count integer not null default 0,
        turn_count integer not null default 0,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        ttl_expires_at timestamptz not null
      );
      create index sessions_account_pk on sessions(account_id, pk desc);
      create index sessions_account_agent_pk on sessions(account_id, agent_id, pk desc);
      create index sessions_account_user_pk on sessions(account_id, user_id, pk desc);
      create index sessions_expiry on sessions(ttl_expires_at);

      create table session_versions (
        session_id text not null references sessions(id) on delete cascade,
        version integer not null,
        state jsonb not null,
        reasoning text,
        created_at timestamptz not null default now(),
        primary key (session_id, version)
      );

      create table session_turns (
        pk bigint generated always as identity,
        id text primary key,
        session_id text not null references sessions(id) on delete cascade,
        input text not null,
        output text not null,
        metadata jsonb not null default '{}',
        created_at timestamptz not null default now()
      );
      create index session_turns_session_pk on session_turns(session_id, pk desc);

      create table session_memories (
        pk bigint generated always as identity,
        id text primary key,
        session_id text not null references sessions(id) on delete cascade,
        content text not null,
        metadata jsonb not null default '{}',
        embedder text not null,
        embedding_source text not null,
        embedding vector not null,
        created_at timestamptz not null default now()
      );
      create index session_memories_session_pk on session_memories(session_id, pk desc);
      create index session_memories_hnsw_lexical_v1_1024 on session_memories
        using hnsw ((embedding::vector(1024)) vector_cosine_ops) where embedder = 'lexical-v1-1024';
    `,
};
