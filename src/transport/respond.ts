import { STATUS_CODES } from 'node:http';
import { errorBody, successBody } from '../kernel/envelope.js';
import { jsonText, type ErrorBody } from '../../protocol/index.js';
import { UnavailableFailure, type ApiFailure } from '../kernel/errors.js';
import type { Outcome } from './core.js';
import type { HttpResponse } from './uws.js';

export { API_VERSION } from '../../protocol/index.js';
export { errorEnvelope, successBody } from '../kernel/envelope.js';

let isoMillis = -1;
let isoText = '';

/** `new Date().toISOString()`, made once per millisecond: formatting a date costs more than the rest of an envelope. */
export function isoNow(): string {
  const now = Date.now();
  if (now !== isoMillis) {
    isoMillis = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

/** `(Math.round(ms * 100) / 100).toFixed(2)` for a non-negative duration, without float formatting. */
export function millisText(ms: number): string {
  const hundredths = Math.round(ms * 100);
  const fraction = hundredths % 100;
  return `${(hundredths - fraction) / 100}.${fraction < 10 ? '0' : ''}${fraction}`;
}

/**
 * The same text as `successBody`, with the data's JSON remembered when it is a frozen cache entry
 * (a cached agent is serialised once, not on every read).
 */
export function successText(data: unknown, requestId: string, startedAt: number, version: string): string {
  if (data === undefined) return successBody(data, requestId, startedAt, version);
  const elapsed = Math.round((performance.now() - startedAt) * 100) / 100;
  return `{"success":true,"data":${jsonText(data)},"meta":{"request_id":${JSON.stringify(requestId)},"timestamp":"${isoNow()}","version":${JSON.stringify(version)},"execution_time_ms":${elapsed}}}`;
}

export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`;
}

/** Writes a complete JSON response in one corked write. */
export function sendJson(res: HttpResponse, status: number, body: string, requestId: string, extraHeaders: [string, string][] = []): void {
  res.cork(() => {
    res.writeStatus(statusLine(status));
    res.writeHeader('content-type', 'application/json; charset=utf-8');
    res.writeHeader('x-request-id', requestId);
    for (const [name, value] of extraHeaders) res.writeHeader(name, value);
    res.end(body);
  });
}

export function sendFailure(res: HttpResponse, failure: ApiFailure, requestId: string, extraHeaders: [string, string][] = []): void {
  const headers = failure instanceof UnavailableFailure ? [...extraHeaders, ['retry-after', String(failure.retryAfter)] as [string, string]] : extraHeaders;
  sendJson(res, failure.status, errorBody(failure, requestId), requestId, headers);
}

/**
 * An answer in a client's own wire format (a route with `present`): the presented output without
 * the envelope (204: no body), or the error as `{error, detail}`. An idempotent answer arrives as
 * envelope text (stored to be replayed byte for byte) and is unwrapped here.
 */
export function sendPlain(
  res: HttpResponse,
  status: number,
  outcome: Outcome,
  present: (data: unknown) => unknown,
  requestId: string,
  headers: [string, string][],
): void {
  let data = outcome.data;
  let error: ErrorBody | undefined = outcome.failure?.toBody();
  if (outcome.body !== null) {
    const stored = JSON.parse(outcome.body) as { success: boolean; data?: unknown; error?: ErrorBody };
    data = stored.data;
    error = stored.success ? undefined : stored.error;
  }
  if (error) {
    sendPlainFailure(res, error, outcome.status, requestId, headers);
    return;
  }
  if (status === 204) {
    res.cork(() => {
      res.writeStatus(statusLine(204));
      res.writeHeader('x-request-id', requestId);
      for (const [name, value] of headers) res.writeHeader(name, value);
      res.endWithoutBody();
    });
    return;
  }
  sendJson(res, status, JSON.stringify(present(data)), requestId, headers);
}

export function sendPlainFailure(res: HttpResponse, error: ErrorBody, status: number, requestId: string, headers: [string, string][] = []): void {
  sendJson(res, status, JSON.stringify({ error, detail: error.message, request_id: requestId }), requestId, headers);
}
