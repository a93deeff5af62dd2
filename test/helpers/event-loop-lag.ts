/**
 * How long the event loop was blocked while the probe ran: the longest gap between ticks of a
 * short timer. The gateway of `startTestGateway` runs in the test's process, so a request that
 * blocks it shows here, whatever the machine's speed (no wall-clock timing of one function).
 */
export interface LagProbe {
  /** Stops the timer; the longest gap seen, in milliseconds. */
  stop(): number;
}

export function probeEventLoopLag(intervalMs = 5): LagProbe {
  let last = performance.now();
  let longest = 0;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
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
