import { STATUS_CODES } from 'node:http';
import { errorBody } from '../kernel/envelope.js';
import { UnavailableFailure, type ApiFailure } from '../kernel/errors.js';
import type { HttpResponse } from './uws.js';

export { API_VERSION } from '../../protocol/index.js';
export { errorEnvelope, successBody } from '../kernel/envelope.js';

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
