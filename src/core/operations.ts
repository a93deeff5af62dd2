import { contracts, type OperationContract, type OperationName } from '../../protocol/index.js';
import { hasPermission, type Principal } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import type { HandlerTable, OperationContext, RealtimeServices } from '../operations/index.js';
import type { EventPublisher } from '../realtime/publisher.js';
import type { Store } from '../store/store.js';
import { ApiFailure, validationFailure } from './errors.js';

export interface CallOrigin {
  principal: Principal;
  requestId: string;
  /** Set for calls over a WebSocket. */
  connectionId?: string;
}

/**
 * The one entry point through which every transport runs an operation: look it up, check the
 * permission, validate the input, run the handler, and (in development) check the output.
 */
export class Operations {
  constructor(
    private readonly handlers: HandlerTable,
    private readonly deps: { store: Store; events: EventPublisher; realtime: RealtimeServices; log: Logger; checkOutput: boolean },
  ) {}

  contract(name: string): OperationContract | undefined {
    return Object.hasOwn(contracts, name) ? contracts[name as OperationName] : undefined;
  }

  async invoke(name: string, rawInput: unknown, origin: CallOrigin): Promise<unknown> {
    const contract = this.contract(name);
    if (!contract) {
      throw new ApiFailure('RESOURCE_NOT_FOUND', `Unknown method: ${name}`, { method: name }, 'method');
    }
    if (!hasPermission(origin.principal.scopes, contract.permission)) {
      throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `This key lacks the ${contract.permission} permission`, {
        required: contract.permission,
      });
    }
    const parsed = contract.input.safeParse(rawInput ?? {});
    if (!parsed.success) throw validationFailure(parsed.error, `input for ${name}`);
    if (origin.principal.topics) checkTokenScope(contract, parsed.data, origin.principal.topics);

    const ctx = this.context(origin);
    const handler = this.handlers[name as OperationName] as (ctx: OperationContext, input: unknown) => Promise<unknown>;
    const output = await handler(ctx, parsed.data);
    if (this.deps.checkOutput) {
      const checked = contract.output.safeParse(output);
      if (!checked.success) {
        ctx.log.error({ operation: name, issues: checked.error.issues }, 'handler output does not match its contract');
        throw new ApiFailure('INTERNAL_ERROR');
      }
    }
    return output;
  }

  private context(origin: CallOrigin): OperationContext {
    const { store, events, realtime, log } = this.deps;
    let child: Logger | undefined;
    return {
      principal: origin.principal,
      requestId: origin.requestId,
      connectionId: origin.connectionId,
      store,
      events,
      realtime,
      // Built on first use: most calls never log.
      get log() {
        return (child ??= log.child({ request_id: origin.requestId, account_id: origin.principal.accountId }));
      },
    };
  }
}

/** A client token acts only on its topics: the operation must name one, and it must be among them. */
function checkTokenScope(contract: OperationContract, input: unknown, topics: readonly string[]): void {
  const topic = contract.scope?.(input as never);
  if (topic === undefined || !topics.includes(topic)) {
    throw new ApiFailure('INSUFFICIENT_PERMISSIONS', topic ? `This token does not cover ${topic}` : `A client token cannot call ${contract.name}`, {
      ...(topic ? { topic } : { method: contract.name }),
      allowed_topics: topics,
    });
  }
}
