// Preloaded into servers under test (node --expose-gc --import this): on request from the load
// generator, collect garbage before memory is sampled, so that RSS deltas count live memory,
// not garbage not yet collected. Costs nothing until asked.
process.on('message', (message) => {
  if (message && message.type === 'loadtest:gc') {
    globalThis.gc?.();
    process.send?.({ type: 'loadtest:gc-done' });
  }
});
process.channel?.unref();
// Worker processes a server forks (a supervisor's workers) have no channel to the load generator:
// they collect on this signal instead (the servers under test do not use it).
process.on('SIGUSR2', () => globalThis.gc?.());
