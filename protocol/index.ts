// The wire contract only (schemas, operations, events, frames, errors, codecs, close codes): what the
// server and every client share. The clients that speak it live in `clients/`, which imports this
// folder; nothing here imports them.
export * from './errors.js';
export * from './envelope.js';
export * from './common.js';
export * from './ids.js';
export * from './resources.js';
export * from './operations.js';
export * from './events.js';
export * from './topics.js';
export * from './frames.js';
export * from './connection.js';
export * from './close-codes.js';
export * from './codec.js';
export * from './query.js';
export * from './versions.js';
export * from './keys.js';
export * from './sessions.js';
export * from './commerce.js';
export * from './webhooks.js';
export * from './realtime.js';
export * from './openapi.js';
export * from './text.js';
export * from './compat.js';
export * from './statebase-view.js';
export * from './batch-operations.js';
