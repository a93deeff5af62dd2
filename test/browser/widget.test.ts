import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REPLY, startAgentWorker, type AgentWorker } from '../../examples/agent-worker.js';
import { RestClient } from '../../clients/index.js';
import { buildServedSdk } from './sdk-bundle.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * The chat widget in a real browser (Debian's Chromium through playwright-core), answered by the
 * example agent worker: a reply streams in token by token, the network drops and comes back, and
 * every message is shown exactly once, in the order the gateway stored them.
 */
const CHROMIUM = '/usr/bin/chromium';

// Globals of the page, for the functions that run there (this file compiles without the DOM library).
declare const document: any, window: any, MutationObserver: any;
const SCREENSHOT_DIR = 'test-results';

function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') throw new Error(`CI=true requires Chromium at ${CHROMIUM} for the widget test (apt-get install -y chromium; .ci/run does it)`);
  process.stderr.write(`\n[stategate tests] SKIPPING the widget browser test: no Chromium at ${CHROMIUM}.\n  To run it: apt-get install -y chromium\n\n`);
  return false;
}

/**
 * A TCP proxy between the browser and the gateway that can cut the network: `cut()` resets every
 * open connection (the browser's WebSocket sees a drop without a close frame, as on a lost Wi-Fi)
 * and refuses new ones until `restore()`. Chromium's offline emulation alone leaves an open
 * WebSocket up, so the proxy is what really takes the connection away.
 */
