import type { Session } from '../../protocol/index.js';
import { ApiFailure, notFound } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import type { Emit } from '../realtime/events.js';
import { topicsOf } from '../realtime/topics.js';
import type { VersionedSession, WriteMiss } from '../store/repos/sessions.js';
import type { HandlerTable } from './context.js';
import { embedText } from './embedding.js';

type SessionHandlers = Pick<
  HandlerTable,
  | 'sessions.create'
  | 'sessions.get'
  | 'sessions.list'
  | 'sessions.delete'
  | 'sessions.context'
  | 'sessions.update_state'
  | 'sessions.rollback'
  | 'sessions.fork'
  | 'sessions.versions'
>;

export const sessionNotFound = (id: string) => notFound('session', 'session_id', id);

/** A versioned write either produced a session or says why not, as the client should hear it. */
export function settle(sessionId: string, result: VersionedSession | WriteMiss, requested?: number): VersionedSession {
  if ('session' in result) return result;
  switch (result.kind) {
    case 'missing':
      throw sessionNotFound(sessionId);
    case 'conflict':
      throw new ApiFailure('CONFLICT', `The session's state is at version ${result.current}, not the expected version`, {
        session_id: sessionId,
        current_version: result.current,
        suggestion: 'Read the session again, then retry with expected_version set to its latest version',
      });
    case 'no_version':
      throw new ApiFailure(
        'RESOURCE_NOT_FOUND',
        `Version ${requested} does not exist; the latest version of this session is ${result.latest}`,
        { session_id: sessionId, version: requested, latest_version: result.latest },
        'version',
      );
  }
}

function announceUpdate(emit: Emit, result: VersionedSession, reasoning: string | null): void {
  emit(topicsOf.session(result.session.id), 'session.updated', { session: result.session, version: result.version, reasoning });
}

function announceCreated(emit: Emit, session: Session): void {
  emit(topicsOf.session(session.id), 'session.created', { session });
}

export const sessionHandlers: SessionHandlers = {
  'sessions.create': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const session = await tx.sessions.create(ctx.principal.accountId, newId('session'), input);
      announceCreated(emit, session);
      return session;
    }),

  'sessions.get': async (ctx, { session_id }) => {
    const found = await ctx.store.sessions.get(ctx.principal.accountId, session_id);
    if (!found) throw sessionNotFound(session_id);
    return found.session;
  },

  'sessions.list': async (ctx, input) => {
    let afterPk: number | null = null;
    if (input.starting_after !== undefined) {
      if (input.cursor !== undefined) {
        throw new ApiFailure('VALIDATION_ERROR', 'Give either starting_after or cursor, not both', { starting_after: input.starting_after });
      }
      afterPk = await ctx.store.sessions.pagingKey(ctx.principal.accountId, input.starting_after);
      if (afterPk === null) {
        throw new ApiFailure('VALIDATION_ERROR', 'starting_after must be the id of a session of this account', {
          starting_after: input.starting_after,
        });
      }
    }
    return ctx.store.sessions.list(ctx.principal.accountId, input, afterPk);
  },

  'sessions.delete': (ctx, { session_id }) =>
    ctx.write(async (tx, emit) => {
      if (!(await tx.sessions.delete(ctx.principal.accountId, session_id))) throw sessionNotFound(session_id);
      emit(topicsOf.session(session_id), 'session.deleted', { session_id });
      return { id: session_id, deleted: true as const };
    }),

  'sessions.context': async (ctx, input) => {
    const query = input.query?.trim();
    const queryVector = query && input.memory_limit > 0 ? await embedText(ctx, query) : null;
    const context = await ctx.store.context.read(ctx.principal.accountId, {
      sessionId: input.session_id,
      queryVector,
      memoryLimit: input.memory_limit,
      turnLimit: input.turn_limit,
    });
    if (!context) throw sessionNotFound(input.session_id);
    return context;
  },

  'sessions.update_state': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const result = settle(input.session_id, await tx.sessions.updateState(ctx.principal.accountId, input));
      announceUpdate(emit, result, input.reasoning ?? null);
      return result.session;
    }),

  'sessions.rollback': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const reasoning = input.reasoning ?? `rollback to version ${input.version}`;
      const result = settle(input.session_id, await tx.sessions.rollback(ctx.principal.accountId, { ...input, reasoning }), input.version);
      announceUpdate(emit, result, reasoning);
      return result.session;
    }),

  'sessions.fork': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const result = settle(input.session_id, await tx.sessions.fork(ctx.principal.accountId, { ...input, newId: newId('session') }), input.version);
      announceCreated(emit, result.session);
      return result.session;
    }),

  'sessions.versions': async (ctx, input) => {
    const page = await ctx.store.sessions.versions(ctx.principal.accountId, input);
    if (!page) throw sessionNotFound(input.session_id);
    return page;
  },
};
