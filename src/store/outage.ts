import { UnavailableFailure } from '../kernel/errors.js';
import type { Logger } from '../logger.js';

/**
 * PostgreSQL outages: an error that says the server cannot be reached (refused, reset, shut down,
 * too many connections) becomes 503 SERVICE_UNAVAILABLE with a retry hint instead of a 500, and is
 * logged once when the outage starts and once when it ends, not once per request.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
// SQLSTATE: 08xxx connection exceptions, admin/crash shutdown, cannot connect now, too many connections.
const SQLSTATES = /^(08...|57P01|57P02|57P03|53300)$/;
// pg's own errors carry no code.
const PG_MESSAGES = /Connection terminated|connection error|timeout exceeded when trying to connect|Client was closed|not queryable/i;

/** Seconds a client is told to wait before retrying. */
export const STORE_RETRY_AFTER_SECONDS = 1;

export function isOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || SQLSTATES.test(code))) return true;
  // AggregateError: a host name resolving to several addresses, each refused.
  if (error instanceof AggregateError) return error.errors.some(isOutage);
  return PG_MESSAGES.test(error.message);
}

export class OutageTracker {
  private down = false;

  constructor(private readonly log: Logger | undefined) {}

  /** Runs one store call, translating an outage and noting when the store is back. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await call();
    } catch (error) {
      throw this.failed(error);
    }
    this.succeeded();
    return result;
  }

  failed(error: unknown): unknown {
    if (!isOutage(error)) return error;
    if (!this.down) {
      this.down = true;
      this.log?.warn(
        { err: { message: (error as Error).message, code: (error as { code?: unknown }).code } },
        'PostgreSQL unreachable: answering 503 until it is back',
      );
    }
    return new UnavailableFailure('The database is unreachable; retry shortly', { component: 'store' }, STORE_RETRY_AFTER_SECONDS);
  }

  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    this.log?.info('PostgreSQL reachable again');
  }
}
