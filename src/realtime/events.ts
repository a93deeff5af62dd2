import { EPHEMERAL_EVENTS, STREAM_EVENTS, type EventData, type EventName, type Message, type MessageCreateInput, type Topic } from '../../protocol/index.js';
import type { Bus } from '../bus/index.js';
import { newId } from '../kernel/ids.js';
import type { EventDraft, TopicEvent } from '../kernel/topic-event.js';
import type { Logger } from '../logger.js';
import type { Store, StoreTx } from '../store/store.js';
import { topicKey, topicsOf } from './topics.js';
import type { MessageAnnouncement } from '../store/repos/messages.js';

/** Adds an event to the transaction it is called in: `(topics, event, data)`. */
export type Emit = <E extends EventName>(topics: Topic[], event: E, data: EventData<E>) => void;

/**
 * Told of each write of this node that committed numbered events, once, with them (one copy per
 * topic), right after the commit and before the writer is answered. Never told of a write that
 * failed or rolled back, nor of events other nodes committed.
 */
export type CommittedListener = (events: readonly TopicEvent[]) => void;

/**
 * How changes are announced. A numbered event is written to the event log in the transaction of
 * the change that caused it (`write`, `transaction`), with its message in the message group
 * commit (`commitMessage`), or on its own by group commit (`emit`: stream deltas), and only then
 * announced, by one path (`committed`): to this node's committed listeners (`onCommitted`), then
 * to the bus. A bus that loses it (down, or this node crashing first) leaves a gap that every
 * receiving node fills from the log (see Feeds). Ephemeral signals (typing, presence) go to the
 * bus only. Every numbered event also goes to the `account` topic, but for a stream's start and
 * deltas (STREAM_EVENTS).
 */
export class Events {
  /** Set while the bus refuses events: logged once when it starts and once when it ends. */
  private failing = false;
  private readonly listeners = new Set<CommittedListener>();

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly onPublish: (ephemeral: boolean, count: number) => void = () => {},
  ) {}

  /** An event for the log: one id, its topics and the account's (but for a stream's tokens). */
  draft<E extends EventName>(accountId: string, topics: Topic[], event: E, data: EventData<E>): EventDraft {
    const all: Topic[] = STREAM_EVENTS.has(event) ? topics : [...topics, 'account'];
    return { id: newId('event'), topics: all.map((topic) => topicKey(accountId, topic)), event, data };
  }

  /**
   * Tells `listener` of every write of this node that commits numbered events (see
   * CommittedListener); returns the function that stops it.
   */
  onCommitted(listener: CommittedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Stores a message with its `message.created` event, numbered in the same statement of the
   * message group commit, and announces the event once committed. Rejects with
   * MissingConversation when the conversation is not the account's; nothing is announced then.
   */
  async commitMessage(accountId: string, input: MessageCreateInput, extra: Omit<EventData<'message.created'>, 'message'> = {}): Promise<Message> {
    const stored = await this.store.messages.create({
      id: newId('message'),
      accountId,
      input,
      announce: (agentId) => this.messageCreated(accountId, input.conversation_id, agentId, extra),
    });
    this.committed(stored.events);
    return stored.message;
  }

  /** Runs `fn` in one transaction; the events it emits (`tx.emit`) commit with it and are announced after. */
  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const { result, events } = await this.store.transaction(fn);
    this.committed(events);
    return result;
  }

  /** As `transaction`, for one account's change: `emit(topics, event, data)`. */
  write<T>(accountId: string, fn: (tx: StoreTx, emit: Emit) => Promise<T>): Promise<T> {
    return this.transaction((tx) => fn(tx, (topics, event, data) => tx.emit(this.draft(accountId, topics, event, data))));
  }

  /** A numbered event on its own: resolves once stored, and announces it. */
  async emit<E extends EventName>(accountId: string, topics: Topic[], event: E, data: EventData<E>): Promise<TopicEvent[]> {
    const events = await this.store.events.append(this.draft(accountId, topics, event, data));
    this.committed(events);
    return events;
  }

  /** Typing and presence: live only, unnumbered, to the named topics (not the account). */
  async signal<E extends EventName>(accountId: string, topics: Topic[], event: E, data: EventData<E>): Promise<void> {
    if (!EPHEMERAL_EVENTS.has(event)) throw new Error(`${event} is a numbered event: emit it`);
    const ts = new Date().toISOString();
    await this.bus.publish(
      topics.map((topic) => ({ topic: topicKey(accountId, topic), seq: 0, epoch: '', id: '', event, data, ts, ephemeral: true as const })),
    );
    this.onPublish(true, topics.length);
  }

  /**
   * The `message.created` event of a message about to be stored (in a group commit): the store
   * adds `message` to the data, built from the row it writes, in the same statement.
   */
  private messageCreated(
    accountId: string,
    conversationId: string,
    agentId: string | null,
    extra: Omit<EventData<'message.created'>, 'message'>,
  ): MessageAnnouncement {
    const { id, topics, event } = this.draft(accountId, topicsOf.message(conversationId, agentId), 'message.created', extra as EventData<'message.created'>);
    return { id, topics, event, extra };
  }

  /**
   * Announces the events of one committed write, once: to the committed listeners, then to the
   * bus. Private, so that only a write of this class announces, and each write exactly once. The
   * bus is not awaited: the change is durable, and an event the bus does not carry is filled from
   * the log by the nodes that follow its topic.
   */
  private committed(events: readonly TopicEvent[]): void {
    if (events.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (error) {
        // The write has committed: a listener's failure is its own, not the writer's.
        this.log.error({ err: error }, 'a committed-events listener failed');
      }
    }
    this.onPublish(false, events.length);
    this.bus.publish(events).then(
      () => {
        if (!this.failing) return;
        this.failing = false;
        this.log.info('the bus carries events again');
      },
      (error: unknown) => {
        if (this.failing) return;
        this.failing = true;
        this.log.warn({ err: error }, 'events not carried by the bus; nodes fill them from the event log');
      },
    );
  }
}
