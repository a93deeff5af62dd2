import DataLoader from 'dataloader';
import { MAX_BATCH_KEYS } from '../../../protocol/index.js';
import type { CallOrigin, GatewayCore } from '../core.js';
import { failureError } from './errors.js';
import type { ConnectionSlice, GraphqlContext } from './schema.js';

/** For a mutation sent with an Idempotency-Key: the key, and the text that identifies the request. */
export interface DocumentIdempotency {
  key: string;
  requestText: string;
}

/**
 * The origin of each operation one document runs, in the order they run: the first is `prepaid`
 * (it runs on the rate-limit unit the document paid before it was parsed), the others are not.
 */
export function documentOrigins(origin: CallOrigin): () => CallOrigin {
  let prepaid = true;
  return () => {
    const next: CallOrigin = { ...origin, startedAt: performance.now(), prepaid };
    prepaid = false;
    return next;
  };
}

/**
 * What one document's resolvers run through: every field that reaches data is an operation of
 * `GatewayCore.execute` for the document's caller (`nextOrigin`, see documentOrigins), and the
 * relations are batch-loaded (one statement per level and slice) through the batch operations.
 */
export function contextFor(core: GatewayCore, nextOrigin: () => CallOrigin, idempotency?: DocumentIdempotency): GraphqlContext {
  const call = async (operation: string, input: Record<string, unknown>, path: string) => {
    const outcome = await core.execute(operation, input, {
      ...nextOrigin(),
      ...(idempotency ? { idempotencyKey: idempotency.key, requestText: `${idempotency.requestText}\n${path}` } : {}),
    });
    if (outcome.failure) throw failureError(outcome.failure);
    return outcome.data;
  };
  /** One loader per slice (size, cursors): all parents asking the same slice are one statement. */
  const loaders = <T extends Record<string, unknown>>(operation: string, keysField: string, parentField: string) => {
    const bySlice = new Map<string, DataLoader<string, T[]>>();
    return (parent: string, slice: ConnectionSlice | number): Promise<T[]> => {
      const args: ConnectionSlice = typeof slice === 'number' ? { last: slice } : slice;
      const key = JSON.stringify([args.first, args.last, args.after, args.before]);
      let loader = bySlice.get(key);
      if (!loader) {
        loader = new DataLoader<string, T[]>(
          async (ids) => {
            const { data } = (await call(operation, { [keysField]: [...ids], ...args }, operation)) as { data: T[] };
            const groups = new Map<string, T[]>(ids.map((id) => [id, []]));
            for (const row of data) groups.get(row[parentField] as string)?.push(row);
            return ids.map((id) => groups.get(id)!);
          },
          { maxBatchSize: MAX_BATCH_KEYS },
        );
        bySlice.set(key, loader);
      }
      return loader.load(parent);
    };
  };
  return {
    call,
    conversationsOf: loaders('conversations.last_by_agents', 'agent_ids', 'agent_id'),
    messagesOf: loaders('messages.last_by_conversations', 'conversation_ids', 'conversation_id'),
  };
}
