/**
 * What the minimal publish servers share: per-topic sequence numbers and the event frame they
 * publish, built like the gateway's (same fields, the message echoed from the publish call), so
 * that clients and payload sizes are the same for the gateway and every baseline.
 */
export interface PublishCall {
  type?: string;
  id?: number | string;
  method?: string;
  topic?: string;
  params?: { conversation_id?: string; content?: string; role?: string; metadata?: unknown };
}

export class TopicSequences {
  private readonly seqs = new Map<string, number>();

  current(topic: string): number {
    return this.seqs.get(topic) ?? 0;
  }

  next(topic: string): number {
    const seq = this.current(topic) + 1;
    this.seqs.set(topic, seq);
    return seq;
  }
}

export interface Publication {
  topic: string;
  event: string;
  result: string;
}

/** Turns a `messages.create` call into the event to publish and the result to answer. */
export function publication(call: PublishCall, seqs: TopicSequences): Publication | null {
  const conversationId = call.params?.conversation_id;
  if (call.method !== 'messages.create' || !conversationId) return null;
  const topic = `conversation:${conversationId}`;
  const seq = seqs.next(topic);
  const now = new Date().toISOString();
  const message = {
    id: `msg_baseline${seq}`,
    conversation_id: conversationId,
    role: call.params?.role ?? 'user',
    content: call.params?.content ?? '',
    metadata: call.params?.metadata ?? {},
    created_at: now,
  };
  return {
    topic,
    event: JSON.stringify({ type: 'event', topic, seq, epoch: 'baseline', event: 'message.created', data: { message }, ts: now }),
    result: JSON.stringify({ type: 'result', id: call.id ?? 0, data: message }),
  };
}

export function subscribeResult(id: number | string | undefined, topic: string, seq: number): string {
  return JSON.stringify({ type: 'result', id: id ?? 0, data: { topic, subscribed: true, seq, epoch: 'baseline' } });
}

/**
 * Publishes are deferred out of the message handler and flushed together, as the gateway does
 * after a group commit (publishing inside the handler is much slower with uWS; see DESIGN.md).
 */
export class DeferredPublisher {
  private queue: Array<{ topic: string; event: string }> = [];
  private scheduled = false;

  constructor(private readonly publish: (topic: string, event: string) => void) {}

  push(topic: string, event: string): void {
    this.queue.push({ topic, event });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      const batch = this.queue;
      this.queue = [];
      this.scheduled = false;
      for (const item of batch) this.publish(item.topic, item.event);
    });
  }
}

export type BaselineMode = 'echo' | 'publish' | 'idle';

export function modeFromArgs(argv: string[]): BaselineMode {
  const mode = argv[2];
  if (mode === 'echo' || mode === 'publish' || mode === 'idle') return mode;
  throw new Error(`mode must be echo, publish or idle, not ${mode}`);
}
