/**
 * Group commit: writes submitted while the event loop is busy are gathered and written by one
 * statement, and every caller is answered only after that statement has committed. Under load a
 * batch forms by itself while the previous one is in flight; at rest a write waits one loop turn.
 */
export interface GroupCommitOptions<In, Out> {
  maxBatch: number;
  /** Batches written at once: 1 for a single-connection store, more for a pool. */
  maxInFlight: number;
  /** Writes a batch; returns one result per item, in order, or an Error for an item that failed alone. */
  write: (items: In[]) => Promise<(Out | Error)[]>;
}

interface Waiting<In, Out> {
  item: In;
  resolve: (value: Out) => void;
  reject: (error: Error) => void;
}

export class GroupCommit<In, Out> {
  private queue: Waiting<In, Out>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: GroupCommitOptions<In, Out>) {}

  submit(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far has been written (for shutdown). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate, not a microtask: lets every socket read of this loop turn join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.pump();
        else if (this.inFlight === 0) this.notifyIdle();
      });
    }
  }

  private async run(batch: Waiting<In, Out>[]): Promise<void> {
    let results: (Out | Error)[];
    try {
      results = await this.options.write(batch.map((waiting) => waiting.item));
    } catch (error) {
      if (batch.length > 1) {
        // One bad row must not fail its neighbours: write each alone to find it, one after the
        // other, so that they still commit in submission order.
        for (const waiting of batch) await this.run([waiting]);
        return;
      }
      results = [error instanceof Error ? error : new Error(String(error))];
    }
    batch.forEach((waiting, index) => {
      const result = results[index];
      if (result instanceof Error) waiting.reject(result);
      else if (result === undefined) waiting.reject(new Error('group commit returned no result for an item'));
      else waiting.resolve(result);
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
