import { API_VERSION, DOCUMENTATION_BASE_URL, type ErrorEnvelope } from '../../protocol/index.js';
import type { ApiFailure } from './errors.js';

/**
 * The StateSet response envelope as text. Built here, not in a transport, because an idempotent
 * call stores the exact text it answered and replays it byte for byte.
 */
export function successBody(data: unknown, requestId: string, startedAt: number, version: string = API_VERSION): string {
  return JSON.stringify({
    success: true,
    data,
    meta: {
      request_id: requestId,
      timestamp: new Date().toISOString(),
      version,
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

export function errorBody(failure: ApiFailure, requestId: string): string {
  return JSON.stringify(errorEnvelope(failure, requestId));
}
