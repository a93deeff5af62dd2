import { newId } from '../kernel/ids.js';
import { notFound } from '../kernel/errors.js';
import { topicsOf } from '../realtime/topics.js';
import type { HandlerTable } from './context.js';

type AgentHandlers = Pick<HandlerTable, 'agents.create' | 'agents.get' | 'agents.list' | 'agents.update' | 'agents.delete'>;

export const agentHandlers: AgentHandlers = {
  'agents.create': (ctx, input) =>
    ctx.write(async (tx, emit) => {
      const agent = await tx.agents.create(ctx.principal.accountId, newId('agent'), input);
      emit(topicsOf.agent(agent.id), 'agent.created', { agent });
      return agent;
    }),

  'agents.get': (ctx, { agent_id }) => {
    const accountId = ctx.principal.accountId;
    // A cached agent is answered synchronously: no promise on the hottest read.
    const cached = ctx.caches.agents.peek(accountId, agent_id);
    if (cached) return cached;
    return ctx.caches.agents
      .read(accountId, agent_id, () => ctx.store.agents.get(accountId, agent_id))
      .then((agent) => {
        if (!agent) throw notFound('agent', 'agent_id', agent_id);
        return agent;
      });
  },

  'agents.list': (ctx, input) => ctx.store.agents.list(ctx.principal.accountId, input),

  'agents.update': async (ctx, input) => {
    const agent = await ctx.write(async (tx, emit) => {
      const updated = await tx.agents.update(ctx.principal.accountId, input);
      if (!updated) throw notFound('agent', 'agent_id', input.agent_id);
      emit(topicsOf.agent(updated.id), 'agent.updated', { agent: updated });
      return updated;
    });
    ctx.caches.agents.invalidate(ctx.principal.accountId, agent.id);
    return agent;
  },

  'agents.delete': async (ctx, { agent_id }) => {
    await ctx.write(async (tx, emit) => {
      if (!(await tx.agents.delete(ctx.principal.accountId, agent_id))) throw notFound('agent', 'agent_id', agent_id);
      emit(topicsOf.agent(agent_id), 'agent.deleted', { agent_id });
    });
    ctx.caches.agents.invalidate(ctx.principal.accountId, agent_id);
    return { id: agent_id, deleted: true as const };
  },
};
