import type { StreamSnapshot } from '../../protocol/index.js';
import type { BusEvent } from '../bus/index.js';

/**
 * The replies being streamed on a topic, rebuilt from the events in its window: what a node that
 * does not own a stream can tell a subscriber joining mid-stream. A stream whose start has left
 * the window cannot be rebuilt and is left out (its later deltas still arrive live).
 */
export function snapshotsFromEvents(events: BusEvent[]): StreamSnapshot[] {
  const open = new Map<string, StreamSnapshot>();
  for (const event of events) {
    const data = event.data as Record<string, unknown>;
    if (event.event === 'message.stream_started') {
      const stream_id = String(data.stream_id);
      open.set(stream_id, {
        stream_id,
        conversation_id: String(data.conversation_id),
        role: data.role as StreamSnapshot['role'],
        text: '',
        index: -1,
        started_at: String(data.started_at),
      });
    } else if (event.event === 'message.delta') {
      const snapshot = open.get(String(data.stream_id));
      // A delta out of turn means the window lost part of the stream: it cannot be rebuilt.
      if (snapshot && data.index === snapshot.index + 1) {
        snapshot.text += String(data.delta);
        snapshot.index += 1;
      } else if (snapshot) open.delete(snapshot.stream_id);
    } else if ((event.event === 'message.created' || event.event === 'message.stream_failed') && typeof data.stream_id === 'string') {
      open.delete(data.stream_id);
    }
  }
  return [...open.values()];
}
