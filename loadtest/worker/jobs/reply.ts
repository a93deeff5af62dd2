import type { Caller } from '../caller.js';
import { nowUs, sleep } from '../../lib/clock.js';

/**
 * How a simulated agent sends its reply: streamed deltas (what agents do), or, for comparison, a
 * sequence of short messages.
 */
export interface ReplyStreamer {
  /** Sends `chunks` as the reply to the user message sent at `replyTo` (us); resolves when all are acknowledged. */
  reply(conversationId: string, replyTo: number, chunks: string[]): Promise<void>;
}

/** Every chunk a separate `messages.create` (role agent), `gapMs` apart, each acknowledged before the next. */
export class MessageSequenceReply implements ReplyStreamer {
  constructor(
    private readonly caller: Caller,
    private readonly gapMs: number,
  ) {}

  async reply(conversationId: string, replyTo: number, chunks: string[]): Promise<void> {
    for (let index = 0; index < chunks.length; index++) {
      if (index > 0 && this.gapMs > 0) await sleep(this.gapMs);
      await this.caller.call('messages.create', {
        conversation_id: conversationId,
        role: 'agent',
        content: chunks[index],
        metadata: { sent_at: nowUs(), reply_to: replyTo, chunk: index, last: index === chunks.length - 1 },
      });
    }
  }
}

/**
 * `streams.start`, one `streams.append` per chunk (`gapMs` apart, each acknowledged), then
 * `streams.end`: subscribers see the deltas, then one `message.created` whose metadata carries
 * `reply_to` and `last`, as the message-sequence reply's last chunk does.
 */
export class StreamedReply implements ReplyStreamer {
  constructor(
    private readonly caller: Caller,
    private readonly gapMs: number,
  ) {}

  async reply(conversationId: string, replyTo: number, chunks: string[]): Promise<void> {
    const started = JSON.parse(
      (await this.caller.call('streams.start', { conversation_id: conversationId, role: 'agent', metadata: { reply_to: replyTo, last: true } })).toString(
        'utf8',
      ),
    ) as { data: { stream_id: string } };
    const streamId = started.data.stream_id;
    for (let index = 0; index < chunks.length; index++) {
      if (index > 0 && this.gapMs > 0) await sleep(this.gapMs);
      await this.caller.call('streams.append', { stream_id: streamId, delta: chunks[index]! });
    }
    await this.caller.call('streams.end', { stream_id: streamId, metadata: { sent_at: nowUs() } });
  }
}
