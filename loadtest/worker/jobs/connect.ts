import { nowUs, sleep } from '../../lib/clock.js';
import { encodeHistogram, newHistogram, record } from '../../lib/histogram.js';
import { openLink, type Link } from '../link.js';
import type { Job, JobResult, JobSpec } from '../protocol.js';

/**
 * Opens this worker's share of connections at its share of the rate, then holds them idle until
 * the coordinator (which measures the server's memory meanwhile) says finish.
 */
export interface ConnectParams {
  connections: number;
  /** Connections per second for this worker. */
  rate: number;
}

export function connectJob(spec: JobSpec<ConnectParams>): Job {
  const { params } = spec;
  const latency = newHistogram();
  const links: Link[] = [];
  let failures = 0;
  let dropped = 0;
  let firstError: string | undefined;
  let firstAt = 0;
  let lastAt = 0;

  const openOne = async (index: number) => {
    const started = nowUs();
    try {
      const link = await openLink(spec.target, spec.workerIndex + index * spec.workers, { onFrame() {}, onClose: () => dropped++ }, 15_000);
      const done = nowUs();
      record(latency, done - started);
      firstAt ||= done;
      lastAt = done;
      links.push(link);
    } catch (error) {
      failures++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  };

  return {
    async setup() {},
    async run() {
      // Paced in 10 ms ticks: each tick starts the connections that are due, without waiting.
      const started = Date.now();
      const opening: Array<Promise<void>> = [];
      let begun = 0;
      while (begun < params.connections) {
        const due = Math.min(params.connections, Math.floor(((Date.now() - started) / 1000) * params.rate) + 1);
        for (; begun < due; begun++) opening.push(openOne(begun));
        await sleep(10);
      }
      await Promise.all(opening);
      return { connected: links.length, failures, firstAtUs: firstAt, lastAtUs: lastAt };
    },
    async finish(): Promise<JobResult> {
      const stillOpen = links.filter((link) => link.isOpen).length;
      return {
        counters: { connected: links.length, failures, dropped, still_open: stillOpen },
        histograms: { connect: encodeHistogram(latency) },
        notes: firstError ? [firstError] : [],
      };
    },
    progress: () => ({ connected: links.length, failures }),
    close() {
      for (const link of links) link.close();
    },
  };
}
