/**
 * When to restart a worker that died, and when to stop trying. A worker that crashes while
 * serving is restarted with a backoff that grows with the exits of its slot in the last window;
 * one whose replacements keep failing before they are ready (a database that refuses, a port
 * taken) is a problem that restarting will not fix, so past a few such failures the gateway stops
 * with the reason instead of looping.
 */
export interface RestartPolicyOptions {
  /** Start-up failures of one slot within `windowMs` that stop the gateway. */
  maxStartFailures: number;
  windowMs: number;
  /** First restart delay; doubled for every further exit of the slot in the window. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = { maxStartFailures: 5, windowMs: 60_000, baseDelayMs: 250, maxDelayMs: 10_000 };

export type RestartDecision = { restartInMs: number } | { giveUp: string };

export class RestartPolicy {
  /** Slot -> times of its workers' exits, and of those that came before the worker was ready. */
  private readonly exits = new Map<number, { at: number; beforeReady: boolean }[]>();

  constructor(private readonly options: RestartPolicyOptions = DEFAULT_RESTART_POLICY) {}

  /** The worker of `slot` exited unexpectedly at `now`; `ready` tells whether it had got as far as serving. */
  exited(slot: number, ready: boolean, now: number): RestartDecision {
    const recent = (this.exits.get(slot) ?? []).filter((exit) => now - exit.at < this.options.windowMs);
    recent.push({ at: now, beforeReady: !ready });
    this.exits.set(slot, recent);
    const startFailures = recent.filter((exit) => exit.beforeReady).length;
    if (startFailures >= this.options.maxStartFailures) {
      return { giveUp: `worker ${slot} failed to start ${startFailures} times within ${Math.round(this.options.windowMs / 1000)} s` };
    }
    return { restartInMs: Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (recent.length - 1)) };
  }
}
