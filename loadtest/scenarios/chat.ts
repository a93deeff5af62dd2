import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures } from '../report/types.js';
import { seedConversations } from '../target/seed.js';
import type { ChatParams } from '../worker/jobs/chat.js';
import { cpuPer, measure } from './measure.js';
import { shareOf, startReport, type Scenario } from './scenario.js';
import { startGatewaySubject } from './subjects.js';

/**
 * A realistic mix on the gateway: many conversations, each with one widget and one agent. The
 * agent's reply is a sequence of short messages today (ReplyStreamer in worker/jobs/reply.ts),
 * to be switched to streamed deltas when token streaming exists. No baseline: the raw servers
 * have no conversations; compare `fanout` and `call` for those.
 */
export const chatScenario: Scenario = {
  name: 'chat',
  title: 'Chat mix: widgets and agents',
  async run(settings, log) {
    const finish = startReport(chatScenario, settings);
    const { subject, gateway } = await startGatewaySubject(settings, log);
    let run: RunFigures;
    try {
      const seeded = await seedConversations(gateway, { agents: settings.agents, conversations: settings.conversations });
      const widgets = seeded.conversationIds.map((conversationId) => ({ conversationId }));
      const agents = seeded.agentIds.map((agentId) => ({ agentId }));
      const measured = await measure({
        label: `chat gateway ${settings.conversations} conversations, ${settings.agents} agents`,
        subject,
        settings,
        kind: 'chat',
        cpuUntil: 'finished',
        log,
        paramsFor: (index): ChatParams => ({
          widgets: shareOf(widgets, index, settings.workers),
          agents: shareOf(agents, index, settings.workers),
          thinkMs: settings.thinkMs,
          chunks: settings.chunks,
          chunkGapMs: settings.chunkGapMs,
          streamed: settings.streamedReplies,
          userContent: 'Hi, where is my order #12345? It was due yesterday.',
          chunkContent: 'Let me check that for you, ',
        }),
      });
      const { counters } = measured;
      const turns = counters.turns_completed ?? 0;
      run = {
        subject: 'gateway',
        variant: `${settings.conversations} conversations`,
        figures: {
          turns_per_s: Math.round((turns / measured.durationS) * 10) / 10,
          messages_per_s: Math.round(((counters.turns_started ?? 0) * (settings.streamedReplies ? 2 : 1 + settings.chunks)) / measured.durationS),
          delivered_per_s: Math.round((counters.delivered ?? 0) / measured.durationS),
          server_cpu_us_per_delivered_event: cpuPer(measured.server, counters.delivered ?? 0),
          server_cores_busy: measured.server ? Math.round(measured.server.cores * 100) / 100 : null,
          timed_out_turns: counters.turns_timed_out ?? 0,
        },
        latency: measured.latency,
        counters,
        server: measured.server,
        notes: measured.notes,
      };
    } finally {
      await subject.stop();
    }
    return finish({
      runs: [run],
      ratioFigures: [],
      primaryLatency: 'full_reply',
      notes: [
        `Each turn: the widget sends a user message; the agent (subscribed to agent:<id>) answers with ${settings.streamedReplies ? `a reply streamed as ${settings.chunks} deltas` : `${settings.chunks} short messages`} ${settings.chunkGapMs} ms apart; the widget thinks ${settings.thinkMs} ms (+-50%) and asks again.`,
        'Token streaming does not exist yet: replies are sequences of short messages behind the ReplyStreamer interface (worker/jobs/reply.ts), ready to switch to streamed deltas.',
        'Histograms: first_chunk and full_reply from the user message being sent; delivery from each message being sent to its arrival at the widget.',
      ],
      targets: (all) => {
        const ours = findRun(all, 'gateway');
        return [
          checkTarget({
            name: 'chat: widgets see their conversation in order',
            target: '0 gaps, 0 duplicates',
            measured: (ours?.counters.gaps ?? NaN) + (ours?.counters.duplicates ?? NaN),
            limit: 0,
            kind: 'equal',
            unit: 'events',
          }),
          checkTarget({ name: 'chat: turns answered', target: '0 timed out', measured: ours?.figures.timed_out_turns, limit: 0, kind: 'equal', unit: 'turns' }),
        ];
      },
    });
  },
};
