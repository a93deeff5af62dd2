import type { Link } from '../link.js';

/**
 * One subscriber's account of its topic: events must arrive with seq = start + 1, + 2, ... with
 * no gap and no repeat. `received` counts events in order; anything else is a gap or a duplicate.
 */
export class SubscriberLedger {
  link: Link | undefined;
  /** seq the subscribe answer reported (last event before we joined); -1 until confirmed. */
  startSeq = -1;
  private nextSeq = -1;
  received = 0;
  gaps = 0;
  duplicates = 0;
  closed = false;
  refusal: string | undefined;

  constructor(readonly topic: number) {}

  onSubscribed(frame: Buffer): void {
    const text = frame.toString('utf8');
    const parsed = JSON.parse(text) as { type: string; data?: { seq?: number } };
    if (parsed.type !== 'result' || typeof parsed.data?.seq !== 'number') {
      this.refusal = text.slice(0, 300);
      return;
    }
    this.startSeq = parsed.data.seq;
    this.nextSeq = this.startSeq + 1;
  }

  onEvent(seq: number): void {
    // Ephemeral signals (presence, typing) carry seq 0: not part of the numbered stream.
    if (seq === 0) return;
    if (seq === this.nextSeq) {
      this.received++;
      this.nextSeq++;
    } else if (seq > this.nextSeq) {
      this.gaps += seq - this.nextSeq;
      this.received++;
      this.nextSeq = seq + 1;
    } else this.duplicates++;
  }
}
