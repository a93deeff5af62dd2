import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, contracts, ErrorEnvelope, msgpackCodec, OPERATION_NAMES, REST_OPERATION_NAMES, type ErrorCode } from '../../protocol/index.js';
import { probeEventLoopLag } from '../helpers/event-loop-lag.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Bounded property-based fuzzing of everything a client controls (issue 16): REST bodies, path
 * ids, query strings, WebSocket frames in JSON and MessagePack, and GraphQL documents and
 * variables, with NULs, lone surrogates, invalid UTF-8, deep nesting and fragment expansions. For
 * client input there is never a 5xx, always the documented envelope, error frame or GraphQL
 * answer (or a documented close code), never a hang or a stalled event loop, and the process
 * stays up.
 * A few hundred runs in all, a few seconds; a failure prints fast-check's seed to replay it.
 */
const REQUEST_TIMEOUT_MS = 5000;
const CLIENT_ERRORS: readonly ErrorCode[] = [
  'VALIDATION_ERROR',
  'RESOURCE_NOT_FOUND',
  'INSUFFICIENT_PERMISSIONS',
  'METHOD_NOT_ALLOWED',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'IDEMPOTENCY_KEY_REUSED',
  'INVALID_API_KEY',
];

/** What a GraphQL answer's errors may say for client input: its own codes and the operations' client codes. */
const GRAPHQL_CODES: readonly string[] = [
  ...CLIENT_ERRORS,
  'BAD_REQUEST',
  'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COSTLY',
  'TOO_MANY_ALIASES',
];

