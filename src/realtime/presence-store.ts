import type { Presence } from '../../protocol/index.js';

/**
 * Connection counts per topic and subject. One implementation per backend: this process's
 * memory on one node, Redis when several nodes share it.
 */
export interface PresenceStore {
  /** Counts one more connection; resolves to the subject's connections on the topic, all nodes together. */
  join(key: string, subject: string): Promise<number>;
  /** Counts one fewer; resolves to what is left for the subject. */
  leave(key: string, subject: string): Promise<number>;
  members(key: string): Promise<Presence['members']>;
  close(): Promise<void>;
}

export class MemoryPresenceStore implements PresenceStore {
  /** key -> subject -> connections */
  private readonly counts = new Map<string, Map<string, number>>();

  async join(key: string, subject: string): Promise<number> {
    let bySubject = this.counts.get(key);
    if (!bySubject) this.counts.set(key, (bySubject = new Map()));
    const count = (bySubject.get(subject) ?? 0) + 1;
    bySubject.set(subject, count);
    return count;
  }

  async leave(key: string, subject: string): Promise<number> {
    const bySubject = this.counts.get(key);
    const count = (bySubject?.get(subject) ?? 0) - 1;
    if (!bySubject) return 0;
    if (count > 0) bySubject.set(subject, count);
    else {
      bySubject.delete(subject);
      if (bySubject.size === 0) this.counts.delete(key);
    }
    return Math.max(0, count);
  }

  async members(key: string): Promise<Presence['members']> {
    return sortMembers([...(this.counts.get(key) ?? new Map<string, number>())].map(([subject, connections]) => ({ subject, connections })));
  }

  async close(): Promise<void> {
    this.counts.clear();
  }
}

export function sortMembers(members: Presence['members']): Presence['members'] {
  return members.sort((a, b) => a.subject.localeCompare(b.subject));
}
