import type { Migration } from './migration.js';

/**
 * Orders and returns; webhook endpoints, their deliveries and every attempt.
 *
 * An endpoint follows its account's `account` topic in the event log: `cursor_seq` is the last seq
 * it has turned into deliveries. A delivery keeps the exact body it sends, so the event log may
 * trim the event once it is materialized (and not before: see EventLog.trim). Deliveries still
 * owed are `pending`; `pk` order within (endpoint, resource) is the order they must arrive in.
 */
export const commerceWebhooks: Migration = {
  id: 7,
  name: 'orders, returns, webhooks',
  sql: `
    create table orders (
      pk bigint generated always as identity,
      id text primary key,
      account_id text not null references accounts(id) on delete cascade,
      customer_id text,
      status text not null default 'created',
      currency text not null,
      items jsonb not null,
      total_amount bigint not null,
      refunded_amount bigint not null default 0,
      tracking_number text,
      metadata jsonb not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index orders_account_created on orders(account_id, created_at desc, pk desc);

    create table returns (
      pk bigint generated always as identity,
      id text primary key,
      account_id text not null references accounts(id) on delete cascade,
      order_id text not null references orders(id) on delete cascade,
      status text not null default 'requested',
      items jsonb not null,
      reason text,
      agent_id text,
      refund_amount bigint,
      resolution_note text,
      metadata jsonb not null default '{}',
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index returns_account_created on returns(account_id, created_at desc, pk desc);
    create index returns_order on returns(order_id);

    create table webhook_endpoints (
      pk bigint generated always as identity,
      id text primary key,
      account_id text not null references accounts(id) on delete cascade,
      url text not null,
      events text[] not null,
      metadata jsonb not null default '{}',
      enabled boolean not null default true,
      disabled_reason text,
      secret text not null,
      previous_secret text,
      previous_secret_expires_at timestamptz,
      cursor_seq bigint not null,
      failing_since timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index webhook_endpoints_account on webhook_endpoints(account_id, created_at desc, pk desc);
    create index webhook_endpoints_enabled on webhook_endpoints(account_id) where enabled;

    create table webhook_deliveries (
      pk bigint generated always as identity primary key,
      id text not null unique,
      endpoint_id text not null references webhook_endpoints(id) on delete cascade,
      account_id text not null,
      event_id text not null,
      event_type text not null,
      resource_key text not null,
      body text not null,
      status text not null default 'pending',
      attempts integer not null default 0,
      next_attempt_at timestamptz not null default now(),
      schedule_started_at timestamptz not null default now(),
      lease_id text,
      leased_until timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (endpoint_id, event_id)
    );
    create index webhook_deliveries_due on webhook_deliveries(next_attempt_at) where status = 'pending';
    create index webhook_deliveries_in_order on webhook_deliveries(endpoint_id, resource_key, pk) where status = 'pending';

    create table webhook_attempts (
      pk bigint generated always as identity primary key,
      id text not null unique,
      endpoint_id text not null references webhook_endpoints(id) on delete cascade,
      account_id text not null,
      event_id text not null,
      event_type text not null,
      attempt integer not null,
      status_code integer,
      succeeded boolean not null,
      error text,
      latency_ms integer not null,
      response_body text,
      created_at timestamptz not null default now()
    );
    create index webhook_attempts_endpoint on webhook_attempts(endpoint_id, pk desc);
    create index webhook_attempts_event on webhook_attempts(endpoint_id, event_id, pk desc)
  `,
};
