import { randomBytes } from 'node:crypto';
import { hashApiKey, type Principal } from '../auth/keys.js';
import { ApiFailure, RateLimitedFailure } from '../kernel/errors.js';
import type { RateLimiter, RateQuota } from '../limits/index.js';
import type { Operations } from '../pipeline/operations.js';
import type { Store } from '../store/store.js';

/**
 * The demo widget's visitor sessions (`POST /v1/demo/widget`, on when DEMO_WIDGET is): a demo agent
 * in the development account (created once, then reused), a fresh conversation per visitor, and a
 * client token that reaches that one conversation only. Everything runs through the operation
 * pipeline as the account would, so validation, permissions, events and rate limits apply as usual.
 */

/** The demo agent's name; `examples/agent-worker.ts` finds the agent it answers for by it too. */
export const DEMO_AGENT_NAME = 'Widget demo agent';

/** What a visitor's browser may do with its token: read its conversation, write messages, type. */
export const DEMO_TOKEN_PERMISSIONS = ['conversations:read', 'messages:read', 'messages:write'];

export const DEMO_TOKEN_TTL_SECONDS = 3600;

/**
 * Per visitor address: enough for a person reloading the page, not for a script filling the
 * database. The account's own plan limit (counted under one demo key id) caps all visitors together.
 */
export const DEMO_VISITOR_QUOTA: RateQuota = { perMinute: 10, perDay: 200 };

/** The key id demo calls are counted and logged under. */
const DEMO_KEY_ID = 'demo:widget';

export interface DemoVisit {
  token: string;
  conversation_id: string;
  agent_id: string;
  expires_at: string;
  /** The visitor as the token names it (presence and typing events carry it). */
  subject: string;
}

export interface DemoWidgetDeps {
  store: Pick<Store, 'accounts'>;
  operations: Pick<Operations, 'invoke'>;
  /** Null when rate limits are off (RATE_LIMITS_ENABLED=false). */
  limiter: RateLimiter | null;
  /** STATEGATE_API_KEY: its account hosts the demo; without it, the first (development) account does. */
  configuredKey: string | undefined;
  /** Reads a visitor's token back when it is renewed: null when forged, malformed or expired. */
  verifyToken(token: string): Promise<Principal | null>;
}

export class DemoWidget {
  private principal: Promise<Principal> | null = null;
  private agentId: Promise<string> | null = null;

  constructor(private readonly deps: DemoWidgetDeps) {}

  /**
   * A conversation and a token for one visitor, identified by its network address for the rate
   * limit. With the token of a visit still valid (`credential`), the same visit with a fresh
   * token instead: a page left open past the token's hour keeps its conversation.
   */
  async start(visitor: { address: string; requestId: string; credential?: string }): Promise<DemoVisit> {
    if (this.deps.limiter) {
      const decision = await this.deps.limiter.consume(`demo-widget:${visitor.address}`, DEMO_VISITOR_QUOTA);
      if (!decision.allowed) throw new RateLimitedFailure(decision.retryAfter, { limit: decision.limit, window: decision.window });
    }
    const principal = await this.demoPrincipal();
    const origin = { principal, requestId: visitor.requestId, transport: 'rest' as const };
    if (visitor.credential !== undefined) return this.renew(visitor.credential, principal, origin);
    const subject = `visitor_${randomBytes(8).toString('hex')}`;
    const startConversation = (agentId: string) =>
      this.invoke<{ id: string }>(
        'conversations.create',
        { agent_id: agentId, channel: 'widget', metadata: { source: 'demo_widget', visitor: subject } },
        origin,
      );
    let agentId = await this.demoAgent(principal, visitor.requestId);
    let conversation: { id: string };
    try {
      conversation = await startConversation(agentId);
    } catch (error) {
      // Someone deleted the demo agent since it was looked up: find or create it again, once.
      if (!(error instanceof ApiFailure) || error.code !== 'RESOURCE_NOT_FOUND') throw error;
      this.agentId = null;
      agentId = await this.demoAgent(principal, visitor.requestId);
      conversation = await startConversation(agentId);
    }
    const minted = await this.invoke<{ token: string; expires_at: string }>(
      'tokens.create',
      { topics: [`conversation:${conversation.id}`], permissions: DEMO_TOKEN_PERMISSIONS, subject, ttl_seconds: DEMO_TOKEN_TTL_SECONDS },
      origin,
    );
    return { token: minted.token, conversation_id: conversation.id, agent_id: agentId, expires_at: minted.expires_at, subject };
  }

