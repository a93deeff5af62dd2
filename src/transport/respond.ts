import { STATUS_CODES } from 'node:http';
import { DOCUMENTATION_BASE_URL, type ErrorEnvelope } from '../../protocol/index.js';
import type { ApiFailure } from '../core/errors.js';
import type { HttpResponse } from './uws.js';

export const API_VERSION = 'v1';

export function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`;
}

export function successBody(data: unknown, requestId: string, startedAt: number): string {
  return JSON.stringify({
    success: true,
    data,
    meta: {
      request_id: requestId,
      timestamp: new Date().toISOString(),
      version: API_VERSION,
      execution_time_ms: Math.round((performance.now() - startedAt) * 100) / 100,
    },
  });
}

export function errorEnvelope(failure: ApiFailure, requestId: string): ErrorEnvelope {
  return {
    success: false,
    error: failure.toBody(),
    meta: {
      request_id: requestId,
      timestamp: new Date().toISOString(),
      documentation_url: `${DOCUMENTATION_BASE_URL}${failure.code}`,
    },
  };
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

export function sendFailure(res: HttpResponse, failure: ApiFailure, requestId: string): void {
  sendJson(res, failure.status, JSON.stringify(errorEnvelope(failure, requestId)), requestId);
}
