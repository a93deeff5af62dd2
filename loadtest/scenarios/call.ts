import { checkTarget, findRun } from '../report/compare.js';
import type { RunFigures, TargetCheck } from '../report/types.js';
import type { Settings } from '../settings.js';
import type { CallsParams, CallsRunOutput } from '../worker/jobs/calls.js';
import { cpuPer, measure } from './measure.js';
import { countShare, startReport, warmupFor, type Scenario } from './scenario.js';
import { seedConversations } from '../target/seed.js';
import { baselineNames, startBaseline, startGatewaySubject, withSubject, type Subject } from './subjects.js';

/**
 * Closed-loop WebSocket calls: one in flight per connection. Each method is a variant; the
 * baselines echo the very same frame, so the bytes on the wire are the same.
 */
export type Template = { prefix: string; suffix: string };

/** Conversations `messages.create` writes to: connection i writes to conversation i % this (group commit spreads over them). */
const CALL_CONVERSATIONS = 20;

export function templatesFor(method: string, agentId: string, conversationIds: string[]): Template[] {
  if (method === 'ping') return [{ prefix: '{"type":"ping","id":', suffix: '}' }];
  if (method === 'agents.get') return [{ prefix: '{"type":"call","id":', suffix: `,"method":"agents.get","params":{"agent_id":"${agentId}"}}` }];
  if (method === 'messages.create') {
    return conversationIds.map((id) => ({
      prefix: '{"type":"call","id":',
      suffix: `,"method":"messages.create","params":{"conversation_id":"${id}","role":"user","content":"I need help with my order","metadata":{"source":"loadtest"}}}`,
    }));
  }
  throw new Error(`call: no frame for method ${method} (known: ping, agents.get, messages.create)`);
}

export async function runCalls(subject: Subject, settings: Settings, log: (line: string) => void, variant: string, templates: Template[]): Promise<RunFigures> {
  const connections = settings.connections ?? (settings.quick ? 20 : 200);
  const warmupMs = warmupFor(settings);
  const measured = await measure({
    warmupMs,
    label: `call ${subject.name} ${variant}`,
    subject,
    settings,
    kind: 'calls',
    cpuUntil: 'ran',
    log,
    paramsFor: (index): CallsParams => ({ connections: countShare(connections, index, settings.workers), window: 1, templates, warmupMs }),
  });
  const outputs = measured.outputs as CallsRunOutput[];
  const atDeadline = outputs.reduce((sum, output) => sum + output.atDeadline, 0);
  const answered = outputs.reduce((sum, output) => sum + output.answered, 0);
  return {
    subject: subject.name,
    variant,
    figures: {
      round_trips_per_s: Math.round(atDeadline / measured.durationS),
      server_cpu_us_per_call: cpuPer(measured.server, answered),
      server_cores_busy: measured.server ? Math.round(measured.server.cores * 100) / 100 : null,
      connections: measured.counters.connections ?? 0,
    },
    latency: measured.latency,
    counters: measured.counters,
    server: measured.server,
    ...(measured.alongside ? { alongside: measured.alongside } : {}),
    notes: measured.notes,
  };
}

export const callScenario: Scenario = {
  name: 'call',
  title: 'WebSocket calls, closed loop',
  async run(settings, log) {
    const finish = startReport(callScenario, settings);
    const runs: RunFigures[] = [];
    const { subject, gateway } = await startGatewaySubject(settings, log);
    const templates: Record<string, Template[]> = {};
    try {
      const writes = settings.methods.includes('messages.create');
      const seeded = await seedConversations(gateway, { agents: 1, conversations: writes ? CALL_CONVERSATIONS : 0 });
      for (const method of settings.methods) templates[method] = templatesFor(method, seeded.agentIds[0]!, seeded.conversationIds);
      for (const method of settings.methods) runs.push(await runCalls(subject, settings, log, method, templates[method]!));
    } finally {
      await subject.stop();
    }
    for (const name of baselineNames(settings)) {
      for (const method of settings.methods)
        runs.push(
          await withSubject(
            () => startBaseline(name, 'echo'),
            (baseline) => runCalls(baseline, settings, log, method, templates[method]!),
          ),
        );
    }
    return finish({
      runs,
      ratioFigures: ['round_trips_per_s', 'server_cpu_us_per_call'],
      primaryLatency: 'round_trip',
      targets: (all) =>
        settings.methods.map((method): TargetCheck => {
          const ours = findRun(all, 'gateway', method)?.figures.server_cpu_us_per_call;
          const uws = findRun(all, 'uws', method)?.figures.server_cpu_us_per_call;
          return checkTarget({
            name: `call ${method}: server CPU per call`,
            target: '<= 2x raw uWS echo',
            measured: ours,
            limit: uws == null ? null : 2 * uws,
            kind: 'at most',
            unit: 'us',
            why: uws == null ? 'needs the uws baseline and a local gateway' : undefined,
          });
        }),
      notes: [
        'Baselines echo the same frame the gateway gets; the gateway answers `ping` with a short pong, `agents.get` with the agent (about 300 B) read from the store, and `messages.create` with the stored message after its group commit (connections spread over ' +
          `${CALL_CONVERSATIONS} conversations).`,
        'Server CPU = user+sys of the server process(es) from /proc over the measured window, divided by answered calls.',
      ],
    });
  },
};
