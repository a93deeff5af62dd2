import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ErrorEnvelope } from '../protocol/index.js';
import { ApiError } from '../clients/index.js';
import { MemoryRateLimiter, quotaFor, RedisRateLimiter, type RateLimiter } from '../src/limits/index.js';
import { availableBackends } from './helpers/backends.js';
import { failureOf } from './helpers/failure.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { connectTestRedis } from './helpers/redis.js';

const backends = await availableBackends();
const redis = await connectTestRedis();
afterAll(() => redis?.quit());

/** A clock tests move by hand; Redis keeps its own time for expiry, so only the memory limiter uses it. */
function manualClock(start = Date.UTC(2024, 0, 15, 10, 0, 0)) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const limiters: [string, (() => RateLimiter) | null][] = [
  ['memory', () => new MemoryRateLimiter()],
  ['redis', redis ? () => new RedisRateLimiter(redis, { prefix: `sg:test:${randomBytes(4).toString('hex')}:` }) : null],
];

describe.each(limiters)('%s rate limiter', (_name, make) => {
  const subject = () => `key_${randomBytes(6).toString('hex')}`;

  it.skipIf(!make)('admits the per-minute budget and refuses the next, without counting refusals', async () => {
    const limiter = make!();
    const key = subject();
    const decisions = [];
    for (let i = 0; i < 12; i++) decisions.push(await limiter.consume(key, { perMinute: 10, perDay: 1000 }));
    expect(decisions.slice(0, 10).every((d) => d.allowed)).toBe(true);
    expect(decisions.map((d) => d.remaining).slice(0, 10)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const refused = decisions[10]!;
    expect(refused).toMatchObject({ allowed: false, window: 'minute', limit: 10, remaining: 0 });
    const nowSeconds = Date.now() / 1000;
    expect(refused.resetAt).toBeGreaterThan(nowSeconds);
    expect(refused.resetAt).toBeLessThanOrEqual(Math.ceil(nowSeconds) + 60);
    expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfter).toBeLessThanOrEqual(60);
    // Another key has its own budget.
    expect((await limiter.consume(subject(), { perMinute: 10, perDay: 1000 })).remaining).toBe(9);
    await limiter.close();
  });

  it.skipIf(!make)('enforces the daily quota and reports it when it is the tighter one', async () => {
    const limiter = make!();
    const key = subject();
    const quota = { perMinute: 100, perDay: 5 };
    const decisions = [];
    for (let i = 0; i < 6; i++) decisions.push(await limiter.consume(key, quota));
    expect(decisions[0]).toMatchObject({ allowed: true, window: 'day', limit: 5, remaining: 4 });
    expect(decisions[5]).toMatchObject({ allowed: false, window: 'day', limit: 5, remaining: 0 });
    const endOfDay = Math.ceil(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) / 1000);
    expect(Math.abs(decisions[5]!.resetAt - endOfDay)).toBeLessThanOrEqual(2);
    await limiter.close();
  });

  it.skipIf(!make)('counts concurrent requests exactly', async () => {
    const limiter = make!();
    const key = subject();
    const decisions = await Promise.all(Array.from({ length: 60 }, () => limiter.consume(key, { perMinute: 25, perDay: null })));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(25);
    await limiter.close();
  });
});

describe('memory rate limiter windows', () => {
  it('opens a new minute window 60 s after the first request of the last one, and a new day at UTC midnight', async () => {
    const clock = manualClock(Date.UTC(2024, 0, 15, 23, 58, 0));
    const limiter = new MemoryRateLimiter(clock.now);
    const quota = { perMinute: 2, perDay: 3 };
    expect(limiter.consumeNow('k', quota).allowed).toBe(true);
    clock.advance(30_000);
    expect(limiter.consumeNow('k', quota).allowed).toBe(true);
    const refused = limiter.consumeNow('k', quota);
    expect(refused).toMatchObject({ allowed: false, window: 'minute', retryAfter: 30, resetAt: Date.UTC(2024, 0, 15, 23, 59) / 1000 });
    clock.advance(30_000);
    // A new minute, but the day's 3 are now used up: the day refuses, until UTC midnight.
    expect(limiter.consumeNow('k', quota)).toMatchObject({ allowed: true, window: 'day', remaining: 0 });
    expect(limiter.consumeNow('k', quota)).toMatchObject({ allowed: false, window: 'day', retryAfter: 60, resetAt: Date.UTC(2024, 0, 16) / 1000 });
    clock.advance(60_000);
    // Past midnight UTC: a fresh day.
    expect(limiter.consumeNow('k', quota)).toMatchObject({ allowed: true, remaining: 1, window: 'minute' });
    clock.advance(2 * 86_400_000);
    limiter.sweep();
    expect(limiter.size).toBe(0);
    await limiter.close();
  });

  it('maps both documents’ plans, and the Enterprise override with its ceiling', () => {
    expect(quotaFor({ plan: 'starter' })).toEqual({ perMinute: 100, perDay: 10_000 });
    expect(quotaFor({ plan: 'free' })).toEqual({ perMinute: 100, perDay: 10_000 });
    expect(quotaFor({ plan: 'growth' })).toEqual({ perMinute: 1_000, perDay: 100_000 });
    expect(quotaFor({ plan: 'pro' })).toEqual({ perMinute: 1_000, perDay: 100_000 });
    expect(quotaFor({ plan: 'enterprise', limits: { perMinute: 5_000, perDay: null } })).toEqual({ perMinute: 5_000, perDay: null });
    expect(quotaFor({ plan: 'enterprise', limits: { perMinute: 50_000, perDay: null } }).perMinute).toBe(10_000);
    expect(quotaFor({ plan: 'mystery' })).toEqual({ perMinute: 100, perDay: 10_000 });
  });
});

