/**
 * The one error-code table. HTTP status, the StateBase name and the WebSocket meaning are derived
 * from here; handlers never pick a status themselves.
 *
 * The first seven codes are the StateSet document's table. The rest are extensions for cases the
 * document does not name; each keeps the same envelope.
 */
export const ERROR_CODES = {
  INVALID_API_KEY: { status: 401, statebase: 'authentication_failed', message: 'API key is invalid or missing' },
  INSUFFICIENT_PERMISSIONS: { status: 403, statebase: 'permission_denied', message: 'API key lacks required permissions' },
  RESOURCE_NOT_FOUND: { status: 404, statebase: 'not_found', message: 'Requested resource does not exist' },
  VALIDATION_ERROR: { status: 400, statebase: 'invalid_request', message: 'Invalid request parameters' },
  RATE_LIMITED: { status: 429, statebase: 'rate_limit_exceeded', message: 'Too many requests' },
  INTERNAL_ERROR: { status: 500, statebase: 'internal_error', message: 'Server error' },
  SERVICE_UNAVAILABLE: { status: 503, statebase: 'service_unavailable', message: 'Temporary service issue' },
  // Extensions.
  METHOD_NOT_ALLOWED: { status: 405, statebase: 'method_not_allowed', message: 'Method not allowed on this route' },
  CONFLICT: { status: 409, statebase: 'conflict', message: 'The request conflicts with the current state' },
  PAYLOAD_TOO_LARGE: { status: 413, statebase: 'payload_too_large', message: 'Request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, statebase: 'unsupported_media_type', message: 'Content-Type must be application/json' },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    statebase: 'idempotency_key_reused',
    message: 'This Idempotency-Key was used with a different request',
  },
} as const satisfies Record<string, { status: number; statebase: string; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/**
 * The StateBase vocabulary for a code. A not-found names its resource (`session_not_found`),
 * as the Sessions document does, so either kind of client can match on it.
 */
export function statebaseCodeOf(code: ErrorCode, resource?: string): string {
  if (code === 'RESOURCE_NOT_FOUND' && resource) return `${resource}_not_found`;
  return ERROR_CODES[code].statebase;
}

export const DOCUMENTATION_BASE_URL = 'https://docs.stateset.com/errors/';
