import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REST_OPERATION_NAMES } from '../protocol/operations.js';
import { StateSetClient, StateSetError } from '../clients/sdk/index.js';
import { buildSdk, nodeImportsOf, ROUTES_FILE, routesSource } from '../scripts/build-sdk.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

// ---------- a scripted gateway on loopback, for what a real one does not do on demand ----------

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}
type Reply = (res: ServerResponse) => void;

const envelope = (data: unknown) =>
  JSON.stringify({ success: true, data, meta: { request_id: 'req_ok', timestamp: new Date().toISOString(), version: 'v1', execution_time_ms: 1 } });
const failure = (code: string, type: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    success: false,
    error: { code, type, message: `${code} here`, ...extra },
    meta: { request_id: 'req_fail', timestamp: '', documentation_url: '' },
  });

function reply(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body);
  };
}
/** Never answers (the time-out tests); the socket is destroyed when the client gives up. */
const hang: Reply = () => {};

class Scripted {
  readonly seen: Seen[] = [];
  private script: Reply[] = [];
  private fallback: Reply = reply(200, envelope({ ok: true }));
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString(), at: performance.now() });
        (this.script.shift() ?? this.fallback)(res);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next answers, in order; then `fallback` for every later request. */
  answer(replies: Reply[], fallback: Reply = reply(200, envelope({ ok: true }))): void {
    this.seen.length = 0;
    this.script = [...replies];
    this.fallback = fallback;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function rejection(promise: PromiseLike<unknown>): Promise<StateSetError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StateSetError);
    return error as StateSetError;
  }
  throw new Error('expected a rejection');
}

let gw: TestGateway;
const scripted = new Scripted();

beforeAll(async () => {
  gw = await startTestGateway('pglite');
  await scripted.start();
});

afterAll(async () => {
  await scripted.stop();
  await gw?.stop();
});

const realClient = (options: Partial<ConstructorParameters<typeof StateSetClient>[0]> = {}) =>
  new StateSetClient({ apiKey: gw.apiKey, baseURL: gw.gateway.url, ...options });

