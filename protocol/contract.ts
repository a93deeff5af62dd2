import { z } from 'zod';
import { Id } from './common.js';

/**
 * The contract of every operation, defined once: its name (also the WebSocket `call` method),
 * route, permission and schemas. The server implements each by name; clients get types from it.
 */
export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface OperationContract<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  name: string;
  summary: string;
  /**
   * `path` uses `{param}` for values taken from the path; they become input fields. Absent for
   * operations that only make sense on a connection that receives events (subscribe).
   */
  http?: { method: HttpMethod; path: string; status?: number };
  /** The permission a key needs; a function when it depends on the input (the topic's kind). */
  permission: string | ((input: z.output<I>) => string);
  input: I;
  output: O;
  /**
   * The topic a call acts on, from its parsed input, or the topics when it acts on several (a batch
   * read). Client tokens are limited to their topics, so only operations that name them can be
   * called with a token, and a token must cover every topic named.
   */
  scope?: (input: z.output<I>) => string | readonly string[];
  /**
   * Not counted against the per-minute request budget: many small frames inside one logical
   * request (stream deltas, typing), bounded by the connection's frame rate instead.
   */
  unmetered?: true;
}

/** An operation served over REST and WebSocket calls alike. */
export type RestContract<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> = OperationContract<I, O> & {
  http: NonNullable<OperationContract['http']>;
};

export function contract<I extends z.ZodType, O extends z.ZodType>(c: RestContract<I, O>): RestContract<I, O> {
  return c;
}

/** An operation only for connections that receive events (WebSocket): no REST route. */
export function connectionContract<I extends z.ZodType, O extends z.ZodType>(c: Omit<OperationContract<I, O>, 'http'>): OperationContract<I, O> {
  return c;
}

/** An input that is one id taken from the path, e.g. `{agent_id}`. */
export const byId = <K extends string>(key: K) => z.strictObject({ [key]: Id } as { [P in K]: typeof Id });
