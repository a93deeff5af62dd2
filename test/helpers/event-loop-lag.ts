/**
 * How long the event loop was blocked while the probe ran: the longest gap between ticks of a
 * short timer. The gateway of `startTestGateway` runs in the test's process, so a request that
 * blocks it shows here, whatever the machine's speed (no wall-clock timing of one function).
 *
 * A gap counts for at most the CPU time the process spent during it: on a loaded machine (test
 * files run in parallel, load-test subprocesses) a process that was merely not scheduled shows a
 * long gap with little CPU, and that is not the gateway blocking. A blocked event loop burns CPU
 * for all of its gap, so a real stall still shows in full.
 */
export interface LagProbe {
  /** Stops the timer; the longest gap seen, in milliseconds. */
  stop(): number;
}

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

export function probeEventLoopLag(intervalMs = 5): LagProbe {
  let last = performance.now();
  let lastCpu = cpuMs();
  let longest = 0;
  const tick = () => {
    const now = performance.now();
    const cpu = cpuMs();
    longest = Math.max(longest, Math.min(now - last, cpu - lastCpu));
    last = now;
    lastCpu = cpu;
  };
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      // The gap still open when stopped counts too (the loop may have been blocked until now).
      tick();
      return longest;
    },
  };
}