  private async renew(credential: string, principal: Principal, origin: { principal: Principal; requestId: string; transport: 'rest' }): Promise<DemoVisit> {
    const held = await this.deps.verifyToken(credential);
    const topic = held?.topics?.length === 1 ? held.topics[0]! : '';
    // Only a visitor's token of this demo renews: same account, one conversation, a visitor subject.
    if (!held || held.accountId !== principal.accountId || !held.subject?.startsWith('visitor_') || !topic.startsWith('conversation:')) {
      throw new ApiFailure('INVALID_API_KEY', "Only a demo visit's valid token renews; start a new visit without credentials");
    }
    const conversationId = topic.slice('conversation:'.length);
    const conversation = await this.invoke<{ id: string; agent_id: string }>('conversations.get', { conversation_id: conversationId }, origin);
    const minted = await this.invoke<{ token: string; expires_at: string }>(
      'tokens.create',
      { topics: [topic], permissions: DEMO_TOKEN_PERMISSIONS, subject: held.subject, ttl_seconds: DEMO_TOKEN_TTL_SECONDS },
      origin,
    );
    return { token: minted.token, conversation_id: conversation.id, agent_id: conversation.agent_id, expires_at: minted.expires_at, subject: held.subject };
  }

  private invoke<T>(name: string, input: unknown, origin: { principal: Principal; requestId: string; transport: 'rest' }): Promise<T> {
    return this.deps.operations.invoke(name, input, origin) as Promise<T>;
  }

  /** The account the demo lives in, acting with every permission (it mints the visitors' tokens). */
  private demoPrincipal(): Promise<Principal> {
    this.principal ??= this.findAccount().catch((error: unknown) => {
      this.principal = null;
      throw error;
    });
    return this.principal;
  }

  private async findAccount(): Promise<Principal> {
    const { accounts } = this.deps.store;
    let accountId: string | undefined;
    if (this.deps.configuredKey) accountId = (await accounts.findKeyByHash(hashApiKey(this.deps.configuredKey)))?.account_id;
    const account = accountId ? await accounts.getAccount(accountId) : await accounts.oldestAccount();
    if (!account) throw new ApiFailure('SERVICE_UNAVAILABLE', 'The demo widget has no account to run in yet', { retryable: true });
    return { accountId: account.id, keyId: DEMO_KEY_ID, plan: account.plan, scopes: ['*'], subject: DEMO_KEY_ID };
  }

  /** The oldest agent with the demo name (a worker may have created it first), else a new one. */
  private demoAgent(principal: Principal, requestId: string): Promise<string> {
    this.agentId ??= (async () => {
      const origin = { principal, requestId, transport: 'rest' as const };
      const found = await this.invoke<{ data: { id: string }[] }>('agents.list', { filter: { name: DEMO_AGENT_NAME }, sort: 'created_at', limit: 1 }, origin);
      if (found.data[0]) return found.data[0].id;
      const created = await this.invoke<{ id: string }>(
        'agents.create',
        {
          name: DEMO_AGENT_NAME,
          role: 'demo',
          instructions: 'Answers the chat widget at /widget (see examples/agent-worker.ts).',
          metadata: { source: 'demo_widget' },
        },
        origin,
      );
      return created.id;
    })().catch((error: unknown) => {
      this.agentId = null;
      throw error;
    });
    return this.agentId;
  }
}
