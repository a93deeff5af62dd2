/**
 * Microseconds on the system-wide monotonic clock (CLOCK_MONOTONIC on Linux), so a timestamp taken
 * in one worker process can be compared with one taken in another on the same machine.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `check` is true, or rejects after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