/** Strings that have broken gateways: NULs, lone surrogates, escapes, and ordinary text. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
  fc.string({ unit: fc.constantFrom('a', '\u0000', '\uD800', '\uDC00', '\uFFFF', 'é', '😀', '%', '"', '\\', '$', '[', ']', '{'), maxLength: 12 }),
  fc.constantFrom('\u0000', 'x\u0000', '\uD83D', 'agent_\u0000', '%00', '-created_at', '$lt', '0000-01-01', '9999999-01-01', '__proto__'),
);

/** JSON values with nasty strings as keys and leaves. */
const nastyJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(nastyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

function nestedJson(depth: number): string {
  return `${'{"d":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Bytes percent-encoded one by one: reaches %00 and invalid UTF-8, which encodeURIComponent refuses to make. */
const percentBytes = fc.oneof(
  fc.uint8Array({ maxLength: 12 }).map((bytes) => [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')),
  fc.constantFrom('%00', 'agent_%00', 'x%00y', '%ED%A0%80', '%C3%28', '%F0%9F%98%80'),
);

/** Names a GraphQL document may select: the schema's (roots, relations, leaves, introspection) and unknown ones. */
const graphqlName = fc.constantFrom(
  'agent',
  'agents_list',
  'conversation',
  'conversations_list',
  'messages_list',
  'conversations',
  'messages',
  'edges',
  'node',
  'pageInfo',
  'data',
  'id',
  'name',
  'content',
  'timestamp',
  'has_more',
  '__typename',
  '__schema',
  'types',
  'fields',
  'nope',
  '__proto__',
);
/** Numbers for sizes: ordinary, negative, zero, past 32 bits, past a float's range. */
const graphqlNumber = fc.oneof(
  fc.integer({ min: -5, max: 200 }),
  fc.constantFrom('0', '-1', '2147483648', '1152921504606846976', `1${'0'.repeat(400)}`, '1e400', '2.5'),
);
const graphqlArgument = fc.oneof(
  fc.tuple(fc.constantFrom('last', 'first', 'limit'), graphqlNumber).map(([name, value]) => `${name}: ${value}`),
  fc.constantFrom('id: "agent_x"', 'conversation_id: $c', 'limit: $n', 'last: $n', 'after: "cursor"', 'agent_id: 1', 'nope: null'),
);

/** Random selection sets: fields with arguments and aliases, spreads of fragments F0…F7, inline fragments. */
const graphqlSelections = fc.letrec<{ set: string; selection: string }>((tie) => ({
  set: fc.array(tie('selection'), { minLength: 1, maxLength: 4 }).map((items) => `{ ${items.join(' ')} }`),
  selection: fc.oneof(
    { depthSize: 'small', maxDepth: 6 },
    graphqlName,
    fc
      .record({
        alias: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
        name: graphqlName,
        args: fc.array(graphqlArgument, { maxLength: 2 }),
        set: tie('set'),
      })
      .map(({ alias, name, args, set }) => `${alias ? `${alias}: ` : ''}${name}${args.length ? `(${args.join(', ')})` : ''} ${set}`),
    fc.nat(7).map((n) => `...F${n}`),
    tie('set').map((set) => `... on Query ${set}`),
  ),
}));

/** Whole documents: valid shapes with hostile sizes, random ones with fragments (cycles and doubling included), deep ones, and token soup. */
const graphqlDocument = fc.oneof(
  fc
    .record({ n: graphqlNumber, m: graphqlNumber })
    .map(
      ({ n, m }) =>
        `query($n: Int) { agents_list(limit: ${n}) { data { id name conversations(last: ${m}) { edges { cursor node { id messages(last: $n) { id content timestamp } } } pageInfo { hasNextPage endCursor } } } } conversation(id: "conv_x") { messages { id } } }`,
    ),
  fc
    .record({
      kind: fc.constantFrom('query', 'mutation', 'subscription', ''),
      root: graphqlSelections.set,
      fragments: fc.array(graphqlSelections.set, { maxLength: 8 }),
    })
    .map(
      ({ kind, root, fragments }) =>
        `${kind ? `${kind}($c: String, $n: Int, $j: JSON) ` : ''}${root} ${fragments.map((set, i) => `fragment F${i} on ${i % 3 ? 'Query' : 'Agent'} ${set}`).join(' ')}`,
    ),
  // Each fragment spreads the next `fan` times: fan^n fields once expanded.
  fc
    .record({ n: fc.integer({ min: 1, max: 60 }), fan: fc.integer({ min: 1, max: 4 }) })
    .map(
      ({ n, fan }) =>
        `{ ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ${`...F${i + 1} `.repeat(fan)}}`).join(' ')} fragment F${n} on Query { __typename }`,
    ),
  fc.integer({ min: 2, max: 3000 }).map((depth) => `{ ${'agent(id: "agent_x") { '.repeat(depth)}id${' }'.repeat(depth)} }`),
  fc.integer({ min: 2, max: 1500 }).map((copies) => `{ ${'agents_list(limit: 1) { has_more } '.repeat(copies)}}`),
  fc
    .array(
      fc.oneof(
        graphqlName,
        fc.constantFrom('{', '}', '(', ')', ':', '...', '$c', '@skip(if: true)', 'fragment', 'on', 'query', '"s"', '[', ']', '!', '=', '#'),
      ),
      {
        maxLength: 60,
      },
    )
    .map((tokens) => tokens.join(' ')),
);

/** Variables as JSON text: any JSON with nasty strings, wrong types for the declared ones, deep nesting (as text, which fast-check can print). */
const graphqlVariables = fc.oneof(
  { arbitrary: fc.record({ n: fc.oneof(fc.integer(), fc.constant(2 ** 60)) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)), weight: 4 },
  fc.dictionary(nastyString, nastyJson, { maxKeys: 4 }).map((value) => JSON.stringify(value)),
  fc
    .record({ c: nastyJson, n: fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 60), nastyJson), j: nastyJson }, { requiredKeys: [] })
    .map((value) => JSON.stringify(value)),
  fc.integer({ min: 20, max: 20_000 }).map((depth) => `{"j":${nestedJson(depth)}}`),
  nastyJson.map((value) => JSON.stringify(value) ?? 'null'),
);

