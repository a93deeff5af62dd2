import { EPHEMERAL_EVENTS, type EventData, type EventName, type Topic } from '../../protocol/index.js';
import type { Bus } from '../bus/index.js';

/** Bus topics are scoped by account, so no topic name can ever reach another account's subscribers. */
export function busTopic(accountId: string, topic: Topic | string): string {
  return `${accountId}/${topic}`;
}

/**
 * What handlers use to announce a committed change. Each event goes to the named topics and to
 * the account topic (which sees everything, as webhooks will); ephemeral signals (typing,
 * presence) go to the named topics only, unnumbered.
 */
export class EventPublisher {
  constructor(
    private readonly bus: Bus,
    private readonly onPublish: (ephemeral: boolean, count: number) => void = () => {},
  ) {}

  async emit<E extends EventName>(accountId: string, topics: Topic[], event: E, data: EventData<E>): Promise<void> {
    const ephemeral = EPHEMERAL_EVENTS.has(event);
    const targets = ephemeral ? new Set<string>(topics) : new Set<string>([...topics, 'account']);
    await Promise.all([...targets].map((topic) => this.bus.publish(busTopic(accountId, topic), event, data, { ephemeral })));
    this.onPublish(ephemeral, targets.size);
  }
}
