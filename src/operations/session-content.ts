import { ApiFailure } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import type { HandlerTable } from './context.js';
import { clientVector, embedText } from './embedding.js';
import { sessionNotFound } from './sessions.js';

type ContentHandlers = Pick<HandlerTable, 'turns.create' | 'turns.list' | 'memories.create' | 'memories.list' | 'memories.delete' | 'memories.search'>;

/** What a session holds besides its state: conversation turns and searchable memories. */
export const sessionContentHandlers: ContentHandlers = {
  'turns.create': async (ctx, input) => {
    const created = await ctx.store.turns.create(ctx.principal.accountId, newId('turn'), input);
    if (!created) throw sessionNotFound(input.session_id);
    // Turns do not change state: before and after are the state the turn was recorded against.
    return { ...created.turn, state_before: created.state, state_after: created.state };
  },

  'turns.list': async (ctx, input) => {
    let afterPk: number | null = null;
    if (input.starting_after !== undefined) {
      if (input.cursor !== undefined) {
        throw new ApiFailure('VALIDATION_ERROR', 'Give either starting_after or cursor, not both', { starting_after: input.starting_after });
      }
      afterPk = await ctx.store.turns.pagingKey(input.session_id, input.starting_after);
      if (afterPk === null) {
        throw new ApiFailure('VALIDATION_ERROR', 'starting_after must be the id of a turn of this session', { starting_after: input.starting_after });
      }
    }
    const page = await ctx.store.turns.list(ctx.principal.accountId, input, afterPk);
    if (!page) throw sessionNotFound(input.session_id);
    return page;
  },

  'memories.create': async (ctx, input) => {
    // Checked before embedding: no embedding call is spent on a session that is not there.
    if (!(await ctx.store.sessions.exists(ctx.principal.accountId, input.session_id))) throw sessionNotFound(input.session_id);
    const vector = input.embedding ? clientVector(ctx, input.embedding, 'embedding') : await embedText(ctx, input.content);
    const memory = await ctx.store.memories.create(ctx.principal.accountId, {
      sessionId: input.session_id,
      id: newId('memory'),
      content: input.content,
      metadata: input.metadata ?? {},
      type: input.type,
      tags: input.tags,
      vector,
      source: input.embedding ? 'client' : 'embedder',
    });
    if (!memory) throw sessionNotFound(input.session_id);
    return memory;
  },

  'memories.list': async (ctx, input) => {
    const page = await ctx.store.memories.list(ctx.principal.accountId, input);
    if (!page) throw sessionNotFound(input.session_id);
    return page;
  },

  'memories.delete': async (ctx, { session_id, memory_id }) => {
    const outcome = await ctx.store.memories.delete(ctx.principal.accountId, session_id, memory_id);
    if (outcome === 'no_session') throw sessionNotFound(session_id);
    if (outcome === 'no_memory') {
      throw new ApiFailure('RESOURCE_NOT_FOUND', 'The requested memory does not exist in this session', { session_id, memory_id }, 'memory');
    }
    return { id: memory_id, deleted: true as const };
  },

  'memories.search': async (ctx, input) => {
    const vector = input.embedding ? clientVector(ctx, input.embedding, 'embedding') : await embedText(ctx, input.query!);
    const results = await ctx.store.memories.search(ctx.principal.accountId, input.session_id, vector, input.limit);
    if (!results) throw sessionNotFound(input.session_id);
    return { data: results };
  },
};
