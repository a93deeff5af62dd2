import type { EventFrame } from '../../../protocol/index.js';
import type { TopicEvent } from '../../kernel/topic-event.js';

/**
 * The client's view of an event, as every socket transport sends it (an `event` frame on /v1/ws,
 * a subscription's payload on graphql-ws): the topic without the account scope.
 */
export function toEventFrame(event: TopicEvent): EventFrame {
  return {
    type: 'event',
    topic: event.topic.slice(event.topic.indexOf('/') + 1),
    seq: event.seq,
    epoch: event.epoch,
    event: event.event,
    data: event.data,
    ts: event.ts,
    ...(event.id ? { id: event.id } : {}),
    ...(event.ephemeral ? { ephemeral: true as const } : {}),
  };
}
