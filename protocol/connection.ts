/**
 * A `call` the connection answers itself (not an operation of the table): replaces the
 * connection's credentials in place. The new credential must be for the same account and subject;
 * otherwise it is refused and the old one stays. Subscriptions it no longer covers end, each with
 * an `unsubscribed` frame. Its params and result are `ConnectionRefreshParams` and
 * `ConnectionRefreshResult` (frames.ts).
 *
 * In a file without schemas so that a client names the method without loading zod: the SDK's
 * browser bundle imports it.
 */
export const CONNECTION_REFRESH_METHOD = 'connection.refresh';