async function startCuttableProxy(targetPort: number): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  let offline = false;
  const server = net.createServer((client) => {
    if (offline) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      offline = true;
      for (const socket of open) socket.resetAndDestroy();
    },
    restore() {
      offline = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const replyTo = (message: string, turn: number) => DEFAULT_REPLY.replaceAll('{message}', message).replaceAll('{turn}', String(turn));

interface Bubble {
  id: string | undefined;
  role: string;
  text: string;
  pending: boolean;
  streaming: boolean;
}

const bubbles = (page: Page): Promise<Bubble[]> =>
  page.$$eval('#messages li', (items) =>
    items.map((item: any) => ({
      id: (item as any).dataset.messageId,
      role: item.classList.contains('user') ? 'user' : 'agent',
      text: item.querySelector('.text')!.textContent ?? '',
      pending: item.classList.contains('pending'),
      streaming: item.classList.contains('streaming'),
    })),
  );

const available = chromiumAvailable();

describe.runIf(available)('chat widget in Chromium', () => {
  let t: TestGateway;
  let worker: AgentWorker;
  let proxy: Awaited<ReturnType<typeof startCuttableProxy>>;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // The page loads the SDK bundle the gateway serves from dist/: build it from the current source.
    await buildServedSdk();
    t = await startTestGateway('pglite', { DEMO_WIDGET: 'true' });
    // The example worker, in process, with the development account's key (the demo's account).
    worker = await startAgentWorker({ baseURL: t.gateway.url, apiKey: t.gateway.bootstrap!.key, tokenDelayMs: 35, log: () => {} });
    proxy = await startCuttableProxy(t.gateway.port);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    const context = await browser.newContext({ viewport: { width: 520, height: 720 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await proxy?.close();
    await t?.stop();
  });

  it('streams the reply, survives a network drop, and shows every message once, in order', async () => {
    await page.goto(`http://127.0.0.1:${proxy.port}/widget`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
    await page.waitForSelector('#presence[data-online="true"]', { timeout: 10_000 });
    expect(await page.textContent('#presence .label')).toBe('Agent online');

    // Record every text an agent bubble showed, and whether the typing indicator appeared.
    await page.evaluate(() => {
      const seen: string[] = [];
      let typingShown = false;
      const record = () => {
        for (const text of document.querySelectorAll('#messages li.agent .text')) seen.push(text.textContent ?? '');
        if (!document.getElementById('typing')!.hidden) typingShown = true;
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      (window as unknown as { widgetProbe: () => unknown }).widgetProbe = () => ({ seen, typingShown });
    });

    // 1. A message and its streamed reply.
    await page.fill('#input', 'Hello there');
    await page.press('#input', 'Enter');
    const first = replyTo('Hello there', 1);
    // A picture of the reply half written (docs/widget.png is one of these).
    await page.waitForFunction(() => (document.querySelector('#messages li.agent.streaming .text')?.textContent?.length ?? 0) > 60, undefined, {
      timeout: 20_000,
    });
    await page.screenshot({ path: `${SCREENSHOT_DIR}/widget-streaming.png` });
    await page.waitForFunction(
      (text) => [...document.querySelectorAll('#messages li.agent[data-message-id] .text')].some((node: any) => node.textContent === text),
      first,
      {
        timeout: 20_000,
      },
    );
    const probe = (await page.evaluate(() => (window as unknown as { widgetProbe: () => unknown }).widgetProbe())) as { seen: string[]; typingShown: boolean };
    const partials = probe.seen.filter((text) => text.length > 0 && text.length < first.length);
    expect(partials.length, 'the reply appeared in pieces before it was complete').toBeGreaterThan(3);
    for (const partial of partials) expect(first.startsWith(partial), `"${partial}" is a beginning of the reply`).toBe(true);
    expect(probe.typingShown, 'the typing indicator showed').toBe(true);

    // 2. A message, then the network drops while its reply streams; one more is sent while offline.
    await page.fill('#input', 'Before the drop');
    await page.press('#input', 'Enter');
    await page.waitForSelector('#messages li.agent.streaming', { timeout: 10_000 });
    proxy.cut();
    await page.context().setOffline(true);
    await page.waitForSelector('#banner:not([hidden])', { timeout: 10_000 });
    expect(await page.textContent('#banner')).toBe('Reconnecting…');
    expect(await page.getAttribute('body', 'data-connection')).not.toBe('connected');
    await page.fill('#input', 'While offline');
    await page.press('#input', 'Enter');
    await page.waitForTimeout(1500);
    expect((await bubbles(page)).filter((bubble) => bubble.pending).map((bubble) => bubble.text)).toEqual(['While offline']);

    // 3. Back online: the queued message goes out once, the missed reply is replayed, the banner goes.
    await page.context().setOffline(false);
    proxy.restore();
    await page.waitForSelector('body[data-connection="connected"]', { timeout: 20_000 });
    await page.waitForSelector('#banner', { state: 'hidden' });
    // A message sent while a reply streams is stored before that reply (a reply is stored when it
    // ends): wait for the reply to the offline message, so that the order below is the only one.
    await page.waitForFunction(
      (text) => [...document.querySelectorAll('#messages li.agent[data-message-id] .text')].some((node: any) => node.textContent === text),
      replyTo('While offline', 3),
      { timeout: 20_000 },
    );
    await page.fill('#input', 'After the drop');
    await page.press('#input', 'Enter');

    const sent = ['Hello there', 'Before the drop', 'While offline', 'After the drop'];
    const expected = sent.flatMap((text, index) => [
      { role: 'user', text },
      { role: 'agent', text: replyTo(text, index + 1) },
    ]);
    await expect.poll(async () => (await bubbles(page)).map(({ role, text }) => ({ role, text })), { timeout: 30_000, interval: 250 }).toEqual(expected);
    const shown = await bubbles(page);
    expect(shown.every((bubble) => bubble.id && !bubble.pending && !bubble.streaming)).toBe(true);

    // What the page shows is exactly what the gateway stored, in its order, each message once.
    const developer = new RestClient({ baseUrl: t.gateway.url, apiKey: t.gateway.bootstrap!.key });
    const visit = (await page.evaluate(() => (window as unknown as { stategateWidget: { visit: { conversation_id: string } } }).stategateWidget.visit)) as {
      conversation_id: string;
    };
    const stored = await developer.call('messages.list', { conversation_id: visit.conversation_id, limit: 100 });
    expect(stored.data.map((message) => ({ role: message.role === 'user' ? 'user' : 'agent', text: message.content }))).toEqual(expected);
    expect(shown.map((bubble) => bubble.id)).toEqual(stored.data.map((message) => message.id));
    expect(new Set(shown.map((bubble) => bubble.id)).size).toBe(shown.length);
    expect(stored.data.some((message) => message.metadata.incomplete === true)).toBe(false);

    // The worker kept one session for the conversation: four turns, state counting them.
    const sessions = await developer.call('sessions.list', { agent_id: worker.agentId, user_id: visit.conversation_id });
    expect(sessions.data).toHaveLength(1);
    expect(sessions.data[0]!.state).toMatchObject({ turns: 4 });
    const turns = await developer.call('turns.list', { session_id: sessions.data[0]!.id });
    // Newest first.
    expect(turns.data.map((turn) => turn.input).reverse()).toEqual(sent);

    expect(pageErrors).toEqual([]);
    await page.screenshot({ path: `${SCREENSHOT_DIR}/widget.png` });
  });
});
