import { ERROR_CODES, type ErrorCode } from '../../protocol/errors.js';
import { isRetryableStatus, StateSetError } from './errors.js';

/**
 * The HTTP layer of the SDK: one logical request, its attempts, their time-outs and the waits
 * between them. Uses only `fetch`, `AbortController`, `setTimeout` and `crypto`, which Node 20
 * and browsers share.
 */
export interface TransportOptions {
  apiKey: string;
  /** Gateway origin, with or without `/v1`. */
  baseURL: string;
  /** Milliseconds per attempt. */
  timeout: number;
  maxRetries: number;
  fetch: typeof fetch | undefined;
  headers: Record<string, string>;
  /** Backoff when the gateway names no wait: `initialRetryDelay * 2^n`, capped, with jitter. */
  initialRetryDelay: number;
  maxRetryDelay: number;
  /** A `retry_after` longer than this (seconds) is not waited for: the error is thrown instead. */
  maxRetryAfter: number;
}

/** Per-call options: the second argument of every method. */
export interface RequestOptions {
  /** Replaces the generated key of a POST (a key reused across the caller's own retries). */
  idempotencyKey?: string;
  timeout?: number;
  maxRetries?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface HttpRequest {
  method: string;
  /** Path from the root, starting with `/v1`. */
  path: string;
  query?: Record<string, unknown>;
  body?: unknown;
}

const RETRY_AFTER_HEADER = 'retry-after';

export class Transport {
  readonly origin: string;

  constructor(readonly options: TransportOptions) {
    // The document's baseURL ends with /v1; operation paths carry it already.
    this.origin = options.baseURL.replace(/\/+$/, '').replace(/\/v1$/, '');
  }

