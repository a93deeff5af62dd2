import type { ClientFrame } from '../../protocol/index.js';

/**
 * The two frames that carry nearly all traffic, `call` and `ping`, recognised without zod when
 * they are plainly valid. Anything else, and anything doubtful, returns null and goes through
 * the `ClientFrame` schema, which stays the one definition of a frame and words every error: so
 * this accepts a strict subset of what the schema accepts, never more.
 */
export function plainlyValidFrame(raw: unknown): ClientFrame | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const frame = raw as Record<string, unknown>;
  if (frame.type === 'call') {
    for (const key in frame) if (!CALL_KEYS.has(key)) return null;
    const { id, method, params, idempotency_key: idempotencyKey } = frame;
    if (!isFrameId(id)) return null;
    if (typeof method !== 'string' || method.length < 1 || method.length > 100) return null;
    if (params !== undefined && !isPlainObject(params)) return null;
    if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey.length < 1 || idempotencyKey.length > 255)) return null;
    if (('params' in frame && params === undefined) || ('idempotency_key' in frame && idempotencyKey === undefined)) return null;
    return frame as ClientFrame;
  }
  if (frame.type === 'ping') {
    for (const key in frame) if (key !== 'type' && key !== 'id') return null;
    if ('id' in frame && !isFrameId(frame.id)) return null;
    return frame as ClientFrame;
  }
  return null;
}

const CALL_KEYS = new Set(['type', 'id', 'method', 'params', 'idempotency_key']);

/** FrameId: a string of 1 to 64 characters or a non-negative (safe) integer. */
function isFrameId(id: unknown): boolean {
  if (typeof id === 'string') return id.length >= 1 && id.length <= 64;
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}
