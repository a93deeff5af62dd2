import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbedderUnavailable, HttpEmbedder, LexicalEmbedder } from '../src/embeddings/index.js';
import { charNgrams, stem, words } from '../src/embeddings/text-features.js';
import { loadConfig } from '../src/config.js';
import { startTestGateway } from './helpers/gateway.js';

const dot = (a: number[], b: number[]) => a.reduce((sum, value, i) => sum + value * b[i]!, 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));

describe('lexical embedder', () => {
  const embedder = new LexicalEmbedder();

  it('is deterministic across instances and calls', async () => {
    const text = 'The customer prefers email over phone calls';
    const [a] = await embedder.embed([text]);
    const [b] = await new LexicalEmbedder().embed([text]);
    expect(a).toEqual(b);
    expect(a).toHaveLength(1024);
    expect(embedder.id).toBe('lexical-v1-1024');
  });

  it('returns unit vectors, even for empty or punctuation-only text', async () => {
    for (const vector of await embedder.embed(['hello world', '', '?!', 'the and of', 'a'.repeat(5000)])) {
      expect(norm(vector)).toBeCloseTo(1, 10);
    }
  });

  it('ranks shared stems and word pieces above unrelated text', async () => {
    const [query, related, unrelated] = await embedder.embed(['refunds for broken blenders', 'my blender broke, I want a refund', 'flight to Lisbon in June']);
    expect(dot(query!, related!)).toBeGreaterThan(0.4);
    expect(Math.abs(dot(query!, unrelated!))).toBeLessThan(0.15);
    expect(dot(query!, related!)).toBeGreaterThan(dot(query!, unrelated!) + 0.3);
  });

  it('ignores case, accents and stop words', async () => {
    const [a, b] = await embedder.embed(['Café in São Paulo', 'the cafe of sao paulo']);
    expect(dot(a!, b!)).toBeCloseTo(1, 6);
  });

  it('splits, stems and slices words as documented', () => {
    expect(words("Don't SHIP it—to Zürich!")).toEqual(['dont', 'ship', 'it', 'to', 'zurich']);
    expect(['preferences', 'shipped', 'running', 'parties', 'class', 'bus'].map(stem)).toEqual(['preferenc', 'ship', 'run', 'party', 'class', 'bus']);
    expect(charNgrams('pay', 3)).toEqual(['#pa', 'pay', 'ay#']);
    expect(charNgrams('pay', 4)).toEqual(['#pay', 'pay#']);
  });

  it('refuses dimensions HNSW cannot index', () => {
    expect(() => new LexicalEmbedder(4096)).toThrow(RangeError);
  });
});

describe('HTTP embedder against a local OpenAI-compatible server', () => {
  let server: Server;
  let url: string;
  const requests: { headers: IncomingMessage['headers']; body: any }[] = [];
  let mode: 'ok' | 'wrong-size' | 'error' | 'garbage' = 'ok';

  beforeAll(async () => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        const body = JSON.parse(raw);
        requests.push({ headers: req.headers, body });
        if (req.url !== '/v1/embeddings' || mode === 'error') {
          res.writeHead(mode === 'error' ? 500 : 404).end('{}');
          return;
        }
        if (mode === 'garbage') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"nope":true}');
          return;
        }
        const size = mode === 'wrong-size' ? 3 : body.dimensions;
        // Answered out of order, as the API allows: the client must place them by index.
        const data = (body.input as string[]).map((text, index) => ({
          object: 'embedding',
          index,
          embedding: Array.from({ length: size }, (_, j) => (j === index ? 3 : 0) + text.length * 0),
        }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: data.reverse(), model: body.model }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const make = () => new HttpEmbedder({ url, apiKey: 'secret-key', model: 'tiny-model', dimensions: 8, timeoutMs: 2000 });

  it('posts the texts with model, dimensions and key, and returns unit vectors in input order', async () => {
    mode = 'ok';
    const vectors = await make().embed(['first', 'second']);
    expect(vectors).toEqual([
      [1, 0, 0, 0, 0, 0, 0, 0],
      [0, 1, 0, 0, 0, 0, 0, 0],
    ]);
    const last = requests.at(-1)!;
    expect(last.headers.authorization).toBe('Bearer secret-key');
    expect(last.body).toMatchObject({ model: 'tiny-model', input: ['first', 'second'], dimensions: 8 });
    expect(make().id).toBe('http:tiny-model:8');
  });

  it('refuses answers of the wrong size, errors and unexpected bodies', async () => {
    for (const failing of ['wrong-size', 'error', 'garbage'] as const) {
      mode = failing;
      await expect(make().embed(['x'])).rejects.toBeInstanceOf(EmbedderUnavailable);
    }
    await expect(
      new HttpEmbedder({ url: 'http://127.0.0.1:1', apiKey: undefined, model: 'm', dimensions: 8, timeoutMs: 500 }).embed(['x']),
    ).rejects.toBeInstanceOf(EmbedderUnavailable);
  });

  it('is chosen by configuration when EMBEDDINGS_URL is set', () => {
    expect(loadConfig({}).embeddings).toEqual({ kind: 'lexical', dimensions: 1024 });
    expect(loadConfig({ EMBEDDINGS_URL: url, EMBEDDINGS_MODEL: 'tiny-model', EMBEDDINGS_DIMENSIONS: '8', EMBEDDINGS_API_KEY: 'k' }).embeddings).toEqual({
      kind: 'http',
      url,
      apiKey: 'k',
      model: 'tiny-model',
      dimensions: 8,
      timeoutMs: 10_000,
    });
  });

  it('serves a gateway end to end: memories embedded and searched over HTTP, a failing service is a 503', async () => {
    mode = 'ok';
    const t = await startTestGateway('pglite', { EMBEDDINGS_URL: url, EMBEDDINGS_MODEL: 'tiny-model', EMBEDDINGS_DIMENSIONS: '8' });
    try {
      const session = await t.rest.call('sessions.create', { agent_id: 'remote-embeddings' });
      const memory = await t.rest.call('memories.create', { session_id: session.id, content: 'stored through the HTTP embedder' });
      expect(memory.embedder).toBe('http:tiny-model:8');
      const context = await t.rest.call('sessions.context', { session_id: session.id, query: 'anything' });
      expect(context.memories.map((m) => [m.id, m.score])).toEqual([[memory.id, 1]]);
      mode = 'error';
      await expect(t.rest.call('sessions.context', { session_id: session.id, query: 'anything' })).rejects.toMatchObject({
        status: 503,
        code: 'SERVICE_UNAVAILABLE',
      });
    } finally {
      await t.stop();
    }
    // Starts a whole gateway (PGlite and migrations): slow on a busy two-core machine.
  }, 120_000);
});