describe('SDK: methods from the operation table', () => {
  it('has one method per REST operation, grouped by the name before the dot, and its route table is current', async () => {
    const client = realClient() as unknown as Record<string, Record<string, unknown>>;
    for (const name of REST_OPERATION_NAMES) {
      const [group, method] = name.split('.') as [string, string];
      expect(typeof client[group]?.[method], name).toBe('function');
    }
    expect(REST_OPERATION_NAMES.length).toBeGreaterThan(60);
    expect(await readFile(new URL(`../${ROUTES_FILE}`, import.meta.url), 'utf8')).toBe(routesSource());
  });

  it('creates, gets, updates and deletes an agent on a real gateway, with a /v1 base URL as the document writes it', async () => {
    const client = new StateSetClient({ apiKey: gw.apiKey, baseURL: `${gw.gateway.url}/v1` });
    const agent = await client.agents.create({ name: 'Support Agent', role: 'Customer Success' });
    expect(agent).toMatchObject({ name: 'Support Agent', role: 'Customer Success' });
    expect(agent.id).toMatch(/^agent_/);
    expect(await client.agents.get({ agent_id: agent.id })).toEqual(agent);
    const updated = await client.agents.update({ agent_id: agent.id, name: 'Renamed' });
    expect(updated.name).toBe('Renamed');
    expect(await client.agents.delete({ agent_id: agent.id })).toEqual({ id: agent.id, deleted: true });
  });

  it('pages through every agent with for await, following next_cursor with the same filter and sort', async () => {
    const account = await gw.newAccount();
    const client = new StateSetClient({ apiKey: account.apiKey, baseURL: gw.gateway.url });
    const created: string[] = [];
    for (let i = 0; i < 7; i++) created.push((await client.agents.create({ name: `agent ${i}`, role: 'r' })).id);

    const first = await client.agents.list({ limit: 3, sort: 'created_at' });
    expect(first.data.map((agent) => agent.id)).toEqual(created.slice(0, 3));
    expect(first.has_more).toBe(true);
    expect(typeof first.next_cursor).toBe('string');
    expect(JSON.parse(JSON.stringify(first))).toEqual({ data: first.data, has_more: true, next_cursor: first.next_cursor });

    const second = await first.nextPage();
    expect(second!.data.map((agent) => agent.id)).toEqual(created.slice(3, 6));

    const all: string[] = [];
    for await (const agent of client.agents.list({ limit: 3, sort: 'created_at' })) all.push(agent.id);
    expect(all).toEqual(created);

    // Newest first (the default sort), from an awaited page as well.
    const newest: string[] = [];
    for await (const agent of await client.agents.list({ limit: 2 })) newest.push(agent.id);
    expect(newest).toEqual([...created].reverse());

    // A list with a path value: a conversation's messages, oldest first.
    const conversation = await client.conversations.create({ agent_id: created[0]!, channel: 'web' });
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push((await client.messages.create({ conversation_id: conversation.id, role: 'user', content: `m${i}` })).id);
    const messages: string[] = [];
    for await (const message of client.messages.list({ conversation_id: conversation.id, limit: 2 })) messages.push(message.id);
    expect(messages).toEqual(sent);
  });

  it('throws typed errors carrying the StateSet code, the StateBase name, details, status and request id', async () => {
    const client = realClient();
    const missing = await rejection(client.agents.get({ agent_id: 'agent_nope' }));
    expect(missing).toMatchObject({ code: 'RESOURCE_NOT_FOUND', type: 'agent_not_found', status: 404 });
    expect(missing.requestId).toMatch(/^req_/);

    const invalid = await rejection(client.agents.create({ name: '', role: 'r' }));
    expect(invalid).toMatchObject({ code: 'VALIDATION_ERROR', type: 'invalid_request', status: 400 });
    expect(invalid.details).toBeDefined();

    const wrongKey = await rejection(new StateSetClient({ apiKey: 'sg_live_wrong', baseURL: gw.gateway.url, maxRetries: 0 }).agents.list());
    expect(wrongKey).toMatchObject({ code: 'INVALID_API_KEY', status: 401, retryable: false });

    // The types come from the operation table: a required input cannot be left out...
    // @ts-expect-error agent_id is required
    const typed = () => client.agents.get();
    expect(typeof typed).toBe('function');
    // ...and a path value left out anyway is refused before any request.
    const noId = await rejection(client.agents.get({} as { agent_id: string }));
    expect(noId).toMatchObject({ code: 'VALIDATION_ERROR', param: 'agent_id', status: undefined });
  });

  it('retries a POST whose answer was lost with the same Idempotency-Key: the gateway applies it once', async () => {
    const account = await gw.newAccount();
    let attempts = 0;
    const keys: (string | null)[] = [];
    const lossy: typeof fetch = async (input, init) => {
      attempts++;
      keys.push(new Headers(init?.headers).get('idempotency-key'));
      const response = await fetch(input, init);
      // The first answer is lost on the way back, after the gateway committed the write.
      if (attempts === 1) {
        await response.text();
        throw new TypeError('fetch failed: connection reset');
      }
      return response;
    };
    const client = new StateSetClient({ apiKey: account.apiKey, baseURL: gw.gateway.url, fetch: lossy, initialRetryDelay: 20 });
    const agent = await client.agents.create({ name: 'Once', role: 'r' });
    expect(attempts).toBe(2);
    expect(keys[0]).toMatch(/^sdk_/);
    expect(keys[1]).toBe(keys[0]);
    const page = await account.rest.call('agents.list', {});
    expect(page.data.map((a) => a.id)).toEqual([agent.id]);

    // A second logical POST gets a key of its own.
    await client.agents.create({ name: 'Twice', role: 'r' });
    expect(keys[2]).not.toBe(keys[0]);
  });
});

