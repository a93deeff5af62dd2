import type { InputOf, OutputOf, RestOperationName } from '../../protocol/operations.js';
import { StateSetError } from './errors.js';
import { Transport, type RequestOptions, type TransportOptions } from './http.js';
import { makePage, PagePromise, type Page, type PageData } from './pagination.js';
import { RealtimeClient, type RealtimeOptions } from './realtime.js';
import { ROUTES } from './routes.js';

export interface StateSetClientOptions {
  /** An API key (`sg_live_…`), or a client token for the operations it is scoped to. */
  apiKey: string;
  /**
   * The gateway, e.g. `http://127.0.0.1:8080` or `https://api.example.com/v1`. Defaults to the
   * page's origin in a browser.
   */
  baseURL?: string;
  /** Milliseconds per attempt; default 30 000. */
  timeout?: number;
  /** Retries after the first attempt; default 3. */
  maxRetries?: number;
  /** A fetch implementation; default the global one. */
  fetch?: typeof fetch;
  /** Sent with every request. */
  defaultHeaders?: Record<string, string>;
  /** Backoff bounds in milliseconds when the gateway names no wait (default 500 and 8 000). */
  initialRetryDelay?: number;
  maxRetryDelay?: number;
  /** The longest `retry_after` (seconds) waited for; a longer one is thrown (default 60). */
  maxRetryAfter?: number;
}

// ---------- types derived from the operation table ----------

type GroupOf<N extends string> = N extends `${infer G}.${string}` ? G : never;
type ItemOf<O> = O extends { data: (infer T)[]; has_more: boolean; next_cursor: string | null } ? T : never;
type IsList<O> = [ItemOf<O>] extends [never] ? false : true;
/** No argument needed when every input field is optional. */
type Args<N extends RestOperationName> =
  Record<string, never> extends InputOf<N> ? [input?: InputOf<N>, options?: RequestOptions] : [input: InputOf<N>, options?: RequestOptions];

/** One operation as a method: a list pages; everything else resolves to the operation's output. */
export type OperationMethod<N extends RestOperationName> =
  IsList<OutputOf<N>> extends true
    ? (...args: Args<N>) => PagePromise<ItemOf<OutputOf<N>>, OutputOf<N> & PageData<ItemOf<OutputOf<N>>>>
    : (...args: Args<N>) => Promise<OutputOf<N>>;

/** `client.agents`, `client.sessions`, …: every REST operation, grouped by the name before the dot. */
export type Resources = {
  [G in GroupOf<RestOperationName>]: {
    [N in Extract<RestOperationName, `${G}.${string}`> as N extends `${G}.${infer M}` ? M : never]: OperationMethod<N>;
  };
};

export type ListPage<N extends RestOperationName> = Page<ItemOf<OutputOf<N>>, OutputOf<N> & PageData<ItemOf<OutputOf<N>>>>;

// ---------- the client ----------

class Client {
  /** The HTTP layer, for requests the typed methods do not cover. */
  readonly transport: Transport;

  constructor(options: StateSetClientOptions) {
    if (!options || typeof options.apiKey !== 'string' || options.apiKey === '') {
      throw new StateSetError({ code: 'INVALID_API_KEY', message: 'StateSetClient needs an apiKey' });
    }
    const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
    const baseURL = options.baseURL ?? origin;
    if (!baseURL) throw new StateSetError({ code: 'VALIDATION_ERROR', message: 'StateSetClient needs a baseURL outside a browser' });
    const transportOptions: TransportOptions = {
      apiKey: options.apiKey,
      baseURL,
      timeout: options.timeout ?? 30_000,
      maxRetries: options.maxRetries ?? 3,
      fetch: options.fetch,
      headers: options.defaultHeaders ?? {},
      initialRetryDelay: options.initialRetryDelay ?? 500,
      maxRetryDelay: options.maxRetryDelay ?? 8_000,
      maxRetryAfter: options.maxRetryAfter ?? 60,
    };
    this.transport = new Transport(transportOptions);

    const groups = this as unknown as Record<string, Record<string, unknown>>;
    for (const name of Object.keys(ROUTES) as RestOperationName[]) {
      const dot = name.indexOf('.');
      const group = name.slice(0, dot);
      const method = name.slice(dot + 1);
      groups[group] ??= {};
      groups[group][method] = ROUTES[name].list
        ? (input?: Record<string, unknown>, requestOptions?: RequestOptions) => new PagePromise(this.listPage(name, input ?? {}, requestOptions))
        : (input?: Record<string, unknown>, requestOptions?: RequestOptions) => this.call(name, (input ?? {}) as InputOf<typeof name>, requestOptions);
    }
  }

  /**
   * A realtime connection over the WebSocket with this client's credentials (or `options.token`).
   * Not connected yet: call `connect()`, or just subscribe or call.
   */
  realtime(options: RealtimeOptions = {}): RealtimeClient {
    const { apiKey, fetch: fetchImpl } = this.transport.options;
    const origin = this.transport.origin;
    return new RealtimeClient(options, {
      apiKey,
      origin,
      // Refused credentials answer 401 on any route; a network failure or anything else is not a refusal.
      probe: async (credential) => {
        const doFetch = fetchImpl ?? ((input: string, init?: RequestInit) => globalThis.fetch(input, init));
        const response = await doFetch(`${origin}/v1/agents?limit=1`, {
          headers: { authorization: `Bearer ${credential}` },
          signal: AbortSignal.timeout(5_000),
        });
        await response.body?.cancel();
        return response.status === 401;
      },
    });
  }

  /** Calls an operation by its name in the table (`'agents.create'`). */
  call<N extends RestOperationName>(name: N, input: InputOf<N>, options?: RequestOptions): Promise<OutputOf<N>> {
    const { method, path } = ROUTES[name];
    const fields: Record<string, unknown> = { ...(input as Record<string, unknown>) };
    let missing: string | undefined;
    const url = path.replace(/\{(\w+)\}/g, (_, key: string) => {
      const value = fields[key];
      delete fields[key];
      if (value === undefined || value === null || value === '') missing ??= key;
      return encodeURIComponent(String(value));
    });
    if (missing !== undefined) {
      return Promise.reject(
        new StateSetError({ code: 'VALIDATION_ERROR', message: `${name} needs ${missing}`, param: missing, details: { [missing]: 'required' } }),
      );
    }
    const hasBody = method !== 'GET' && method !== 'DELETE';
    return this.transport.request<OutputOf<N>>({ method, path: url, ...(hasBody ? { body: fields } : { query: fields }) }, options);
  }

  private async listPage<N extends RestOperationName>(name: N, input: Record<string, unknown>, options: RequestOptions | undefined): Promise<ListPage<N>> {
    const data = (await this.call(name, input as InputOf<N>, options)) as unknown as OutputOf<N> & PageData<ItemOf<OutputOf<N>>>;
    return makePage(data, (cursor) => {
      // The next page: the same filter and sort from the cursor (an offset would contradict it).
      const { offset: _offset, ...rest } = input;
      return this.listPage(name, { ...rest, cursor }, options);
    });
  }
}

export type StateSetClient = Client & Resources;

/** The client of the StateSet document: `new StateSetClient({ apiKey, baseURL, timeout, maxRetries })`. */
export const StateSetClient = Client as unknown as new (options: StateSetClientOptions) => StateSetClient;
