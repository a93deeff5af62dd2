import type { StateView } from '../../protocol/index.js';
import { ApiFailure, notFound } from '../kernel/errors.js';
import { topicsOf } from '../realtime/topics.js';
import type { VersionedSession } from '../store/repos/sessions.js';
import type { HandlerTable, OperationContext } from './context.js';
import { embedText } from './embedding.js';
import { sessionNotFound, settle } from './sessions.js';
import { sessionContentHandlers } from './session-content.js';

/**
 * Operations the StateBase client calls beyond the Sessions document. State writes reuse the
 * versioned writes of `sessions.ts` (same statement, same `session.updated` event in the same
 * transaction); account-level memories are the session memories addressed by id alone, and like
 * them emit no event.
 */
type CompatHandlers = Pick<
  HandlerTable,
  | 'sessions.update'
  | 'sessions.get_state'
  | 'sessions.patch_state'
  | 'sessions.replace_state'
  | 'sessions.rollback_state'
  | 'sessions.state_history'
  | 'turns.get'
  | 'memories.add'
  | 'memories.find'
  | 'memories.find_by_search_path'
  | 'memories.get'
  | 'memories.update'
  | 'memories.remove'
>;

const memoryNotFound = (id: string) => notFound('memory', 'memory_id', id);

/** A write's answer: the state it stored, as `GET …/state` shows it. */
function stateView(result: VersionedSession): StateView {
  const { session } = result;
  return { session_id: session.id, version: result.version, state: session.state, created_at: session.updated_at, updated_at: session.updated_at };
}

async function findMemories(ctx: OperationContext, input: Parameters<CompatHandlers['memories.find']>[1]) {
  const vector = await embedText(ctx, input.query);
  const data = await ctx.store.memories.find(ctx.principal.accountId, vector, {
    sessionId: input.session_id,
    types: input.types?.length ? input.types : undefined,
    tags: input.tags?.length ? input.tags : undefined,
    threshold: input.threshold,
    limit: input.top_k ?? input.limit ?? 10,
  });
  return { data, query: input.query };
}

export const compatHandlers: CompatHandlers = {
  'sessions.update': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const result = await tx.sessions.update(ctx.principal.accountId, input);
      if (!result) throw sessionNotFound(input.session_id);
      // The catalogue's session.updated covers metadata changes: version null, no new state.
      emit(topicsOf.session(result.session.id), 'session.updated', { session: result.session, version: null, reasoning: null });
      return result.session;
    }),

  'sessions.get_state': async (ctx, { session_id }) => {
    const current = await ctx.store.sessions.currentState(ctx.principal.accountId, session_id);
    if (!current) throw sessionNotFound(session_id);
    return { session_id, ...current };
  },

  'sessions.patch_state': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const result = settle(input.session_id, await tx.sessions.updateState(ctx.principal.accountId, input, 'merge'));
      emit(topicsOf.session(input.session_id), 'session.updated', { session: result.session, version: result.version, reasoning: input.reasoning ?? null });
      return stateView(result);
    }),

  'sessions.replace_state': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const result = settle(input.session_id, await tx.sessions.updateState(ctx.principal.accountId, input, 'replace'));
      emit(topicsOf.session(input.session_id), 'session.updated', { session: result.session, version: result.version, reasoning: input.reasoning ?? null });
      return stateView(result);
    }),

  'sessions.rollback_state': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      let target = input.version;
      if (target < 0) {
        // Counted back from the latest: -1 is the version before it.
        const current = await tx.sessions.get(ctx.principal.accountId, input.session_id);
        if (!current) throw sessionNotFound(input.session_id);
        target = current.version + input.version;
        if (target < 0) {
          throw new ApiFailure('VALIDATION_ERROR', `version ${input.version} reaches before version 0 (the latest is ${current.version})`, {
            version: input.version,
            latest_version: current.version,
          });
        }
      }
      const reasoning = input.reasoning ?? input.reason ?? `rollback to version ${target}`;
      const result = settle(
        input.session_id,
        await tx.sessions.rollback(ctx.principal.accountId, {
          session_id: input.session_id,
          version: target,
          reasoning,
          expected_version: input.expected_version,
        }),
        target,
      );
      emit(topicsOf.session(input.session_id), 'session.updated', { session: result.session, version: result.version, reasoning });
      return { success: true as const, session_id: input.session_id, new_version: result.version, restored_from_version: target, state: result.session.state };
    }),

  'sessions.state_history': async (ctx, input) => {
    const found = await ctx.store.sessions.history(ctx.principal.accountId, input);
    if (!found) throw sessionNotFound(input.session_id);
    return {
      data: found.page.data.map((entry) => ({ ...entry, updated_by: null })),
      current_version: found.current,
      has_more: found.page.has_more,
      next_cursor: found.page.next_cursor,
    };
  },

  'turns.get': async (ctx, { session_id, turn_id }) => {
    const found = await ctx.store.turns.get(ctx.principal.accountId, session_id, turn_id);
    if (!found) throw sessionNotFound(session_id);
    if (!found.turn) throw notFound('turn', 'turn_id', turn_id);
    return found.turn;
  },

  'memories.add': (ctx, input) =>
    sessionContentHandlers['memories.create'](ctx, {
      session_id: input.session_id,
      content: input.content,
      metadata: input.metadata ?? undefined,
      type: input.type,
      tags: input.tags ?? [],
    }),

  'memories.find': findMemories,
  'memories.find_by_search_path': findMemories,

  'memories.get': async (ctx, { memory_id }) => {
    const memory = await ctx.store.memories.get(ctx.principal.accountId, memory_id);
    if (!memory) throw memoryNotFound(memory_id);
    return memory;
  },

  'memories.update': async (ctx, input) => {
    // Embedded before the write only when the content changes; an unknown id costs one read.
    const current = await ctx.store.memories.get(ctx.principal.accountId, input.memory_id);
    if (!current) throw memoryNotFound(input.memory_id);
    const content = input.content ?? undefined;
    const vector = content !== undefined && content !== current.content ? await embedText(ctx, content) : undefined;
    const memory = await ctx.store.memories.update(ctx.principal.accountId, input.memory_id, {
      content,
      type: input.type ?? undefined,
      tags: input.tags ?? undefined,
      metadata: input.metadata ?? undefined,
      vector,
    });
    if (!memory) throw memoryNotFound(input.memory_id);
    return memory;
  },

  'memories.remove': async (ctx, { memory_id }) => {
    if (!(await ctx.store.memories.remove(ctx.principal.accountId, memory_id))) throw memoryNotFound(memory_id);
    return { id: memory_id, deleted: true as const };
  },
};
