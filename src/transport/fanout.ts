import { codecs, type Encoding } from '../../protocol/index.js';
import type { BusEvent } from '../bus/index.js';
import type { GatewayCore } from './core.js';
import type { TemplatedApp } from './uws.js';

const ENCODINGS = Object.keys(codecs) as Encoding[];

/**
 * Node-local fan-out. Each stream has one uWS topic per encoding; a node follows a stream on the
 * bus only while one of its sockets is subscribed, and encodes each event once per encoding, not
 * once per recipient: uWS then copies the bytes to every subscriber natively.
 */
export class Fanout {
  private readonly streams = new Map<string, { refs: number; stop: () => void }>();

  constructor(
    private readonly app: TemplatedApp,
    private readonly core: GatewayCore,
  ) {}

  static channel(key: string, encoding: Encoding): string {
    return `${key}#${encoding}`;
  }

  join(key: string): void {
    const stream = this.streams.get(key);
    if (stream) {
      stream.refs++;
      return;
    }
    const stop = () => {};
    this.streams.set(key, { refs: 1, stop });
  }

  leave(key: string): void {
    const stream = this.streams.get(key);
    if (!stream) return;
    if (--stream.refs > 0) return;
    stream.stop();
    this.streams.delete(key);
  }

  get followed(): number {
    return this.streams.size;
  }

  private deliver(key: string, event: BusEvent): void {
    // The topic a client sees is the part after the account scope.
    const frame = {
      type: 'event' as const,
      topic: key.slice(key.indexOf('/') + 1),
      seq: event.seq,
      epoch: event.epoch,
      event: event.event,
      data: event.data,
      ts: event.ts,
    };
    for (const encoding of ENCODINGS) {
      const channel = Fanout.channel(key, encoding);
      if (this.app.numSubscribers(channel) === 0) continue;
      const codec = codecs[encoding];
      this.app.publish(channel, codec.encode(frame), codec.binary);
    }
  }
}
