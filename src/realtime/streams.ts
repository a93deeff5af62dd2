import { type Message, type MessageRole, type Metadata, type StreamSnapshot, type Topic } from '../../protocol/index.js';
import { ApiFailure, notFound } from '../kernel/errors.js';
import { newId } from '../kernel/ids.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { MissingConversation } from '../store/repos/messages.js';
import type { Events } from './events.js';
import { topicsOf } from './topics.js';

interface ActiveStream {
  id: string;
  accountId: string;
  conversationId: string;
  topics: Topic[];
  role: MessageRole;
  metadata: Metadata;
  /** The connection that started it, when it came over a WebSocket: its close ends the stream. */
  connectionId: string | undefined;
  deltas: string[];
  length: number;
  startedAt: string;
  lastActivity: number;
  ending: boolean;
  /** The last delta's write to the event log: the final message is numbered after it. */
  lastDelta: Promise<unknown>;
}

/** Attempts to store an ended stream that fails with anything but SERVICE_UNAVAILABLE, before it is dropped. */
const MAX_STORE_ATTEMPTS = 3;
/** Failed store attempts per stream (kept beside it, not in it, to keep this change small). */
const storeFailures = new WeakMap<object, number>();

export type IncompleteReason = 'sender_disconnected' | 'timeout';

/**
 * Agent replies streamed token by token. Deltas are numbered events on the conversation topic
 * (so resume replays them like any other event); the full text is stored once, as one message,
 * when the stream ends — or, marked incomplete, when its sender disconnects or goes silent.
 *
 * Streams live on the node that started them: deltas and the end must come through that node
 * (the sender's connection, in practice).
 */
