import { GraphQLError } from 'graphql';
import type { TopicEvent } from '../../kernel/topic-event.js';
import type { CallOrigin, GatewayCore, Subscriber } from '../core.js';
import { toEventFrame } from '../socket/event-frame.js';
import { failureError } from './errors.js';

/**
 * One subscription = one subscriber of its own (and a connection id of its own, so that ending it
 * releases exactly what it holds). Events queue until the client reads them; a node that lost
 * events ends the subscription with RESUME_REQUIRED (resubscribe with `since` and `epoch`).
 */
export interface SubscriptionBounds {
  /** Events held for the client at most; one more calls `overflow` (the socket is a slow consumer). */
  maxQueued: number;
  /** Whether the socket the subscription runs on is still open: nothing is delivered to a closed one. */
  isOpen(): boolean;
  overflow(): void;
}

export async function subscribeTopic(
  core: GatewayCore,
  origin: CallOrigin,
  input: Record<string, unknown>,
  bounds: SubscriptionBounds,
): Promise<AsyncIterable<unknown>> {
  const queue: unknown[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  const connectionId = core.newConnectionId();
  const subscriber: Subscriber = {
    id: connectionId,
    get closed() {
      return ended || !bounds.isOpen();
    },
    send(event: TopicEvent) {
      if (ended || !bounds.isOpen()) return;
      if (queue.length >= bounds.maxQueued) {
        // Never a silent gap: the socket closes as a slow consumer, and the client resubscribes with since.
        bounds.overflow();
        return;
      }
      queue.push(toEventFrame(event));
      wake?.();
    },
    resume() {
      if (ended) return;
      queue.push(new GraphQLError('This node lost events of the topic: subscribe again with since and epoch', { extensions: { code: 'RESUME_REQUIRED' } }));
      wake?.();
    },
  };
  const outcome = await core.execute('topics.subscribe', input, { ...origin, connectionId, subscriber });
  if (outcome.failure) throw failureError(outcome.failure);
  const end = () => {
    if (ended) return;
    ended = true;
    core.connectionClosed(connectionId, subscriber);
    wake?.();
  };
  const iterator: AsyncIterableIterator<unknown> = {
    async next() {
      for (;;) {
        if (queue.length > 0) {
          const value = queue.shift();
          // The error is delivered as the field's error, then the subscription ends.
          if (value instanceof GraphQLError) end();
          return { value, done: false };
        }
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    },
    async return() {
      end();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  // The socket closed while the subscribe was answered: graphql-ws will never end this one, so end it here.
  if (!bounds.isOpen()) {
    outcome.afterReply?.abandon();
    end();
    return iterator;
  }
  // The replay (with `since`) follows the subscription's start.
  outcome.afterReply?.run();
  return iterator;
}
