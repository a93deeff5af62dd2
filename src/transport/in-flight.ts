/**
 * Requests and calls in flight on every transport (REST, GraphQL over HTTP, WebSocket calls), so
 * that a drain answers them before closing the sockets they came on.
 */
export class InFlight {
  inFlight = 0;
  private waiters: (() => void)[] = [];

  start(): void {
    this.inFlight++;
  }

  end(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const resolve of this.waiters.splice(0)) resolve();
  }

  idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}