/** Members a request body may carry besides query, variables and operationName: ignored, whatever their names. */
const graphqlExtraMember = fc.option(
  fc
    .tuple(fc.constantFrom('refused', 'prepared', 'sent', 'extensions', '__proto__', 'constructor'), nastyJson)
    .map(([key, value]) => `,"${key}":${JSON.stringify(value) ?? 'null'}`),
  { nil: '' },
);

const routes = REST_OPERATION_NAMES.map((name) => ({ name, ...contracts[name].http }));
const bodyRoutes = routes.filter((route) => route.method !== 'GET' && route.method !== 'DELETE');
const readRoutes = routes.filter((route) => route.method === 'GET');

describe('fuzzing client input', () => {
  let t: TestGateway;
  let conversationId: string;
  let sessionId: string;

  beforeAll(async () => {
    t = await startTestGateway('pglite');
    const agent = await t.rest.call('agents.create', { name: 'Fuzzed' });
    conversationId = (await t.rest.call('conversations.create', { agent_id: agent.id })).id;
    sessionId = (await t.rest.call('sessions.create', { agent_id: 'fuzz' })).id;
  });
  afterAll(() => t.stop());

  /** A route's path with its `{params}` filled: known ids, or the given text. */
  function pathOf(path: string, fill?: string): string {
    return path.replace(/\{(\w+)\}/g, (_, key: string) => fill ?? (key === 'session_id' ? sessionId : key === 'conversation_id' ? conversationId : 'x'));
  }

  async function request(method: string, path: string, body?: string | Uint8Array, contentType = 'application/json') {
    const response = await fetch(t.gateway.url + path, {
      method,
      headers: { 'x-api-key': t.apiKey, ...(body === undefined ? {} : { 'content-type': contentType }) },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    return { status: response.status, text };
  }

  /** Never a 5xx; a 4xx always in the documented envelope with a client error code. */
  function expectClientOutcome(outcome: { status: number; text: string }, what: string): void {
    expect(outcome.status, `${what} -> ${outcome.text.slice(0, 300)}`).toBeLessThan(500);
    const body = JSON.parse(outcome.text) as { success?: boolean };
    if (outcome.status >= 400) {
      const envelope = ErrorEnvelope.parse(body);
      expect(CLIENT_ERRORS).toContain(envelope.error.code);
    } else {
      expect(body.success).toBe(true);
    }
  }

  it('REST bodies: JSON of any shape, raw bytes, deep nesting', async () => {
    const route = fc.constantFrom(...bodyRoutes);
    await fc.assert(
      fc.asyncProperty(route, fc.oneof(fc.dictionary(nastyString, nastyJson, { maxKeys: 6 }), nastyJson), async (r, body) => {
        expectClientOutcome(await request(r.method, pathOf(r.path), JSON.stringify(body)), `${r.method} ${r.path}`);
      }),
      { numRuns: 120 },
    );
    await fc.assert(
      fc.asyncProperty(route, fc.uint8Array({ maxLength: 64 }), async (r, bytes) => {
        expectClientOutcome(await request(r.method, pathOf(r.path), bytes), `${r.method} ${r.path} raw`);
      }),
      { numRuns: 30 },
    );
    await fc.assert(
      fc.asyncProperty(route, fc.integer({ min: 20, max: 20_000 }), async (r, depth) => {
        const body = `{"name":"n","agent_id":"a","metadata":${nestedJson(depth)},"initial_state":${nestedJson(depth)}}`;
        expectClientOutcome(await request(r.method, pathOf(r.path), body), `${r.method} ${r.path} depth ${depth}`);
      }),
      { numRuns: 15 },
    );
  });

  it('path ids and query strings: %00, invalid UTF-8, filters, cursors, sorts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes.filter((r) => r.path.includes('{'))), percentBytes, async (r, id) => {
        expectClientOutcome(
          await request(r.method, pathOf(r.path, id), r.method === 'GET' || r.method === 'DELETE' ? undefined : '{}'),
          `${r.method} ${r.path} id ${id}`,
        );
      }),
      { numRuns: 60 },
    );
    const key = fc.oneof(
      fc.constantFrom('limit', 'cursor', 'sort', 'filter', 'status', 'agent_id', 'user_id', 'starting_after', 'topic'),
      percentBytes,
      fc.constantFrom('filter[created_at][$lt]', 'filter[name]', 'filter[status][$in]', 'filter[message_count][$gte]', 'filter[a][b][c][d]'),
    );
    const value = fc.oneof(
      percentBytes,
      // encodeURIComponent refuses lone surrogates: they travel as percentBytes above.
      nastyString.map((text) => encodeURIComponent(Buffer.from(text, 'utf8').toString('utf8'))),
      nastyJson.map((json) => encodeURIComponent(JSON.stringify(json) ?? 'null')),
      fc
        .record({ s: nastyString, v: nastyString, k: fc.oneof(fc.integer(), fc.double()) })
        .map((cursor) => Buffer.from(JSON.stringify(cursor)).toString('base64url')),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...readRoutes), fc.array(fc.tuple(key, value), { maxLength: 4 }), async (r, pairs) => {
        const query = pairs.map(([k, v]) => `${k}=${v}`).join('&');
        expectClientOutcome(await request('GET', `${pathOf(r.path)}?${query}`), `GET ${r.path}?${query}`);
      }),
      { numRuns: 80 },
    );
  });

  it('WebSocket frames: JSON and MessagePack, any shape, deep nesting, garbage bytes', async () => {
    for (const encoding of ['json', 'msgpack'] as const) {
      const socket = await openSocket(t.gateway.wsUrl, t.apiKey, encoding);
      const frame = fc.oneof(
        fc.record(
          {
            type: fc.constantFrom('call', 'subscribe', 'unsubscribe', 'ping'),
            id: fc.oneof(fc.nat(), nastyString),
            method: fc.oneof(fc.constantFrom(...OPERATION_NAMES), nastyString),
            params: fc.oneof(fc.dictionary(nastyString, nastyJson, { maxKeys: 5 }), nastyJson),
            topic: fc.oneof(fc.constant(`conversation:${conversationId}`), nastyString),
            since: fc.oneof(fc.nat(), nastyJson),
            epoch: nastyString,
            idempotency_key: nastyString,
          },
          { requiredKeys: ['type'] },
        ),
        nastyJson,
      );
      await fc.assert(
        fc.asyncProperty(frame, async (value) => {
          const bytes = encoding === 'json' ? (JSON.stringify(value) ?? 'null') : Buffer.from(msgpackCodec.encode(value));
          const answer = await socket.send(bytes, encoding === 'msgpack');
          expectFrame(answer, value);
        }),
        { numRuns: 70 },
      );
      await fc.assert(
        // Up to 10,000 levels: deeper would pass max_frame_bytes (64 KB) and be closed with 1009.
        fc.asyncProperty(fc.integer({ min: 20, max: 10_000 }), async (depth) => {
          const text = `{"type":"call","id":1,"method":"agents.create","params":{"name":"x","metadata":${nestedJson(depth)}}}`;
          // MessagePack from JSON text's bytes is garbage to the decoder: an error frame too.
          expectFrame(await socket.send(encoding === 'json' ? text : Buffer.from(text), encoding === 'msgpack'), text.slice(0, 80));
        }),
        { numRuns: 10 },
      );
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (bytes) => {
          expectFrame(await socket.send(Buffer.from(bytes), true), bytes);
        }),
        { numRuns: 20 },
      );
      expect(socket.closed()).toBeNull();
      socket.close();
    }
  });

  it('GraphQL: hostile documents and variables over POST /graphql, never a 5xx or a stalled event loop', async () => {
    const probe = probeEventLoopLag();
    await fc.assert(
      fc.asyncProperty(
        graphqlDocument,
        graphqlVariables,
        fc.option(fc.constantFrom('Q', ''), { nil: undefined }),
        graphqlExtraMember,
        async (query, variables, operationName, extra) => {
          const body = `{"query":${JSON.stringify(query)},"variables":${variables}${operationName !== undefined ? `,"operationName":${JSON.stringify(operationName)}` : ''}${extra}}`;
          const outcome = await request('POST', '/graphql', body);
          const what = `${body.slice(0, 300)} -> ${outcome.text.slice(0, 300)}`;
          expect(outcome.status, what).toBeLessThan(500);
          const answer = JSON.parse(outcome.text) as { data?: unknown; errors?: { extensions?: { code?: unknown } }[] };
          if (answer.errors === undefined) expect('data' in answer, what).toBe(true);
          else for (const error of answer.errors) expect(GRAPHQL_CODES, what).toContain(error.extensions?.code);
        },
      ),
      { numRuns: 250 },
    );
    expect(probe.stop()).toBeLessThan(100);
    expect((await fetch(`${t.gateway.url}/healthz`)).status).toBe(200);
  });

  it('a text frame that is not UTF-8 drops only its own connection (1006, documented), never the process', async () => {
    const bystander = await openSocket(t.gateway.wsUrl, t.apiKey, 'json');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0x7b, 0x22, 0xf0, 0x28, 0x8c, 0x28]), async (bytes) => {
        const socket = await openSocket(t.gateway.wsUrl, t.apiKey, 'json');
        const answer = await socket.send(Buffer.from(bytes), false);
        // uWebSockets.js validates text frames before the gateway sees them and drops the TCP
        // connection without a close frame; protocol/README.md documents this.
        expect(answer).toEqual({ closed: { code: 1006 } });
      }),
      { numRuns: 8 },
    );
    expect(await bystander.send(JSON.stringify({ type: 'ping', id: 7 }), false)).toEqual({ type: 'pong', id: 7 });
    expect((await fetch(`${t.gateway.url}/healthz`)).status).toBe(200);
    bystander.close();
  });
});

