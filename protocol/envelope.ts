import { z } from 'zod';
import { ERROR_CODE_NAMES } from './errors.js';

/** `meta` of a success response, as the StateSet document shows it. */
export const SuccessMeta = z.object({
  request_id: z.string(),
  timestamp: z.string(),
  version: z.string(),
  execution_time_ms: z.number(),
});

export const ErrorBody = z.object({
  /** StateSet vocabulary (`RESOURCE_NOT_FOUND`). */
  code: z.enum(ERROR_CODE_NAMES),
  /** StateBase vocabulary (`session_not_found`), so clients of either document can match. */
  type: z.string(),
  message: z.string(),
  /** The input field the error is about, when there is one (StateBase clients read it). */
  param: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  retry_after: z.number().optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export const ErrorMeta = z.object({
  request_id: z.string(),
  timestamp: z.string(),
  documentation_url: z.string(),
});

export function successEnvelope<T extends z.ZodType>(data: T) {
  return z.object({ success: z.literal(true), data, meta: SuccessMeta });
}

export const ErrorEnvelope = z.object({
  success: z.literal(false),
  error: ErrorBody,
  meta: ErrorMeta,
});
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;

export interface SuccessEnvelope<T> {
  success: true;
  data: T;
  meta: z.infer<typeof SuccessMeta>;
}
