import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import type { BusEvent } from './bus.js';

/**
 * Channel names and the wire form of events for the Redis bus. A topic's channel carries its
 * hash tag, so on a Redis Cluster sharded pub/sub keeps each topic on one shard.
 */
export function topicChannel(prefix: string, topic: string): string {
  // Braces inside the tag would end it early; such topics are tagged by their hash instead.
  const tag = topic.length > 0 && !/[{}]/.test(topic) ? topic : createHash('sha1').update(topic).digest('hex');
  return `${prefix}{${tag}}:ch`;
}

// Plain msgpack (no record extension): every message must decode on its own, on any node.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeEvent(event: BusEvent): Buffer {
  return packr.pack([event.seq, event.epoch, event.id, event.event, event.data, event.ts]);
}

export function decodeEvent(topic: string, message: Buffer): BusEvent {
  const decoded = packr.unpack(message) as unknown;
  if (!Array.isArray(decoded) || decoded.length !== 6 || typeof decoded[0] !== 'number') throw new Error('malformed bus message');
  const [seq, epoch, id, event, data, ts] = decoded as [number, string, string, string, unknown, string];
  return seq === 0 ? { topic, seq, epoch, id, event, data, ts, ephemeral: true } : { topic, seq, epoch, id, event, data, ts };
}