/** An answer frame for client input: an error with a client code, a result or a pong, never a close. */
function expectFrame(answer: unknown, sent: unknown): void {
  const frame = answer as { type?: string; error?: { code?: string }; closed?: unknown };
  const what = JSON.stringify(sent)?.slice(0, 200);
  expect(frame.closed, `closed after ${what}`).toBeUndefined();
  expect(['error', 'result', 'pong'], what).toContain(frame.type);
  if (frame.type === 'error') expect(CLIENT_ERRORS, `${frame.error?.code} after ${what}`).toContain(frame.error?.code);
}

async function openSocket(url: string, apiKey: string, encoding: 'json' | 'msgpack') {
  const ws = new WebSocket(url, encoding === 'json' ? 'stategate.v1.json' : 'stategate.v1.msgpack', { headers: { 'x-api-key': apiKey } });
  const answers: unknown[] = [];
  let closed: { code: number } | null = null;
  let wake: (() => void) | null = null;
  ws.on('message', (data: Buffer, isBinary) => {
    const frame = (isBinary ? msgpackCodec.decode(data) : JSON.parse(data.toString())) as { type?: string };
    // Events of a topic a fuzzed frame subscribed to are not answers.
    if (frame.type === 'event' || frame.type === 'welcome') return;
    answers.push(frame);
    wake?.();
  });
  ws.on('close', (code) => {
    closed = { code };
    wake?.();
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    closed: () => closed,
    close: () => ws.close(CloseCode.NORMAL),
    async send(data: string | Buffer, binary: boolean): Promise<unknown> {
      ws.send(data, { binary });
      const deadline = Date.now() + REQUEST_TIMEOUT_MS;
      while (answers.length === 0 && !closed) {
        if (Date.now() > deadline) throw new Error('no answer: the gateway hung');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      wake = null;
      return answers.length > 0 ? answers.shift() : { closed };
    },
  };
}
