import type { Migration } from './migration.js';

/** Server-wide secrets (the client-token signing key), shared by every node on the same database. */
export const realtime: Migration = {
  id: 4,
  name: 'server secrets',
  sql: `
    create table server_secrets (
      name text primary key,
      value text not null,
      created_at timestamptz not null default now()
    );
  `,
};
