/**
 * The stategate SDK: `new StateSetClient({ apiKey, baseURL })`, every REST operation of the
 * operation table as a typed method. No Node built-ins: the same module runs in Node 20+ and, as
 * `dist/sdk/stategate-sdk.js` (`npm run build:sdk`), in browsers. `client.realtime()` adds the
 * WebSocket: topics with resume, an offline queue and token streaming.
 */
export { StateSetClient, type StateSetClientOptions, type OperationMethod, type Resources, type ListPage } from './client.js';
export { StateSetError, type StateSetErrorCode, type ClientErrorCode } from './errors.js';
export { type RequestOptions, parseRetryAfter } from './http.js';
export { PagePromise, type Page, type PageData } from './pagination.js';
export {
  RealtimeClient,
  type RealtimeOptions,
  type RealtimeEvent,
  type RealtimeStream,
  type RealtimeCallOptions,
  type Subscription,
  type SubscriptionHandlers,
  type ConnectionState,
  type StateDetail,
  type ResubscribedInfo,
  type StreamStartInput,
  type StoredMessage,
} from './realtime.js';
export type { WebSocketConstructor, WebSocketLike } from '../client.js';
export type { EventName, EventData } from '../../protocol/events.js';
export type { EventFrame, SubscribeResult } from '../../protocol/frames.js';
export type { InputOf, OutputOf, RestOperationName, OperationName } from '../../protocol/operations.js';
