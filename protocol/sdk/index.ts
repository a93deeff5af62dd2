/**
 * The stategate SDK: `new StateSetClient({ apiKey, baseURL })`, every REST operation of the
 * operation table as a typed method. No Node built-ins: the same module runs in Node 20+ and, as
 * `dist/sdk/stategate-sdk.js` (`npm run build:sdk`), in browsers.
 */
export { StateSetClient, type StateSetClientOptions, type OperationMethod, type Resources, type ListPage } from './client.js';
export { StateSetError, type StateSetErrorCode, type ClientErrorCode } from './errors.js';
export { type RequestOptions, parseRetryAfter } from './http.js';
export { PagePromise, type Page, type PageData } from './pagination.js';
export type { InputOf, OutputOf, RestOperationName, OperationName } from '../operations.js';
