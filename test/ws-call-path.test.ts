import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableBackends } from './helpers/backends.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

/**
 * The WebSocket call path's shortcuts (issue 15) keep every answer the same: frames checked
 * without zod when plainly valid and with zod otherwise, cached reads answered synchronously with
 * their JSON made once, and operation metrics tallied per call and folded in when scraped.
 */
const backends = await availableBackends();

/** A raw socket that keeps each answer's exact text. */
async function textSocket(url: string, apiKey: string) {
  const ws = new WebSocket(url, { headers: { 'x-api-key': apiKey } });
  const texts: string[] = [];
  ws.on('message', (data: Buffer) => texts.push(data.toString()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  /** Sends one frame and waits for the next answer (the welcome frame comes first). */
  const ask = async (frame: string): Promise<{ text: string; frame: Record<string, any> }> => {
    for (let i = 0; i < 100 && texts.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const before = texts.length;
    ws.send(frame);
    for (let i = 0; i < 200 && texts.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    const text = texts[before];
    if (text === undefined) throw new Error(`no answer to ${frame}`);
    return { text, frame: JSON.parse(text) as Record<string, any> };
  };
  return { ws, ask };
}

async function metricsText(t: TestGateway): Promise<string> {
  return (await fetch(`${t.gateway.url}/metrics`)).text();
}

function metricValue(text: string, line: string): number {
  const found = text.split('\n').find((candidate) => candidate.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

describe.each(backends)('WebSocket call path on %s', (backend) => {
  let t: TestGateway;

  beforeAll(async () => {
    t = await startTestGateway(backend);
  });
  afterAll(() => t.stop());

  it('answers a plain call, and refuses every frame the schema refuses, with the same errors', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Frames' });
    const socket = await textSocket(t.gateway.wsUrl, t.apiKey);
    try {
      const ok = await socket.ask(`{"type":"call","id":1,"method":"agents.get","params":{"agent_id":"${agent.id}"}}`);
      expect(ok.frame).toEqual({ type: 'result', id: 1, data: agent });
      expect((await socket.ask('{"type":"call","id":"a-string-id","method":"agents.get","params":{"agent_id":"agent_none"}}')).frame).toMatchObject({
        type: 'error',
        id: 'a-string-id',
        error: { code: 'RESOURCE_NOT_FOUND' },
      });

      const refused: Array<[string, string | number | undefined]> = [
        [`{"type":"call","id":2,"method":"agents.get","params":{"agent_id":"${agent.id}"},"extra":true}`, 2],
        ['{"type":"call","id":3,"method":"agents.get","params":["not","an","object"]}', 3],
        ['{"type":"call","id":4,"method":"","params":{}}', 4],
        [`{"type":"call","id":5,"method":"${'m'.repeat(101)}"}`, 5],
        ['{"type":"call","id":6,"method":"agents.get","idempotency_key":""}', 6],
        ['{"type":"call","id":-1,"method":"agents.get"}', undefined],
        ['{"type":"call","id":1.5,"method":"agents.get"}', undefined],
        [`{"type":"call","id":"${'i'.repeat(65)}","method":"agents.get"}`, undefined],
        ['{"type":"call","method":"agents.get"}', undefined],
        ['{"type":"ping","id":7,"extra":1}', 7],
        ['{"type":"ping","id":null}', undefined],
      ];
      for (const [frame, id] of refused) {
        const answer = (await socket.ask(frame)).frame;
        expect(answer, frame).toMatchObject({ type: 'error', error: { code: 'VALIDATION_ERROR' } });
        expect(answer.id, frame).toBe(id);
      }

      // NUL anywhere in params is refused with its path, whether or not the frame takes the shortcut.
      const nul = (await socket.ask('{"type":"call","id":8,"method":"agents.get","params":{"agent_id":"agent_\\u0000x"}}')).frame;
      expect(nul).toMatchObject({ type: 'error', id: 8, error: { code: 'VALIDATION_ERROR' } });
      expect(JSON.stringify(nul.error)).toContain('agent_id');

      expect((await socket.ask('{"type":"ping","id":9}')).frame).toEqual({ type: 'pong', id: 9 });
      expect((await socket.ask('{"type":"ping"}')).frame).toEqual({ type: 'pong' });
    } finally {
      socket.ws.close();
    }
  });

  it('answers a cached agent with the exact JSON of its data, and a changed agent with its new data', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Before', metadata: { tier: 'gold', nested: { list: [1, 'two'] } } });
    const socket = await textSocket(t.gateway.wsUrl, t.apiKey);
    try {
      const get = (id: number) => socket.ask(`{"type":"call","id":${id},"method":"agents.get","params":{"agent_id":"${agent.id}"}}`);
      const first = await get(1);
      const second = await get(2);
      expect(first.frame.data).toEqual(agent);
      expect(second.frame.data).toEqual(agent);
      // Byte for byte what JSON.stringify writes for the frame.
      expect(second.text).toBe(JSON.stringify({ type: 'result', id: 2, data: second.frame.data }));

      const updated = await socket.ask(`{"type":"call","id":3,"method":"agents.update","params":{"agent_id":"${agent.id}","name":"After"}}`);
      expect(updated.frame).toMatchObject({ type: 'result', id: 3, data: { name: 'After' } });
      const after = await get(4);
      expect(after.frame.data).toMatchObject({ id: agent.id, name: 'After', metadata: { tier: 'gold', nested: { list: [1, 'two'] } } });
      expect((await get(5)).text).toBe(JSON.stringify({ type: 'result', id: 5, data: after.frame.data }));

      // REST reads the same cached agent, in the same envelope as before.
      const response = await fetch(`${t.gateway.url}/v1/agents/${agent.id}`, { headers: { 'x-api-key': t.apiKey } });
      const body = (await response.json()) as { success: boolean; data: unknown; meta: Record<string, unknown> };
      expect(body.success).toBe(true);
      expect(body.data).toEqual(after.frame.data);
      expect(Object.keys(body.meta)).toEqual(['request_id', 'timestamp', 'version', 'execution_time_ms']);
      expect(body.meta.request_id).toMatch(/^req_[0-9A-Za-z]{16}$/);
      expect(response.headers.get('x-request-id')).toBe(body.meta.request_id);
      expect(new Date(body.meta.timestamp as string).toISOString()).toBe(body.meta.timestamp);
      expect(typeof body.meta.execution_time_ms).toBe('number');
    } finally {
      socket.ws.close();
    }
  });

  it('counts every WebSocket call in the operation metrics, exactly once across scrapes', async () => {
    const agent = await t.rest.call('agents.create', { name: 'Counted' });
    const socket = await textSocket(t.gateway.wsUrl, t.apiKey);
    const okLine = 'stategate_operations_total{operation="agents.get",transport="ws",outcome="ok"}';
    const missingLine = 'stategate_operations_total{operation="agents.get",transport="ws",outcome="RESOURCE_NOT_FOUND"}';
    const countLine = 'stategate_operation_seconds_count{transport="ws"}';
    const infLine = 'stategate_operation_seconds_bucket{le="+Inf",transport="ws"}';
    try {
      const before = await metricsText(t);
      for (let id = 1; id <= 3; id++) await socket.ask(`{"type":"call","id":${id},"method":"agents.get","params":{"agent_id":"${agent.id}"}}`);
      await socket.ask('{"type":"call","id":4,"method":"agents.get","params":{"agent_id":"agent_missing"}}');
      const middle = await metricsText(t);
      expect(metricValue(middle, okLine) - metricValue(before, okLine)).toBe(3);
      expect(metricValue(middle, missingLine) - metricValue(before, missingLine)).toBe(1);
      expect(metricValue(middle, countLine) - metricValue(before, countLine)).toBe(4);
      expect(metricValue(middle, infLine)).toBe(metricValue(middle, countLine));
      expect(middle).toMatch(/^stategate_operation_seconds_sum\{transport="ws"\} \d/m);
      expect(middle).toContain('# TYPE stategate_operation_seconds histogram');

      await socket.ask(`{"type":"call","id":5,"method":"agents.get","params":{"agent_id":"${agent.id}"}}`);
      const after = await metricsText(t);
      expect(metricValue(after, okLine) - metricValue(middle, okLine)).toBe(1);
      expect(metricValue(after, countLine) - metricValue(middle, countLine)).toBe(1);
    } finally {
      socket.ws.close();
    }
  });
});