  async request<T>(request: HttpRequest, options: RequestOptions = {}): Promise<T> {
    const maxRetries = options.maxRetries ?? this.options.maxRetries;
    const timeout = options.timeout ?? this.options.timeout;
    const url = this.origin + request.path + toQuery(request.query);
    // One key for the logical request: every retry of a POST carries the same one, so the
    // gateway applies it once however many attempts reached it.
    const idempotencyKey = request.method === 'POST' ? (options.idempotencyKey ?? newIdempotencyKey()) : undefined;
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.options.apiKey}`,
      ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      ...this.options.headers,
      ...options.headers,
    };
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);

    for (let attempt = 0; ; attempt++) {
      let failure: StateSetError;
      try {
        return await this.attempt<T>(url, request.method, headers, body, timeout, options.signal);
      } catch (error) {
        if (!(error instanceof StateSetError)) throw error;
        failure = error;
      }
      if (!failure.retryable || attempt >= maxRetries) throw failure;
      const wait = this.retryDelay(failure, attempt);
      if (wait === null) throw failure;
      await sleep(wait, options.signal);
    }
  }

  /** Milliseconds before the next attempt, or null when the gateway's wait is too long to honour. */
  retryDelay(failure: StateSetError, attempt: number): number | null {
    if (failure.retryAfter !== undefined && failure.retryAfter > 0) {
      if (failure.retryAfter > this.options.maxRetryAfter) return null;
      const ms = failure.retryAfter * 1000;
      // A little jitter on top, never below what was asked.
      return ms + Math.random() * Math.min(1000, ms * 0.1);
    }
    const ceiling = Math.min(this.options.maxRetryDelay, this.options.initialRetryDelay * 2 ** attempt);
    // Equal jitter: at least half the step, so waits still grow.
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  private async attempt<T>(
    url: string,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    timeout: number,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    if (signal?.aborted) throw aborted(signal);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeout);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let response: Response;
      let text: string;
      try {
        const fetchImpl = this.options.fetch ?? ((input: string, init?: RequestInit) => globalThis.fetch(input, init));
        response = await fetchImpl(url, { method, headers, ...(body === undefined ? {} : { body }), signal: controller.signal });
        text = await response.text();
      } catch (error) {
        if (signal?.aborted) throw aborted(signal);
        if (timedOut) throw new StateSetError({ code: 'TIMEOUT', message: `${method} ${url} timed out after ${timeout} ms`, cause: error });
        throw new StateSetError({ code: 'CONNECTION_ERROR', message: `${method} ${url} failed: ${messageOf(error)}`, cause: error });
      }
      return parseAnswer<T>(response, text);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

interface Envelope {
  success?: boolean;
  data?: unknown;
  error?: { code?: string; type?: string; message?: string; param?: string; details?: Record<string, unknown>; retry_after?: number };
  meta?: { request_id?: string };
}

function parseAnswer<T>(response: Response, text: string): T {
  const headerRequestId = response.headers.get('x-request-id') ?? undefined;
  const retryAfterHeader = parseRetryAfter(response.headers.get(RETRY_AFTER_HEADER));
  let envelope: Envelope | undefined;
  try {
    envelope = text === '' ? undefined : (JSON.parse(text) as Envelope);
  } catch {
    envelope = undefined;
  }
  if (response.ok && envelope?.success === true) return envelope.data as T;
  const requestId = envelope?.meta?.request_id ?? headerRequestId;
  const error = envelope?.error;
  if (!response.ok && error && typeof error.code === 'string') {
    return throwError({
      code: error.code as ErrorCode,
      message: error.message ?? `HTTP ${response.status}`,
      ...(error.type ? { type: error.type } : {}),
      ...(error.param ? { param: error.param } : {}),
      ...(error.details ? { details: error.details } : {}),
      status: response.status,
      ...(requestId ? { requestId } : {}),
      ...retryAfterOf(typeof error.retry_after === 'number' ? error.retry_after : retryAfterHeader),
    });
  }
  if (response.ok) {
    return throwError({
      code: 'INVALID_RESPONSE',
      message: `HTTP ${response.status} without the gateway's envelope`,
      status: response.status,
      ...(requestId ? { requestId } : {}),
    });
  }
  // An error without the envelope (a proxy in between): name it by its status.
  const code = codeOfStatus(response.status);
  return throwError({
    code,
    message: `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''}`,
    ...(code === 'INVALID_RESPONSE' ? {} : { type: ERROR_CODES[code].statebase }),
    status: response.status,
    ...(requestId ? { requestId } : {}),
    ...retryAfterOf(retryAfterHeader),
  });
}

function throwError(init: ConstructorParameters<typeof StateSetError>[0]): never {
  throw new StateSetError(init);
}

function retryAfterOf(value: number | undefined): { retryAfter?: number } {
  return value === undefined ? {} : { retryAfter: value };
}

function codeOfStatus(status: number): ErrorCode | 'INVALID_RESPONSE' {
  for (const [code, spec] of Object.entries(ERROR_CODES)) if (spec.status === status) return code as ErrorCode;
  if (status === 502 || status === 504) return 'SERVICE_UNAVAILABLE';
  if (isRetryableStatus(status)) return 'INTERNAL_ERROR';
  return 'INVALID_RESPONSE';
}

/** `Retry-After` as seconds (a number of seconds, or an HTTP date). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

function aborted(signal: AbortSignal): StateSetError {
  return new StateSetError({ code: 'ABORTED', message: 'request aborted', cause: signal.reason });
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Query string of a GET: objects (a filter) as JSON text, which every list accepts. */
export function toQuery(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

interface CryptoLike {
  randomUUID?: () => string;
  getRandomValues?: (array: Uint8Array) => Uint8Array;
}

/** A random key; `crypto.randomUUID` where it exists (not on plain-HTTP pages), random bytes otherwise. */
export function newIdempotencyKey(): string {
  const crypto = (globalThis as { crypto?: CryptoLike }).crypto;
  if (crypto?.randomUUID) return `sdk_${crypto.randomUUID()}`;
  const bytes = new Uint8Array(16);
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return `sdk_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
