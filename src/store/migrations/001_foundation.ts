import type { Migration } from './migration.js';

export const foundation: Migration = {
  id: 1,
  name: 'accounts, keys, agents, conversations, messages',
  sql: `
      create table accounts (
        id text primary key,
        name text not null,
        plan text not null default 'starter',
        created_at timestamptz not null default now()
      );
      create table api_keys (
        id text primary key,
        account_id text not null references accounts(id) on delete cascade,
        key_hash text not null unique,
        key_hint text not null,
        name text,
        scopes text[] not null,
        created_at timestamptz not null default now(),
        revoked_at timestamptz
      );
      create index api_keys_account on api_keys(account_id);

      create table agents (
        pk bigint generated always as identity,
        id text primary key,
        account_id text not null references accounts(id) on delete cascade,
        name text not null,
        role text,
        instructions text,
        capabilities jsonb not null default '{}',
        metadata jsonb not null default '{}',
        status text not null default 'active',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create index agents_account_pk on agents(account_id, pk desc);

      create table conversations (
        pk bigint generated always as identity,
        id text primary key,
        account_id text not null references accounts(id) on delete cascade,
        agent_id text references agents(id) on delete set null,
        channel text not null,
        status text not null default 'open',
        satisfaction_score real,
        metadata jsonb not null default '{}',
        message_count integer not null default 0,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create index conversations_account_pk on conversations(account_id, pk desc);
      create index conversations_agent_pk on conversations(agent_id, pk desc);

      create table messages (
        pk bigint generated always as identity,
        id text primary key,
        account_id text not null,
        conversation_id text not null references conversations(id) on delete cascade,
        role text not null,
        content text not null,
        metadata jsonb not null default '{}',
        created_at timestamptz not null default now()
      );
      create index messages_conversation_pk on messages(conversation_id, pk);
    `,
};
