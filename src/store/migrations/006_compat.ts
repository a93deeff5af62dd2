import type { Migration } from './migration.js';

/**
 * What the StateBase client reads beyond the Sessions document: typed turn input and output
 * (`{type, content}`), a turn's reasoning and its number in the session; a memory's `type`,
 * `tags`, `version` and `updated_at` (account-level memory updates). Existing turns are numbered
 * in the order they were written.
 */
export const compat: Migration = {
  id: 6,
  name: 'client compatibility: typed turns, memory types and tags',
  sql: `
    alter table session_turns add column input_type text not null default 'text';
    alter table session_turns add column output_type text not null default 'text';
    alter table session_turns add column reasoning text;
    alter table session_turns add column turn_number integer not null default 0;
    update session_turns t set turn_number = n.num
      from (select pk, row_number() over (partition by session_id order by pk) as num from session_turns) n
     where t.pk = n.pk;
    alter table session_memories add column type text not null default 'general';
    alter table session_memories add column tags jsonb not null default '[]';
    alter table session_memories add column version integer not null default 1;
    alter table session_memories add column updated_at timestamptz not null default now();
    create index session_memories_type on session_memories(session_id, type);
  `,
};
