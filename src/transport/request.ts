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

/**
 * Whether JSON text nests arrays and objects deeper than `maxDepth`, found by one pass over its
 * characters (strings skipped). JSON.parse builds every level before anything can check it: a
 * 200 KB body of 100,000 nested arrays holds the event loop for about 70 ms, a 1 MiB one for
 * several hundred. Checked first, such a body costs a scan of its bytes.
 */
export function jsonNestedDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) depth--;
  }
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * How much deeper than an operation's input (MAX_INPUT_DEPTH) a request's JSON may nest before it
 * is refused unparsed: the body object and GraphQL's `variables` around it. Anything less deep is
 * parsed and checked exactly (with the path of the problem).
 */
export const JSON_ENVELOPE_LEVELS = 2;
