import type { Caller } from '../caller.js';
import { nowUs, sleep } from '../../lib/clock.js';

/**
 * How a simulated agent sends its reply. Token streaming does not exist in the gateway yet, so
 * today a reply is a sequence of short messages; when streamed deltas arrive, a second
 * implementation of this interface (start, deltas, end) replaces it without touching the scenario.
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
