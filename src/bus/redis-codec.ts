import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import type { BusEvent } from './bus.js';

/**
 * Key and channel names, and the wire form of events, for the Redis bus.
 *
 * Every key of a topic shares one hash tag, so a Redis Cluster keeps them (and the topic's
 * sharded channel) on one slot, where a single script can update them together.
 */
export interface TopicKeys {
  meta: string;
  log: string;
  channel: string;
}

export function topicKeys(prefix: string, topic: string): TopicKeys {
  // Braces inside the tag would end it early; such topics are tagged by their hash instead.
  const tag = topic.length > 0 && !/[{}]/.test(topic) ? topic : createHash('sha1').update(topic).digest('hex');
  const base = `${prefix}{${tag}}`;
  return { meta: `${base}:meta`, log: `${base}:log`, channel: `${base}:ch` };
}

// Plain msgpack (no record extension): every message must decode on its own, on any node.
const packr = new Packr({ useRecords: false, moreTypes: false });

/** The part of a message that the publishing node writes; Redis prepends `<seq>:<epoch>:`. */
export function encodeBody(event: string, data: unknown, ts: string): Buffer {
  return packr.pack([event, data, ts]);
}

const COLON = 0x3a;

/** Decodes `<seq>:<epoch>:<body>` as published on a topic's channel and kept in its history. */
export function decodeMessage(topic: string, message: Buffer): BusEvent {
  const first = message.indexOf(COLON);
  const second = message.indexOf(COLON, first + 1);
  if (first <= 0 || second <= first) throw new Error('malformed bus message');
  const seq = Number(message.toString('latin1', 0, first));
  const epoch = message.toString('latin1', first + 1, second);
  const [event, data, ts] = packr.unpack(message.subarray(second + 1)) as [string, unknown, string];
  return seq === 0 ? { topic, seq, epoch, event, data, ts, ephemeral: true } : { topic, seq, epoch, event, data, ts };
}