describe('SDK: retries, time-outs and errors against a scripted server', () => {
  const client = (options: Partial<ConstructorParameters<typeof StateSetClient>[0]> = {}) =>
    new StateSetClient({ apiKey: 'sg_test_key', baseURL: scripted.url, ...options });

  it('retries a 429 after the Retry-After it names, with the same Idempotency-Key', async () => {
    scripted.answer(
      [reply(429, failure('RATE_LIMITED', 'rate_limit_exceeded', { retry_after: 1 }), { 'retry-after': '1' })],
      reply(201, envelope({ id: 'agent_1' })),
    );
    const started = performance.now();
    const agent = await client().agents.create({ name: 'a', role: 'r' });
    const elapsed = performance.now() - started;
    expect(agent).toEqual({ id: 'agent_1' });
    expect(scripted.seen).toHaveLength(2);
    expect(scripted.seen.map((s) => s.method)).toEqual(['POST', 'POST']);
    const [first, second] = scripted.seen as [Seen, Seen];
    expect(first.headers['idempotency-key']).toMatch(/^sdk_/);
    expect(second.headers['idempotency-key']).toBe(first.headers['idempotency-key']);
    expect(JSON.parse(second.body)).toEqual({ name: 'a', role: 'r' });
    expect(first.headers.authorization).toBe('Bearer sg_test_key');
    // Waited for the second the gateway asked, plus at most 10 % jitter.
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
    expect(second.at - first.at).toBeLessThan(1_600);
    expect(elapsed).toBeLessThan(2_500);
  });

  it('honours the Retry-After header when the body names no wait', async () => {
    scripted.answer([reply(429, '{"error":"slow down"}', { 'retry-after': '1' })]);
    await client().agents.list();
    const [first, second] = scripted.seen as [Seen, Seen];
    expect(scripted.seen).toHaveLength(2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
    expect(second.at - first.at).toBeLessThan(1_600);
  });

  it('retries a 503 with exponential backoff, then answers', async () => {
    scripted.answer(
      [reply(503, failure('SERVICE_UNAVAILABLE', 'service_unavailable')), reply(503, failure('SERVICE_UNAVAILABLE', 'service_unavailable'))],
      reply(201, envelope({ id: 'msg_1' })),
    );
    const message = await client({ initialRetryDelay: 100 }).messages.create({ conversation_id: 'conv_1', role: 'user', content: 'hi' });
    expect(message).toEqual({ id: 'msg_1' });
    expect(scripted.seen).toHaveLength(3);
    const [a, b, c] = scripted.seen as [Seen, Seen, Seen];
    expect(new Set(scripted.seen.map((s) => s.headers['idempotency-key'])).size).toBe(1);
    // Equal jitter: 50-100 ms, then 100-200 ms.
    expect(b.at - a.at).toBeGreaterThanOrEqual(45);
    expect(b.at - a.at).toBeLessThan(400);
    expect(c.at - b.at).toBeGreaterThanOrEqual(95);
    expect(c.at - b.at).toBeLessThan(500);
  });

  it('never retries a 400 or a 404, and throws their typed error', async () => {
    scripted.answer([reply(400, failure('VALIDATION_ERROR', 'invalid_request', { param: 'name', details: { name: 'required' } }))]);
    const error = await rejection(client().agents.create({ name: 'a', role: 'r' }));
    expect(scripted.seen).toHaveLength(1);
    expect(error).toMatchObject({
      code: 'VALIDATION_ERROR',
      type: 'invalid_request',
      param: 'name',
      details: { name: 'required' },
      status: 400,
      requestId: 'req_fail',
      message: 'VALIDATION_ERROR here',
      retryable: false,
    });

    scripted.answer([reply(404, failure('RESOURCE_NOT_FOUND', 'agent_not_found'))]);
    await rejection(client().agents.get({ agent_id: 'agent_x' }));
    expect(scripted.seen).toHaveLength(1);
    expect(scripted.seen[0]!.url).toBe('/v1/agents/agent_x');
    expect(scripted.seen[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('gives up after maxRetries with the last error, and a 429 asking for too long a wait is thrown at once', async () => {
    scripted.answer([], reply(500, failure('INTERNAL_ERROR', 'internal_error')));
    const error = await rejection(client({ maxRetries: 2, initialRetryDelay: 10 }).agents.list());
    expect(error).toMatchObject({ code: 'INTERNAL_ERROR', status: 500, retryable: true });
    expect(scripted.seen).toHaveLength(3);

    scripted.answer([reply(429, failure('RATE_LIMITED', 'rate_limit_exceeded', { retry_after: 120 }))]);
    const started = performance.now();
    const limited = await rejection(client().agents.list());
    expect(performance.now() - started).toBeLessThan(500);
    expect(scripted.seen).toHaveLength(1);
    expect(limited).toMatchObject({ code: 'RATE_LIMITED', status: 429, retryAfter: 120, retry_after: 120 });

    // A proxy's page instead of the envelope is still a typed, retried error.
    scripted.answer([reply(502, '<html>bad gateway</html>', { 'content-type': 'text/html' })]);
    expect(await client({ initialRetryDelay: 10 }).agents.list()).toEqual({ ok: true });
    expect(scripted.seen).toHaveLength(2);
  });

  it('times out an attempt with AbortController, retries it, then throws TIMEOUT', async () => {
    scripted.answer([], hang);
    const started = performance.now();
    const error = await rejection(client({ timeout: 200, maxRetries: 1, initialRetryDelay: 10 }).agents.create({ name: 'a', role: 'r' }));
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ code: 'TIMEOUT', status: undefined, retryable: true });
    expect(scripted.seen).toHaveLength(2);
    expect(scripted.seen[1]!.headers['idempotency-key']).toBe(scripted.seen[0]!.headers['idempotency-key']);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(2_000);

    // A per-call timeout overrides the client's; the caller's signal aborts without retrying.
    scripted.answer([], hang);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await rejection(client({ timeout: 10_000 }).agents.list({}, { signal: controller.signal }));
    expect(aborted.code).toBe('ABORTED');
    expect(scripted.seen).toHaveLength(1);
  });

  it('retries network errors and then throws CONNECTION_ERROR', async () => {
    let attempts = 0;
    const refused: typeof fetch = async (input, init) => {
      attempts++;
      return fetch(input, init);
    };
    // A port nobody listens on: the scripted server's, after a fresh one took another port.
    const closed = new Scripted();
    await closed.start();
    const url = closed.url;
    await closed.stop();
    const error = await rejection(new StateSetClient({ apiKey: 'k', baseURL: url, fetch: refused, maxRetries: 2, initialRetryDelay: 10 }).agents.list());
    expect(error).toMatchObject({ code: 'CONNECTION_ERROR', status: undefined, retryable: true });
    expect(attempts).toBe(3);
  });
});

describe('SDK: the browser bundle', () => {
  it('is one ES module without Node built-ins, and works as the SDK does', async () => {
    const outfile = join(tmpdir(), `stategate-sdk-${process.pid}.js`);
    const { metafile } = await buildSdk({ outfile });
    expect(nodeImportsOf(metafile)).toEqual([]);
    const inputs = Object.keys(metafile.inputs);
    expect(inputs).toContain('clients/sdk/index.ts');
    // No schemas, no server: only the SDK, the socket clients, the error table, codecs and close
    // codes of the contract, and msgpackr's browser build.
    expect(inputs.filter((input) => !input.startsWith('clients/sdk/') && !input.includes('node_modules/msgpackr/')).sort()).toEqual([
      'clients/client.ts',
      'clients/deferred.ts',
      'clients/resilient-client.ts',
      'clients/resilient-contract.ts',
      'protocol/close-codes.ts',
      'protocol/codec.ts',
      'protocol/connection.ts',
      'protocol/errors.ts',
    ]);
    // msgpackr's browser build (index.js), not its Node build (node-index.js, dist/node.cjs).
    const msgpackr = inputs.filter((input) => input.includes('node_modules/msgpackr/')).map((input) => input.split('msgpackr/')[1]);
    expect(msgpackr).toContain('index.js');
    expect(msgpackr.filter((file) => file!.startsWith('node') || file!.endsWith('.cjs'))).toEqual([]);
    const text = await readFile(outfile, 'utf8');
    expect(text).not.toMatch(/\bfrom\s*["'](node:|[a-z])/);
    expect(text).not.toMatch(/\brequire\s*\(/);
    expect(text).not.toMatch(/\bprocess\./);
    // Our modules never touch Buffer (esbuild heads each module with its path); msgpackr's browser
    // build uses it only where it exists (`typeof Buffer !== "undefined"`).
    const ours = text.split(/^(?=\/\/ \S+\.[jt]s$)/m).filter((module) => !module.includes('node_modules/msgpackr/'));
    expect(ours.length).toBeGreaterThan(8);
    for (const module of ours) expect(module).not.toMatch(/\bBuffer\b/);

    const bundled = (await import(pathToFileURL(outfile).href)) as typeof import('../clients/sdk/index.js');
    const client = new bundled.StateSetClient({ apiKey: gw.apiKey, baseURL: gw.gateway.url });
    const agent = await client.agents.create({ name: 'From the bundle', role: 'r' });
    expect((await client.agents.get({ agent_id: agent.id })).name).toBe('From the bundle');
    const error = await client.agents.get({ agent_id: 'agent_nope' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(bundled.StateSetError);
    expect(error).toMatchObject({ code: 'RESOURCE_NOT_FOUND' });
  });
});
