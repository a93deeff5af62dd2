import { contracts, type OperationContract, type OperationName } from '../../protocol/index.js';
import { hasPermission, type Principal } from '../auth/keys.js';
import type { Logger } from '../logger.js';
import type { HandlerTable, OperationContext } from '../operations/index.js';
import type { EventPublisher } from '../realtime/publisher.js';
import type { Store } from '../store/store.js';
import { ApiFailure, validationFailure } from './errors.js';

export interface CallOrigin {
  principal: Principal;
  requestId: string;
}

/**
 * The one entry point through which every transport runs an operation: look it up, check the
 * permission, validate the input, run the handler, and (in development) check the output.
 */
export class Operations {
  constructor(
    private readonly handlers: HandlerTable,
    private readonly deps: { store: Store; events: EventPublisher; log: Logger; checkOutput: boolean },
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
    const { store, events, log } = this.deps;
    let child: Logger | undefined;
    return {
      principal: origin.principal,
      requestId: origin.requestId,
      store,
      events,
      // Built on first use: most calls never log.
      get log() {
        return (child ??= log.child({ request_id: origin.requestId, account_id: origin.principal.accountId }));
      },
    };
  }
}
