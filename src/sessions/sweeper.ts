import type { Logger } from '../logger.js';
import type { Events } from '../realtime/events.js';
import { topicsOf } from '../realtime/topics.js';

export interface SweeperOptions {
  /** Deletes and announces in one transaction: an expiry is never lost between the two. */
  events: Pick<Events, 'transaction' | 'draft'>;
  log: Logger;
  intervalMs: number;
  batchSize: number;
}

/**
 * Deletes expired sessions in the background, a batch per statement, and announces each as
 * `session.expired`. Reads never depend on it (every query checks the TTL itself); it only
 * reclaims space. One sweep at a time; `stop` waits for the running one to finish.
 */
export class SessionSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.sweep(), this.options.intervalMs);
    // A pending sweep must not keep the process alive on its own.
    this.timer.unref();
  }

  /** Runs one sweep now (or joins the running one); resolves with how many sessions it deleted. */
  sweep(): Promise<number> {
    this.running ??= this.sweepAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  private async sweepAll(): Promise<number> {
    const { events, log, batchSize } = this.options;
    let total = 0;
    try {
      // Batches until one comes back short: a backlog is cleared in one sweep, a bounded statement at a time.
      while (!this.stopped) {
        const expired = await events.transaction(async (tx) => {
          const sessions = await tx.sessions.sweepExpired(batchSize);
          for (const session of sessions) {
            tx.emit(
              events.draft(session.account_id, topicsOf.session(session.id), 'session.expired', {
                session_id: session.id,
                ttl_expires_at: session.ttl_expires_at,
              }),
            );
          }
          return sessions;
        });
        total += expired.length;
        if (expired.length < batchSize) break;
      }
    } catch (error) {
      log.error({ err: error }, 'session sweep failed; retrying at the next interval');
    }
    if (total > 0) log.info({ deleted: total }, 'expired sessions deleted');
    return total;
  }
}
