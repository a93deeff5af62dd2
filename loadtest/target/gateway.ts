import { randomBytes } from 'node:crypto';
import { sleep } from '../lib/clock.js';
import { ensureGatewayBuilt, GATEWAY_ENTRY } from './build.js';
import { freePort, requestGc, spawnNodeServer, stopChild } from './child.js';
import { dropSchema } from './services.js';

/** The gateway under test: one started here from dist/ on in-memory PGlite, or one given by URL. */
export interface GatewayTarget {
  httpUrl: string;
  wsUrl: string;
  apiKey: string;
  /** Local process to measure, when known. */
  pid: number | undefined;
  embedded: boolean;
  readiness: Record<string, string>;
  stop(): Promise<void>;
  /** Only for a gateway started here. */
  collectGarbage(): Promise<void>;
}

export interface GatewayOptions {
  url?: string | undefined;
  key?: string | undefined;
  pid?: number | undefined;
  databaseUrl?: string | undefined;
  /** Extra environment for an embedded gateway (e.g. WS_MAX_SUBSCRIPTIONS). */
  env?: Record<string, string>;
  log: (line: string) => void;
}

export class NotNativeError extends Error {}

/** How a gateway runs under load (the load tests and the soak): as deployed, and unthrottled. */
export const UNDER_LOAD_ENV: Record<string, string> = {
  PRINT_BOOTSTRAP_KEY: 'false',
  LOG_LEVEL: 'warn',
  // As deployed: no output validation of every answer (a development-only check).
  NODE_ENV: 'production',
  // Limits meant for one customer's key would measure the limiter, not the gateway: the load
  // generator's key is unlimited and its connections may send as fast as they can.
  RATE_LIMITS_ENABLED: 'false',
  WS_MAX_FRAMES_PER_SECOND: '1000000',
  // Load generators close their connections at the end of each run: no need for a long drain.
  SHUTDOWN_GRACE_MS: '1000',
};

export async function openGateway(options: GatewayOptions): Promise<GatewayTarget> {
  if (options.url) {
    if (!options.key) throw new Error('--url needs --key (an API key of the target gateway)');
    const httpUrl = options.url.replace(/\/$/, '');
    const readiness = await checkReady(httpUrl, 5000);
    return {
      httpUrl,
      wsUrl: `${httpUrl.replace(/^http/, 'ws')}/v1/ws`,
      apiKey: options.key,
      pid: options.pid,
      embedded: false,
      readiness,
      stop: async () => {},
      collectGarbage: async () => {},
    };
  }
  ensureGatewayBuilt(options.log);
  const port = await freePort();
  const apiKey = `sg_load_${randomBytes(16).toString('hex')}`;
  const schema = options.databaseUrl ? `load_${randomBytes(4).toString('hex')}` : null;
  const child = spawnNodeServer(GATEWAY_ENTRY, {
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: 'memory://',
    STATEGATE_API_KEY: apiKey,
    ...UNDER_LOAD_ENV,
    ...(options.databaseUrl && schema ? { DATABASE_URL: options.databaseUrl, DATABASE_SCHEMA: schema } : {}),
    ...options.env,
  });
  const httpUrl = `http://127.0.0.1:${port}`;
  // The run's tables go with the gateway: a benchmark database does not fill up with old runs.
  const stop = async () => {
    await stopChild(child);
    if (options.databaseUrl && schema)
      await dropSchema(options.databaseUrl, schema).catch((error: unknown) => options.log(`  could not drop schema ${schema}: ${String(error)}`));
  };
  try {
    const readiness = await checkReady(httpUrl, 60_000, () => child.exitCode !== null);
    return {
      httpUrl,
      wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
      apiKey,
      pid: child.pid,
      embedded: true,
      readiness,
      stop,
      collectGarbage: () => requestGc(child),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Waits for /readyz and refuses a gateway whose uWS is the JavaScript fallback. */
async function checkReady(httpUrl: string, timeoutMs: number, exited: () => boolean = () => false): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (exited()) throw new Error('the gateway exited during start-up (see its output above)');
    try {
      const response = await fetch(`${httpUrl}/readyz`);
      const body = (await response.json()) as { status?: string; checks?: Record<string, string> };
      if (body.status === 'ready' && body.checks) {
        if (body.checks.uws !== 'native')
          throw new NotNativeError(`the gateway at ${httpUrl} runs uWS "${body.checks.uws}", not native: refusing to report benchmark numbers`);
        return body.checks;
      }
      last = JSON.stringify(body);
    } catch (error) {
      if (error instanceof NotNativeError) throw error;
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(100);
  }
  throw new Error(`the gateway at ${httpUrl} was not ready within ${timeoutMs} ms (${last})`);
}