export class StreamRegistry {
  private readonly streams = new Map<string, ActiveStream>();
  private readonly finishing = new Set<Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: { store: Store; events: Events; log: Logger; idleTimeoutMs: number; maxChars: number }) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, deps.idleTimeoutMs));
    this.sweeper.unref();
  }

  async start(
    accountId: string,
    input: { conversation_id: string; role: MessageRole; metadata?: Metadata | undefined },
    connectionId: string | undefined,
  ): Promise<{ stream_id: string; conversation_id: string; role: MessageRole; started_at: string }> {
    const conversation = await this.deps.store.conversations.get(accountId, input.conversation_id);
    if (!conversation) throw notFound('conversation', 'conversation_id', input.conversation_id);
    const topics = topicsOf.conversation(conversation);
    const stream: ActiveStream = {
      id: newId('message').replace('msg_', 'strm_'),
      accountId,
      conversationId: conversation.id,
      topics,
      role: input.role,
      metadata: input.metadata ?? {},
      connectionId,
      deltas: [],
      length: 0,
      startedAt: new Date().toISOString(),
      lastActivity: Date.now(),
      ending: false,
      lastDelta: Promise.resolve(),
    };
    this.streams.set(stream.id, stream);
    const started = { stream_id: stream.id, conversation_id: stream.conversationId, role: stream.role, started_at: stream.startedAt };
    await this.deps.events.emit(accountId, topics, 'message.stream_started', started);
    return started;
  }

  /**
   * Synchronous up to the publish, so deltas sent in order over one connection are numbered in
   * that order.
   */
  append(accountId: string, streamId: string, delta: string): Promise<{ stream_id: string; index: number; length: number }> {
    const stream = this.active(accountId, streamId);
    if (stream.length + delta.length > this.deps.maxChars) {
      return Promise.reject(
        new ApiFailure('VALIDATION_ERROR', `A streamed message may hold at most ${this.deps.maxChars} characters`, {
          stream_id: streamId,
          max_chars: this.deps.maxChars,
        }),
      );
    }
    const index = stream.deltas.length;
    stream.deltas.push(delta);
    stream.length += delta.length;
    stream.lastActivity = Date.now();
    const stored = this.deps.events.emit(accountId, stream.topics, 'message.delta', { stream_id: streamId, index, delta });
    stream.lastDelta = stored.catch(() => {});
    return stored.then(() => ({ stream_id: streamId, index, length: stream.length }));
  }

  /** Stores the full text once and announces it; a second end finds no stream. */
  async end(accountId: string, streamId: string, metadata?: Metadata): Promise<Message> {
    const stream = this.active(accountId, streamId);
    return this.finish(stream, { ...stream.metadata, ...metadata });
  }

  /** Ends, as incomplete, every stream the closed connection had started. */
  connectionClosed(connectionId: string): void {
    for (const stream of this.streams.values()) {
      if (stream.connectionId === connectionId && !stream.ending) this.track(this.finish(stream, stream.metadata, 'sender_disconnected'));
    }
  }

  /** Text so far of the streams in progress on a conversation (for subscribers joining mid-stream). */
  snapshots(accountId: string, conversationId: string): StreamSnapshot[] {
    return [...this.streams.values()]
      .filter((stream) => stream.accountId === accountId && stream.conversationId === conversationId && !stream.ending)
      .map((stream) => ({
        stream_id: stream.id,
        conversation_id: stream.conversationId,
        role: stream.role,
        text: stream.deltas.join(''),
        index: stream.deltas.length - 1,
        started_at: stream.startedAt,
      }));
  }

  get size(): number {
    return this.streams.size;
  }

  /** Waits for streams being stored (shutdown). */
  async drain(): Promise<void> {
    clearInterval(this.sweeper);
    for (const stream of [...this.streams.values()]) if (!stream.ending) this.track(this.finish(stream, stream.metadata, 'sender_disconnected'));
    await Promise.allSettled([...this.finishing]);
  }

  private active(accountId: string, streamId: string): ActiveStream {
    const stream = this.streams.get(streamId);
    if (!stream || stream.accountId !== accountId || stream.ending) {
      throw new ApiFailure('RESOURCE_NOT_FOUND', 'No stream in progress with this id on this node', { stream_id: streamId }, 'stream');
    }
    return stream;
  }

  private async finish(stream: ActiveStream, metadata: Metadata, incomplete?: IncompleteReason): Promise<Message> {
    stream.ending = true;
    const content = stream.deltas.join('');
    const streamMeta = { stream_id: stream.id, ...(incomplete ? { incomplete: true, incomplete_reason: incomplete } : {}) };
    const { events } = this.deps;
    try {
      // Deltas sent before the end are numbered before the message that ends the stream.
      await stream.lastDelta;
      const message = await events.commitMessage(
        stream.accountId,
        // An empty reply still records that the agent answered; a message must hold text.
        { conversation_id: stream.conversationId, role: stream.role, content: content || '…', metadata: { ...metadata, ...streamMeta } },
        { stream_id: stream.id, ...(incomplete ? { incomplete: true, reason: incomplete } : {}) },
      );
      this.streams.delete(stream.id);
      return message;
    } catch (error) {
      if (error instanceof MissingConversation) {
        this.streams.delete(stream.id);
        throw notFound('conversation', 'conversation_id', stream.conversationId);
      }
      // Not stored because the store is down: the stream stays, so the end can be retried.
      // Refused for any other reason: retrying cannot help, so after a few attempts it is dropped.
      const failures = (storeFailures.get(stream) ?? 0) + 1;
      storeFailures.set(stream, failures);
      if (!(error instanceof ApiFailure && error.code === 'SERVICE_UNAVAILABLE') && failures >= MAX_STORE_ATTEMPTS) {
        this.streams.delete(stream.id);
        this.deps.log.error({ err: error, stream_id: stream.id, attempts: failures }, 'ended stream could not be stored: dropped');
        // Viewers learn that no message.created will follow (and snapshots stop showing it).
        await events
          .emit(stream.accountId, stream.topics, 'message.stream_failed', {
            stream_id: stream.id,
            conversation_id: stream.conversationId,
            reason: 'not_stored',
          })
          .catch((failed: unknown) => this.deps.log.warn({ err: failed, stream_id: stream.id }, 'could not announce a dropped stream'));
        throw new ApiFailure('INTERNAL_ERROR', 'The stream could not be stored and has been dropped', { stream_id: stream.id });
      }
      stream.ending = false;
      throw error;
    }
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error) => this.deps.log.error({ err: error }, 'could not store an ended stream'));
    this.finishing.add(tracked);
    void tracked.finally(() => this.finishing.delete(tracked));
  }

  private sweep(): void {
    const cutoff = Date.now() - this.deps.idleTimeoutMs;
    for (const stream of this.streams.values()) {
      if (!stream.ending && stream.lastActivity < cutoff) this.track(this.finish(stream, stream.metadata, 'timeout'));
    }
  }
}
