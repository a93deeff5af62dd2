import type { Migration } from './migration.js';

/**
 * API conventions: per-account rate-limit overrides (Enterprise), idempotency records, a paging
 * key for API keys, and indexes for the sorts and filters lists accept.
 */
export const conventions: Migration = {
  id: 3,
  name: 'rate-limit overrides, idempotency keys, list indexes',
  sql: `
      alter table accounts add column rate_limit_per_minute integer
        check (rate_limit_per_minute between 1 and 10000);
      alter table accounts add column rate_limit_per_day integer
        check (rate_limit_per_day >= 1);

      create table idempotency_keys (
        account_id text not null references accounts(id) on delete cascade,
        key text not null,
        operation text not null,
        fingerprint text not null,
        state text not null default 'running' check (state in ('running', 'done')),
        status integer,
        response text,
        created_at timestamptz not null default now(),
        locked_until timestamptz not null,
        expires_at timestamptz not null,
        primary key (account_id, key)
      );
      create index idempotency_keys_expires on idempotency_keys(expires_at);

      alter table api_keys add column pk bigint generated always as identity;
      create index api_keys_account_created on api_keys(account_id, created_at, pk);

      create index agents_account_created on agents(account_id, created_at, pk);
      create index agents_account_updated on agents(account_id, updated_at, pk);
      create index agents_account_name on agents(account_id, name, pk);
      create index agents_account_status on agents(account_id, status, created_at, pk);
      create index conversations_account_created on conversations(account_id, created_at, pk);
      create index conversations_account_updated on conversations(account_id, updated_at, pk);
      create index conversations_account_status on conversations(account_id, status, created_at, pk);
      create index conversations_agent_created on conversations(agent_id, created_at, pk);
      create index messages_conversation_created on messages(conversation_id, created_at, pk)
    `,
};
