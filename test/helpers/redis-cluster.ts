import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, RedisProcess } from './redis.js';

/**
 * A real Redis Cluster of three primaries (no replicas) on loopback, from redis-server binaries,
 * for the duration of a suite. Ports are picked free (each with its cluster bus port, +10000).
 */
export class LocalRedisCluster {
  private constructor(readonly nodes: RedisProcess[]) {}

  /** redis+cluster:// URL with every node as a seed. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`;
  }

  static async start(options: { primaries?: number; timeoutMs?: number } = {}): Promise<LocalRedisCluster> {
    const count = options.primaries ?? 3;
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    const ports: number[] = [];
    while (ports.length < count) {
      const port = await freePort(10_000);
      if (!ports.includes(port)) ports.push(port);
    }
    const nodes = ports.map(
      (port) => new RedisProcess(port, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']),
    );
    const cluster = new LocalRedisCluster(nodes);
    try {
      await Promise.all(nodes.map((node) => node.start()));
      await redisCli(['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], deadline);
      await cluster.waitUntilHealthy(deadline);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.destroy()));
  }

  /** Every node says cluster_state:ok and knows all slots. */
  private async waitUntilHealthy(deadline: number): Promise<void> {
    while (Date.now() < deadline) {
      const states = await Promise.all(this.nodes.map((node) => clusterInfo(node.port).catch(() => '')));
      if (states.every((info) => info.includes('cluster_state:ok') && info.includes('cluster_slots_assigned:16384'))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('Redis cluster did not become healthy in time');
  }
}

async function clusterInfo(port: number): Promise<string> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.cluster('INFO');
  } finally {
    client.disconnect();
  }
}

function redisCli(args: string[], deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.REDIS_CLI_BIN ?? 'redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, deadline - Date.now()));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed (${code}): ${output.slice(-500)}`));
    });
  });
}
