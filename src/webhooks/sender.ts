import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { BlockedAddressError, guardedLookup, hostOf, isPrivateAddress } from './address-guard.js';

export interface SendOptions {
  timeoutMs: number;
  /** Bytes of the response kept (the rest is not read). */
  maxResponseBytes: number;
  allowPrivate: boolean;
  /** Aborts the request (the node is stopping); the attempt is then not recorded. */
  signal?: AbortSignal;
}

export interface SendResult {
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
  responseBody: string | null;
}

export class SendAborted extends Error {}

/**
 * One POST of a webhook body. Never follows redirects, gives up after `timeoutMs` in total
 * (connect, send and the first bytes of the answer), and reads at most `maxResponseBytes`.
 */
export function postWebhook(target: string, body: string, headers: Record<string, string>, options: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise<SendResult>((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return resolve({ statusCode: null, error: 'invalid url', latencyMs: 0, responseBody: null });
    }
    const host = hostOf(url);
    // A literal address is dialled without a lookup: check it here.
    if (!options.allowPrivate && isIP(host) !== 0 && isPrivateAddress(host)) {
      return resolve({ statusCode: null, error: new BlockedAddressError(host).message, latencyMs: 0, responseBody: null });
    }
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let settled = false;
    const finish = (result: SendResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(options.allowPrivate) as never,
        signal,
        agent: false,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        const done = () => {
          const text = Buffer.concat(chunks).subarray(0, options.maxResponseBytes).toString('utf8');
          finish({ statusCode: res.statusCode ?? null, error: null, latencyMs: elapsed(), responseBody: text });
          res.destroy();
        };
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          kept += chunk.length;
          // Enough bytes for the history: stop reading, whatever the receiver still sends.
          if (kept >= options.maxResponseBytes) done();
        });
        res.on('end', done);
        res.on('error', () => done());
      },
    );
    req.on('error', (error: Error & { code?: string }) => {
      if (options.signal?.aborted) {
        if (!settled) {
          settled = true;
          reject(new SendAborted('stopping'));
        }
        return;
      }
      const reason =
        error instanceof BlockedAddressError
          ? error.message
          : timeout.aborted
            ? `timed out after ${options.timeoutMs} ms`
            : `${error.code ?? 'error'}: ${error.message}`.slice(0, 300);
      finish({ statusCode: null, error: reason, latencyMs: elapsed(), responseBody: null });
    });
    req.end(body);
  });
}
