import { createServer, connect, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorEnvelope } from '../../protocol/index.js';
import { availableBackends, POSTGRES_URL } from '../helpers/backends.js';
import { failureOf } from '../helpers/failure.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/redis.js';

/**
 * Issue 16, defect 8: while PostgreSQL is unreachable every write answered 500 INTERNAL_ERROR and
 * logged an error line per request. Now: 503 SERVICE_UNAVAILABLE with a retry hint, one log line
 * when the outage starts and one when it ends. The outage is a TCP proxy in front of the test
 * server being cut (the server itself is shared and keeps running).
 */
const backends = await availableBackends();

class CuttableProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => this.sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  /** Refuses new connections and drops the open ones, as a stopped server does. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

describe.skipIf(!backends.includes('postgres'))('a PostgreSQL outage (defect 8)', () => {
  let t: TestGateway;
  let proxy: CuttableProxy;
  const lines: { level: number; msg: string }[] = [];

  beforeAll(async () => {
    const target = new URL(POSTGRES_URL);
    proxy = new CuttableProxy(await freePort(), { host: target.hostname, port: Number(target.port || 5432) });
    await proxy.open();
    const viaProxy = new URL(POSTGRES_URL);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    t = await startTestGateway('postgres', { DATABASE_URL: viaProxy.toString() }, { log });
  });
  afterAll(async () => {
    await proxy.open();
    await t.stop();
  });

  it('answers 503 SERVICE_UNAVAILABLE with a retry hint on every transport, logs it once, and recovers', async () => {
    const agent = await t.rest.call('agents.create', { name: 'before' });
    const conversation = await t.rest.call('conversations.create', { agent_id: agent.id });
    const socket = await t.connect();
    await proxy.cut();

    for (let i = 0; i < 10; i++) {
      const response = await fetch(`${t.gateway.url}/v1/agents`, {
        method: 'POST',
        headers: { 'x-api-key': t.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `during ${i}` }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('1');
      const envelope = ErrorEnvelope.parse(await response.json());
      expect(envelope.error).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        type: 'service_unavailable',
        retry_after: 1,
        details: { component: 'store', retryable: true },
      });
    }
    // Group-committed writes, reads and WebSocket calls alike.
    const write = await failureOf(t.rest.call('messages.create', { conversation_id: conversation.id, content: 'lost?' }));
    expect([write.status, write.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    expect((await failureOf(t.rest.call('conversations.list', {}))).status).toBe(503);
    expect((await failureOf(socket.call('sessions.create', { agent_id: 'a' }))).code).toBe('SERVICE_UNAVAILABLE');
    expect((await fetch(`${t.gateway.url}/readyz`)).status).toBe(503);

    const outageLines = lines.filter((line) => line.msg.includes('PostgreSQL unreachable'));
    expect(outageLines).toHaveLength(1);
    expect(outageLines[0]!.level).toBe(40);
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);

    await proxy.open();
    let created: unknown = null;
    for (let attempt = 0; attempt < 50 && !created; attempt++) {
      created = await t.rest.call('agents.create', { name: 'after' }).catch(() => null);
      if (!created) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(created).toMatchObject({ name: 'after' });
    expect(lines.filter((line) => line.msg === 'PostgreSQL reachable again')).toHaveLength(1);
    expect((await t.rest.call('agents.list', {})).data.map((a) => a.name).sort()).toEqual(['after', 'before']);
  });
});
