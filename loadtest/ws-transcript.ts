/**
 * Prints a real WebSocket session for the README: `npx tsx loadtest/ws-transcript.ts`.
 *
 * Starts the compiled gateway on a free loopback port with an in-memory PGlite, creates an agent
 * and a conversation over REST, then connects with `ws` and prints every frame exactly as sent
 * (`>`) and received (`<`): welcome, subscribe, a message written over the socket. Stops the
 * gateway and exits; bounded to 60 s.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { RestClient } from '../clients/index.js';
import { ensureGatewayBuilt, GATEWAY_ENTRY } from './target/build.js';
import { freePort } from './target/child.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const hardStop = setTimeout(() => process.exit(2), 60_000);
hardStop.unref();

ensureGatewayBuilt((line) => process.stderr.write(`${line}\n`));
const port = await freePort();
const apiKey = `sg_live_${randomBytes(16).toString('hex')}`;
const gateway = spawn(process.execPath, [GATEWAY_ENTRY], {
  env: {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: 'memory://',
    STATEGATE_API_KEY: apiKey,
    PRINT_BOOTSTRAP_KEY: 'false',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
process.once('exit', () => gateway.kill('SIGKILL'));
try {
  for (let i = 0; i < 300; i++) {
    if (
      (await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      break;
    await sleep(100);
  }
  const rest = new RestClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey });
  const agent = await rest.call('agents.create', { name: 'Support Agent' });
  const conversation = await rest.call('conversations.create', { agent_id: agent.id });

  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { 'x-api-key': apiKey } });
  ws.on('message', (data) => process.stdout.write(`< ${String(data)}\n`));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const send = async (frame: Record<string, unknown>) => {
    const text = JSON.stringify(frame);
    process.stdout.write(`> ${text}\n`);
    ws.send(text);
    // Let every answer and event arrive before the next frame, so the order printed is the wire's.
    await sleep(500);
  };
  await sleep(300);
  await send({ type: 'subscribe', id: 1, topic: `conversation:${conversation.id}` });
  await send({ type: 'call', id: 2, method: 'messages.create', params: { conversation_id: conversation.id, content: 'hi' } });
  await send({ type: 'call', id: 3, method: 'presence.get', params: { topic: `conversation:${conversation.id}` } });
  ws.close(1000);
  await sleep(200);
} finally {
  gateway.kill('SIGTERM');
}
