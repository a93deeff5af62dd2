import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { Encoding } from '../../protocol/index.js';
import { GatewaySocket, RestClient, type WebSocketConstructor } from '../../clients/index.js';
import { startGateway, type Gateway } from '../../src/app.js';
import { createAccount, type Plan } from '../../src/auth/provisioning.js';
import { loadConfig, type Env } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { dropSchema, POSTGRES_URL, type Backend } from './backends.js';

export interface TestGateway {
  gateway: Gateway;
  backend: Backend;
  /** The PostgreSQL schema holding this gateway's tables (postgres backend). */
  schema: string;
  apiKey: string;
  accountId: string;
  rest: RestClient;
  /** REST client for a second, unrelated account. */
  /** Accounts are Enterprise (10,000 requests a minute) unless a plan is named, so suites are not rate limited by accident. */
  newAccount(options?: { scopes?: string[]; plan?: Plan }): Promise<{ apiKey: string; accountId: string; rest: RestClient }>;
  connect(options?: { apiKey?: string; encoding?: Encoding }): Promise<GatewaySocket>;
  stop(): Promise<void>;
}

/** A gateway on a free port, on a fresh in-memory PGlite or a fresh schema of the test PostgreSQL. */
export async function startTestGateway(backend: Backend, env: Env = {}, options: { redis?: Redis; log?: Logger } = {}): Promise<TestGateway> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: 'memory://',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PRINT_BOOTSTRAP_KEY: 'false',
    ...(backend === 'postgres' ? { DATABASE_URL: POSTGRES_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '4' } : {}),
    ...env,
  });
  const gateway = await startGateway(config, { log: options.log ?? createLogger(config.logLevel), ...(options.redis ? { redis: options.redis } : {}) });
  const issued = await createAccount(gateway.store, { name: 'test', plan: 'enterprise' });
  const restFor = (apiKey: string) => new RestClient({ baseUrl: gateway.url, apiKey });
  const sockets = new Set<GatewaySocket>();

  return {
    gateway,
    backend,
    schema,
    apiKey: issued.key,
    accountId: issued.accountId,
    rest: restFor(issued.key),
    async newAccount(options = {}) {
      const other = await createAccount(gateway.store, {
        name: 'other',
        plan: options.plan ?? 'enterprise',
        ...(options.scopes ? { scopes: options.scopes } : {}),
      });
      return { apiKey: other.key, accountId: other.accountId, rest: restFor(other.key) };
    },
    async connect(options = {}) {
      const socket = await GatewaySocket.connect({
        url: gateway.wsUrl,
        apiKey: options.apiKey ?? issued.key,
        encoding: options.encoding ?? 'json',
        WebSocket: WebSocket as unknown as WebSocketConstructor,
      });
      sockets.add(socket);
      return socket;
    },
    async stop() {
      for (const socket of sockets) if (socket.isOpen) await socket.close();
      await gateway.stop();
      if (backend === 'postgres') {
        await dropSchema(schema);
      }
    },
  };
}
