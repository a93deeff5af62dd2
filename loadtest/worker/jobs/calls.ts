import { nowUs, sleep } from '../../lib/clock.js';
import { frameType, integerField } from '../../lib/fields.js';
import { encodeHistogram, newHistogram, record } from '../../lib/histogram.js';
import { openLink, openMany, type Link } from '../link.js';
import type { Job, JobResult, JobSpec } from '../protocol.js';

/**
 * Request/answer load over WebSocket: each connection keeps `window` frames in flight (1 is a
 * closed loop). A frame is `prefix + id + suffix`, built by string concatenation, so the client
 * spends its time on the wire, not on JSON. Any answer with the same id counts as a round trip;
 * an `error` frame counts as an error.
 */
export interface CallsParams {
  connections: number;
  window: number;
  /** Connection i uses templates[i % templates.length]. */
  templates: Array<{ prefix: string; suffix: string }>;
  /** Load before the measured window (JIT, caches); its latencies and counts are discarded. */
  warmupMs: number;
}

export interface CallsRunOutput {
  /** Answers within the measured window. */
  atDeadline: number;
  /** Answers from the end of the warm-up until the last one in flight came back. */
  answered: number;
}

interface Channel {
  link: Link;
  template: { prefix: string; suffix: string };
  /** id -> send time (us) */
  pending: Map<number, number>;
}

export function callsJob(spec: JobSpec<CallsParams>): Job {
  const { params } = spec;
  let latency = newHistogram();
  const channels: Channel[] = [];
  let nextId = 1;
  let ok = 0;
  let errors = 0;
  let closed = 0;
  let running = false;
  let setupFailures = 0;
  let firstError: string | undefined;

  const sendOne = (channel: Channel) => {
    const id = nextId++;
    channel.pending.set(id, nowUs());
    channel.link.send(channel.template.prefix + id + channel.template.suffix);
  };

  return {
    async setup() {
      const opened = await openMany(params.connections, async (index) => {
        const channel: Channel = { link: undefined as unknown as Link, template: params.templates[index % params.templates.length]!, pending: new Map() };
        channel.link = await openLink(spec.target, spec.workerIndex + index * spec.workers, {
          onFrame(frame) {
            const id = integerField(frame, 'id');
            const sentAt = channel.pending.get(id);
            if (sentAt === undefined) return;
            channel.pending.delete(id);
            record(latency, nowUs() - sentAt);
            if (frameType(frame) === 'error') {
              errors++;
              firstError ??= frame.toString('utf8', 0, 300);
            } else ok++;
            if (running) sendOne(channel);
          },
          onClose: () => closed++,
        });
        channels.push(channel);
        return channel.link;
      });
      setupFailures = opened.failures;
      if (opened.firstError) firstError = opened.firstError;
    },
    async run(durationMs): Promise<CallsRunOutput> {
      running = true;
      for (const channel of channels) for (let slot = 0; slot < params.window; slot++) sendOne(channel);
      await sleep(params.warmupMs);
      latency = newHistogram();
      const atWarmup = ok + errors;
      await sleep(durationMs);
      running = false;
      const atDeadline = ok + errors - atWarmup;
      // Let the frames in flight come back so that they do not leak into the next measurement.
      const deadline = Date.now() + 5000;
      while (channels.some((channel) => channel.pending.size > 0) && Date.now() < deadline) await sleep(10);
      return { atDeadline, answered: ok + errors - atWarmup };
    },
    async finish(): Promise<JobResult> {
      const unanswered = channels.reduce((sum, channel) => sum + channel.pending.size, 0);
      return {
        counters: { ok, errors, closed, setup_failures: setupFailures, unanswered, connections: channels.length },
        histograms: { round_trip: encodeHistogram(latency) },
        notes: firstError ? [firstError] : [],
      };
    },
    progress: () => ({ round_trips: ok + errors, errors }),
    close() {
      running = false;
      for (const channel of channels) channel.link.close();
    },
  };
}
