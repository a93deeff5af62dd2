import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { GatewaySocket, RestClient, type WebSocketConstructor } from '../../clients/index.js';
import { dropSchema, POSTGRES_URL } from './backends.js';
import { deleteKeys, freePort } from './redis.js';

/**
 * Several gateway processes (`node --import tsx src/main.ts`) sharing one PostgreSQL schema and
 * one Redis, as in a real multi-node deployment. Ports are picked free beforehand (PORT=0 would
 * not tell us which one a process got). Each process's output is kept for failure messages.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface NodeOptions {
  count: number;
  /** Unset: each node runs the in-process bus (only meaningful with count 1). */
  redisUrl?: string | undefined;
  /** Extra environment for every node. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export class GatewayNode {
  private child: ChildProcess | null = null;
  private output = '';

  constructor(
    readonly index: number,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** The last lines the process wrote (stdout and stderr). */
  get log(): string {
    return this.output.slice(-4000);
  }

  async start(readyTimeoutMs: number): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', () => {
      live.delete(child);
      if (this.child === child) this.child = null;
    });
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.child) throw new Error(`gateway node ${this.index} exited during start-up:\n${this.log}`);
      if ((await this.readyz().catch(() => null))?.status === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.stop();
    throw new Error(`gateway node ${this.index} not ready after ${readyTimeoutMs} ms:\n${this.log}`);
  }

  async readyz(): Promise<{ status: number; body: { status?: string; checks?: Record<string, string> } }> {
    const response = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
    return { status: response.status, body: (await response.json()) as { status?: string; checks?: Record<string, string> } };
  }

  /** SIGKILL: no drain, no flush, as a crash. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM (drain), then SIGKILL if it has not exited after `timeoutMs`; resolves to the exit code. */
  async stop(timeoutMs = 8000): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

export class GatewayNodes {
  readonly apiKey = `sg_test_${randomBytes(16).toString('hex')}`;
  private readonly sockets = new Set<GatewaySocket>();

  private constructor(
    readonly nodes: GatewayNode[],
    readonly schema: string,
    private readonly redisUrl: string | undefined,
  ) {}

  get keyPrefix(): string {
    return `sgtest:${this.schema}:`;
  }

  static async start(options: NodeOptions): Promise<GatewayNodes> {
    const schema = `t_nodes_${randomBytes(5).toString('hex')}`;
    const ports: number[] = [];
    while (ports.length < options.count) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    const cluster = new GatewayNodes([], schema, options.redisUrl);
    const env = {
      HOST: '127.0.0.1',
      DATABASE_URL: POSTGRES_URL,
      DATABASE_SCHEMA: schema,
      DATABASE_POOL_SIZE: '3',
      REDIS_URL: options.redisUrl ?? '', // empty counts as unset
      REDIS_KEY_PREFIX: cluster.keyPrefix,
      STATEGATE_API_KEY: cluster.apiKey,
      PRINT_BOOTSTRAP_KEY: 'false',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      SHUTDOWN_GRACE_MS: '2000',
      NODE_ENV: 'test',
      ...options.env,
    };
    cluster.nodes.push(...ports.map((port, index) => new GatewayNode(index, port, env)));
    const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
    try {
      // The first node migrates the schema and creates the account; the others then start together.
      await cluster.nodes[0]!.start(readyTimeoutMs);
      await Promise.all(cluster.nodes.slice(1).map((node) => node.start(readyTimeoutMs)));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  node(index: number): GatewayNode {
    const node = this.nodes[index];
    if (!node) throw new Error(`no node ${index}`);
    return node;
  }

  rest(index: number): RestClient {
    return new RestClient({ baseUrl: this.node(index).url, apiKey: this.apiKey });
  }

  async connect(index: number): Promise<GatewaySocket> {
    const socket = await GatewaySocket.connect({
      url: this.node(index).wsUrl,
      apiKey: this.apiKey,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
    });
    this.sockets.add(socket);
    return socket;
  }

  /** Stops every node (SIGTERM), closes the test's sockets, drops the shared schema and Redis keys. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) if (socket.isOpen) await socket.close().catch(() => {});
    await Promise.all(this.nodes.map((node) => node.stop()));
    // On a single server the keys outlive the run; a test cluster is thrown away whole.
    if (this.redisUrl && !this.redisUrl.includes('+cluster')) await deleteKeys(this.redisUrl, this.keyPrefix).catch(() => {});
    await dropSchema(this.schema);
  }
}

// Never leave a gateway behind, even when a suite dies half-way.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
