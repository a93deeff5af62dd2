import { topicOf, type Presence } from '../../protocol/index.js';
import type { EventPublisher } from './publisher.js';

/**
 * Who is connected to which topic, counted per subject so that one user with three tabs is one
 * member: `presence.joined` on the first connection, `presence.left` when the last one goes.
 * This is the in-process implementation: it counts the connections of this node.
 */
export class PresenceRegistry {
  /** accountId/topic -> subject -> connections */
  private readonly members = new Map<string, Map<string, number>>();

  constructor(private readonly events: EventPublisher) {}

  join(accountId: string, topic: string, subject: string): void {
    const key = `${accountId}/${topic}`;
    let bySubject = this.members.get(key);
    if (!bySubject) this.members.set(key, (bySubject = new Map()));
    const count = (bySubject.get(subject) ?? 0) + 1;
    bySubject.set(subject, count);
    if (count === 1) void this.announce(accountId, topic, subject, 'presence.joined');
  }

  leave(accountId: string, topic: string, subject: string): void {
    const key = `${accountId}/${topic}`;
    const bySubject = this.members.get(key);
    const count = bySubject?.get(subject);
    if (!bySubject || count === undefined) return;
    if (count > 1) {
      bySubject.set(subject, count - 1);
      return;
    }
    bySubject.delete(subject);
    if (bySubject.size === 0) this.members.delete(key);
    void this.announce(accountId, topic, subject, 'presence.left');
  }

  get(accountId: string, topic: string): Presence {
    const bySubject = this.members.get(`${accountId}/${topic}`) ?? new Map<string, number>();
    return {
      topic,
      members: [...bySubject].map(([subject, connections]) => ({ subject, connections })).sort((a, b) => a.subject.localeCompare(b.subject)),
    };
  }

  private async announce(accountId: string, topic: string, subject: string, event: 'presence.joined' | 'presence.left'): Promise<void> {
    // Presence is a best-effort live signal; the authoritative answer is presence.get.
    await this.events.emit(accountId, [topic as ReturnType<typeof topicOf.account>], event, { topic, subject }).catch(() => {});
  }
}
