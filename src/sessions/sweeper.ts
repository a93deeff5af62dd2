import { topicOf } from '../../protocol/index.js';
import type { Logger } from '../logger.js';
import type { EventPublisher } from '../realtime/publisher.js';
import type { SessionRepo } from '../store/repos/sessions.js';

export interface SweeperOptions {
  sessions: Pick<SessionRepo, 'sweepExpired'>;
  events: EventPublisher;
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
    const { sessions, events, log, batchSize } = this.options;
    let total = 0;
    try {
      // Batches until one comes back short: a backlog is cleared in one sweep, a bounded statement at a time.
      while (!this.stopped) {
        const expired = await sessions.sweepExpired(batchSize);
        total += expired.length;
        for (const session of expired) {
          await events.emit(session.account_id, [topicOf.session(session.id)], 'session.expired', {
            session_id: session.id,
            ttl_expires_at: session.ttl_expires_at,
          });
        }
        if (expired.length < batchSize) break;
      }
    } catch (error) {
      log.error({ err: error }, 'session sweep failed; retrying at the next interval');
    }
    if (total > 0) log.info({ deleted: total }, 'expired sessions deleted');
    return total;
  }
}
