import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RateLimitedFailure, toFailure } from '../kernel/errors.js';
import type { Logger } from '../logger.js';
import { readBody } from './request.js';
import { sendFailure, sendJson, statusLine, successBody } from './respond.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

/**
 * The chat widget over plain HTTP: its page and scripts at `/widget`, the SDK's browser bundle at
 * `/widget/sdk.js`, and the demo endpoint (`POST /v1/demo/widget`) that gives a visitor a client
 * token. A file is read (and its ETag hashed) again only when its modification time or size
 * changed, so edits show without a restart; it is sent with `Cache-Control: no-cache` and that
 * ETag: the names carry no content hash, so a browser revalidates each time and gets a 304 while
 * nothing changed.
 */

/** What the demo endpoint asks of the gateway (`src/demo/widget.ts` behind it). */
export interface DemoWidgetService {
  /** `credential`: the bearer token of the visit to renew, when the request carries one. */
  start(visitor: { address: string; requestId: string; credential?: string }): Promise<unknown>;
}

export interface StaticOptions {
  /** Null: the demo endpoint is off and answers 404 like any unknown route. */
  demo: DemoWidgetService | null;
  newRequestId(): string;
  log: Logger;
  /** Defaults: `widget/` and `dist/sdk/stategate-sdk.js` of the checkout (or image) the gateway runs from. */
  widgetDir?: string;
  sdkBundle?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The page loads only what the gateway serves, and talks only to it (REST and the WebSocket). */
const PAGE_POLICY =
  "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/** The project root: the nearest folder above this file holding package.json (src/ or dist/src/). */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export function mountStatic(app: TemplatedApp, options: StaticOptions): void {
  const root = projectRoot();
  const widgetDir = options.widgetDir ?? join(root, 'widget');
  const sdkBundle = options.sdkBundle ?? join(root, 'dist/sdk/stategate-sdk.js');
  const files: Record<string, string> = {
    '/widget': join(widgetDir, 'index.html'),
    '/widget/': join(widgetDir, 'index.html'),
    '/widget/widget.js': join(widgetDir, 'widget.js'),
    '/widget/widget.css': join(widgetDir, 'widget.css'),
    '/widget/sdk.js': sdkBundle,
    '/widget/sdk.js.map': `${sdkBundle}.map`,
  };
  for (const [path, file] of Object.entries(files)) {
    app.get(path, (res, req) => serveFile(res, req, file, options));
  }

  const demo = options.demo;
  if (demo) app.post('/v1/demo/widget', (res, req) => startDemo(res, req, demo, options));
}

interface LoadedFile {
  version: string;
  body: Buffer;
  etag: string;
}

const loaded = new Map<string, LoadedFile>();

/** The file's bytes and ETag, read again only when it changed on disk. */
async function load(file: string): Promise<LoadedFile> {
  const info = await stat(file);
  const version = `${info.mtimeMs}:${info.size}`;
  const known = loaded.get(file);
  if (known?.version === version) return known;
  const body = await readFile(file);
  const fresh = { version, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
  loaded.set(file, fresh);
  return fresh;
}

function serveFile(res: HttpResponse, req: HttpRequest, file: string, options: StaticOptions): void {
  const ifNoneMatch = req.getHeader('if-none-match');
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  load(file).then(
    ({ body, etag }) => {
      if (aborted) return;
      const extension = /\.[a-z]+$/.exec(file)?.[0] ?? '';
      res.cork(() => {
        res.writeStatus(statusLine(ifNoneMatch === etag ? 304 : 200));
        res.writeHeader('content-type', CONTENT_TYPES[extension] ?? 'application/octet-stream');
        res.writeHeader('cache-control', 'no-cache');
        res.writeHeader('etag', etag);
        res.writeHeader('x-content-type-options', 'nosniff');
        if (extension === '.html') res.writeHeader('content-security-policy', PAGE_POLICY);
        if (ifNoneMatch === etag) res.endWithoutBody();
        else res.end(body);
      });
    },
    (error: NodeJS.ErrnoException) => {
      if (aborted) return;
      const missingBundle = error.code === 'ENOENT' && file.endsWith('stategate-sdk.js');
      if (error.code !== 'ENOENT') options.log.warn({ err: error, file }, 'static file not readable');
      res.cork(() => {
        res.writeStatus(statusLine(404));
        res.writeHeader('content-type', 'text/plain; charset=utf-8');
        res.end(missingBundle ? 'The SDK bundle is not built: run `npm run build:sdk` (or `npm run build`).\n' : 'Not found\n');
      });
    },
  );
}

function startDemo(res: HttpResponse, req: HttpRequest, demo: DemoWidgetService, options: StaticOptions): void {
  const startedAt = performance.now();
  const requestId = options.newRequestId();
  // Read now: uWS forgets the request's details once this function returns.
  const address = Buffer.from(res.getRemoteAddressAsText()).toString();
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.getHeader('authorization'))?.[1];
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  // The body carries nothing the demo needs; it is read (up to a small bound) and dropped.
  readBody(res, 4096, () => {
    if (aborted) return;
    demo.start({ address, requestId, ...(bearer === undefined ? {} : { credential: bearer }) }).then(
      (visit) => {
        if (!aborted) sendJson(res, 201, successBody(visit, requestId, startedAt), requestId);
      },
      (error: unknown) => {
        const failure = toFailure(error);
        if (failure.code === 'INTERNAL_ERROR') options.log.error({ err: error, request_id: requestId }, 'demo widget visit failed');
        if (!aborted) sendFailure(res, failure, requestId, failure instanceof RateLimitedFailure ? [['retry-after', String(failure.retryAfter)]] : []);
      },
    );
  });
}
