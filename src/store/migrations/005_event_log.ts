import type { Migration } from './migration.js';

/**
 * The event log: every numbered event, written in the transaction of the change that caused it.
 * `topic_positions` holds each topic's last seq and its epoch; taking the next seqs locks the
 * topic's row until commit, so seqs are gap-free and commit order is seq order. `event_log` is
 * the outbox and the resume window in one (trimmed by age; BRIN keeps that cheap to index).
 * `data` is json, not jsonb: a replay carries the event exactly as it went out live.
 */
export const eventLog: Migration = {
  id: 5,
  name: 'event log',
  sql: `
    create table topic_positions (
      topic text primary key,
      seq bigint not null,
      epoch text not null,
      updated_at timestamptz not null default now()
    );
    create table event_log (
      topic text not null,
      seq bigint not null,
      id text not null,
      type text not null,
      data json not null,
      created_at timestamptz not null,
      primary key (topic, seq)
    );
    create index event_log_created_at on event_log using brin (created_at);
  `,
};
