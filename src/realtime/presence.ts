import type { Presence, Topic } from '../../protocol/index.js';
import type { PresenceStore } from './presence-store.js';
import type { Events } from './events.js';

/**
 * Who is connected to which topic, counted per subject so that one user with three tabs is one
 * member: `presence.joined` on the subject's first connection (on any node), `presence.left` when
 * its last one goes. The counts live in a PresenceStore (memory, or Redis for many nodes).
 */
export class PresenceRegistry {
  constructor(
    private readonly store: PresenceStore,
    private readonly events: Events,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  join(accountId: string, topic: string, subject: string): void {
    this.store.join(`${accountId}/${topic}`, subject).then((connections) => {
      if (connections === 1) void this.announce(accountId, topic, subject, 'presence.joined');
    }, this.onError);
  }

  leave(accountId: string, topic: string, subject: string): void {
    this.store.leave(`${accountId}/${topic}`, subject).then((connections) => {
      if (connections === 0) void this.announce(accountId, topic, subject, 'presence.left');
    }, this.onError);
  }

  async get(accountId: string, topic: string): Promise<Presence> {
    return { topic, members: await this.store.members(`${accountId}/${topic}`) };
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private async announce(accountId: string, topic: string, subject: string, event: 'presence.joined' | 'presence.left'): Promise<void> {
    // Presence is a best-effort live signal; the authoritative answer is presence.get.
    await this.events.signal(accountId, [topic as Topic], event, { topic, subject }).catch(() => {});
  }
}
