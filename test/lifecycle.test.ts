import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../protocol/index.js';
import { GatewaySocket, RestClient, type WebSocketConstructor } from '../clients/index.js';
import { startGateway } from '../src/app.js';
import { createAccount } from '../src/auth/provisioning.js';
import { loadConfig } from '../src/config.js';
import { openStore } from '../src/store/store.js';

/** These start an on-disk PGlite (twice in the second test): tens of seconds on a busy 2-core machine. */
const ON_DISK_TIMEOUT_MS = 90_000;

describe('lifecycle', () => {
  it(
    'on stop: finishes accepted writes, closes WebSockets with 1001, and keeps the data on disk',
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'stategate-'));
      try {
        const config = loadConfig({ PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'silent', PRINT_BOOTSTRAP_KEY: 'false' });
        const gateway = await startGateway(config);
        const { key } = await createAccount(gateway.store, { name: 'lifecycle' });
        const rest = new RestClient({ baseUrl: gateway.url, apiKey: key });
        const agent = await rest.call('agents.create', { name: 'Durable' });
        const conversation = await rest.call('conversations.create', { agent_id: agent.id });
        const socket = await GatewaySocket.connect({ url: gateway.wsUrl, apiKey: key, WebSocket: WebSocket as unknown as WebSocketConstructor });
        const closed = socket.closedPromise();

        // Writes sent over the socket just before the stop: each one answered is one stored.
        const writes = Array.from({ length: 50 }, (_, i) =>
          socket.call('messages.create', { conversation_id: conversation.id, content: `m${i}` }).then(
            () => 'ok' as const,
            () => 'failed' as const,
          ),
        );
        // Stop once the first one is answered, so the rest are in flight (a fixed delay raced a busy machine).
        expect(await writes[0]).toBe('ok');
        await gateway.stop();
        expect((await closed).code).toBe(CloseCode.GOING_AWAY);
        const outcomes = await Promise.all(writes);
        const acknowledged = outcomes.filter((o) => o === 'ok').length;
        expect(acknowledged).toBeGreaterThan(0);

        const store = await openStore(loadConfig({ DATA_DIR: dataDir }));
        try {
          const stored = await store.conversations.get(
            (await store.accounts.findKeyByHash((await import('../src/auth/keys.js')).hashApiKey(key)))!.account_id,
            conversation.id,
          );
          expect(stored!.message_count).toBeGreaterThanOrEqual(acknowledged);
        } finally {
          await store.close();
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    ON_DISK_TIMEOUT_MS,
  );

  it(
    'on first start with no key, creates a development account and prints its key once',
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'stategate-'));
      try {
        const run = () =>
          new Promise<string>((resolve, reject) => {
            const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
              env: { ...process.env, PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info', DATABASE_URL: '', STATEGATE_API_KEY: '' },
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let output = '';
            let signalled = false;
            child.stdout.on('data', (chunk) => (output += chunk));
            child.stderr.on('data', (chunk) => (output += chunk));
            child.stdout.on('data', () => {
              if (!signalled && output.includes('stategate listening')) {
                signalled = true;
                child.kill('SIGTERM');
              }
            });
            child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`exit ${code}: ${output}`))));
          });
        const first = await run();
        const key = /STATEGATE_KEY=(sg_live_\S+)/.exec(first)?.[1];
        expect(key).toBeDefined();
        expect(first).toContain('"native":true');
        // The key is printed for the person at the terminal, never into a JSON log line.
        const logLines = first.split('\n').filter((line) => line.startsWith('{'));
        expect(logLines.some((line) => line.includes(key!))).toBe(false);
        expect(logLines.some((line) => line.includes('shutting down'))).toBe(true);
        const second = await run();
        expect(second).not.toContain('STATEGATE_KEY=');
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    ON_DISK_TIMEOUT_MS,
  );

  it('rejects invalid configuration with a clear message', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/);
  });
});
