import { frameType, integerField } from '../lib/fields.js';
import type { Link } from './link.js';

/** `call` frames with promises, for the low-rate parts (chat): the answer is matched by id. */
export class Caller {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (frame: Buffer) => void; reject: (error: Error) => void }>();
  link: Link | undefined;

  /** Feed every frame of the link here; answers to our calls are consumed, the rest returned. */
  onFrame(frame: Buffer): boolean {
    const type = frameType(frame);
    if (type !== 'result' && type !== 'error') return false;
    const id = integerField(frame, 'id');
    const waiter = this.pending.get(id);
    if (!waiter) return false;
    this.pending.delete(id);
    if (type === 'result') waiter.resolve(frame);
    else waiter.reject(new Error(frame.toString('utf8', 0, 300)));
    return true;
  }

  call(method: string, params: Record<string, unknown>): Promise<Buffer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.link!.send(JSON.stringify({ type: 'call', id, method, params }));
    });
  }

  subscribe(topic: string): Promise<Buffer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.link!.send(JSON.stringify({ type: 'subscribe', id, topic }));
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }
}