describe.each(backends)('rate limits over REST and WebSocket on %s', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway(backend);
  });
  afterAll(() => t.stop());

  it('refuses the 101st request in a minute on a Starter key with 429, the document’s body and headers', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const responses = [];
    for (let i = 0; i < 100; i++) {
      const response = await fetch(`${t.gateway.url}/v1/agents?limit=1`, { headers: { authorization: `Bearer ${starter.apiKey}` } });
      responses.push({ status: response.status, headers: response.headers });
      await response.arrayBuffer();
    }
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(responses[0]!.headers.get('x-ratelimit-limit')).toBe('100');
    expect(responses[0]!.headers.get('x-ratelimit-remaining')).toBe('99');
    expect(responses[99]!.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(responses[0]!.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 60);

    const refused = await fetch(`${t.gateway.url}/v1/agents?limit=1`, { headers: { authorization: `Bearer ${starter.apiKey}` } });
    expect(refused.status).toBe(429);
    const envelope = ErrorEnvelope.parse(await refused.json());
    expect(envelope.error).toMatchObject({ code: 'RATE_LIMITED', type: 'rate_limit_exceeded' });
    expect(envelope.error.retry_after).toBeGreaterThanOrEqual(1);
    expect(envelope.error.retry_after).toBeLessThanOrEqual(60);
    expect(envelope.error.message).toBe(`Rate limit exceeded. Please retry after ${envelope.error.retry_after} seconds.`);
    expect(refused.headers.get('retry-after')).toBe(String(envelope.error.retry_after));
    expect(refused.headers.get('x-ratelimit-limit')).toBe('100');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset')).toBe(String(reset));

    // The WebSocket shares the key's budget: already spent, so its call is refused the same way.
    const socket = await t.connect({ apiKey: starter.apiKey });
    const error = await failureOf(socket.call('agents.list', {}));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.type).toBe('rate_limit_exceeded');
  });

  it('counts WebSocket calls against the same budget as REST', async () => {
    const starter = await t.newAccount({ plan: 'starter' });
    const socket = await t.connect({ apiKey: starter.apiKey });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => socket.call('agents.list', { limit: 1 })));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    // The raw frame carries retry_after, as the REST body does.
    const frames: Record<string, any>[] = [];
    const raw = new Promise<Record<string, any>>((resolve) => {
      const ws = new WebSocket(`${t.gateway.wsUrl}?api_key=${starter.apiKey}`);
      ws.on('message', (data: Buffer) => {
        const frame = JSON.parse(data.toString()) as Record<string, any>;
        frames.push(frame);
        if (frame.type === 'welcome') ws.send(JSON.stringify({ type: 'call', id: 7, method: 'agents.list', params: {} }));
        if (frame.type === 'error') {
          resolve(frame);
          ws.close();
        }
      });
    });
    const frame = await raw;
    expect(frame).toMatchObject({ type: 'error', id: 7, error: { code: 'RATE_LIMITED', type: 'rate_limit_exceeded' } });
    expect(frame.error.retry_after).toBeGreaterThanOrEqual(1);
    const rest = await fetch(`${t.gateway.url}/v1/agents`, { headers: { 'x-api-key': starter.apiKey } });
    expect(rest.status).toBe(429);
  });

  it('applies an Enterprise account’s own per-minute limit', async () => {
    const enterprise = await t.newAccount({ plan: 'enterprise' });
    await t.gateway.store.accounts.setRateLimits(enterprise.accountId, { perMinute: 3, perDay: null });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await enterprise.rest.request('GET', '/v1/agents')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    await expect(t.gateway.store.accounts.setRateLimits(enterprise.accountId, { perMinute: 20_000, perDay: null })).rejects.toThrow();
  });
});

describe.skipIf(!redis)('gateway with a Redis rate limiter', () => {
  it('shares one budget between two gateways given the same Redis', async () => {
    const first = await startTestGateway('pglite', {}, { redis: redis! });
    const second = await startTestGateway('pglite', {}, { redis: redis! });
    try {
      const account = await first.newAccount({ plan: 'enterprise' });
      await first.gateway.store.accounts.setRateLimits(account.accountId, { perMinute: 4, perDay: null });
      // The same key (same key id) exists only in the first gateway's store: copy it to the second.
      const record = await first.gateway.store.accounts.findKeyByHash((await import('../src/auth/keys.js')).hashApiKey(account.apiKey));
      await second.gateway.store.accounts.createAccount({ id: account.accountId, name: 'copy', plan: 'enterprise' });
      await second.gateway.store.accounts.setRateLimits(account.accountId, { perMinute: 4, perDay: null });
      await second.gateway.store.accounts.insertKey({
        id: record!.id,
        accountId: account.accountId,
        hash: (await import('../src/auth/keys.js')).hashApiKey(account.apiKey),
        hint: 'x',
        name: null,
        scopes: ['*'],
      });
      const statuses = [];
      for (const gateway of [first, second, first, second, first]) {
        statuses.push((await fetch(`${gateway.gateway.url}/v1/agents`, { headers: { 'x-api-key': account.apiKey } })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 429]);
    } finally {
      await first.stop();
      await second.stop();
    }
    // Two embedded stores start here: slow on a busy machine.
  }, 120_000);
});
