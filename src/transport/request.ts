import type { HttpRequest, HttpResponse } from './uws.js';

/**
 * Reading an HTTP request, for every transport that takes one (REST, GraphQL over HTTP, the
 * WebSocket upgrades, the demo endpoint): its credentials and its body.
 */

/** `Authorization: Bearer <key>` (StateSet) or `X-API-Key: <key>` (StateBase). */
export function credentialsOf(req: HttpRequest): string | undefined {
  const authorization = req.getHeader('authorization');
  if (authorization) {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    return match ? match[1] : '';
  }
  return req.getHeader('x-api-key') || undefined;
}

/** Collects the body, giving up (null) as soon as it passes the limit. */
export function readBody(res: HttpResponse, limit: number, done: (body: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  res.onData((chunk, isLast) => {
    if (over) return;
    size += chunk.byteLength;
    if (size > limit) {
      over = true;
      done(null);
      return;
    }
    // uWS reuses the chunk's memory after this callback: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk).slice()));
    if (isLast) done(Buffer.concat(chunks, size));
  });
}
