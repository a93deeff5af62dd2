import { Packr } from 'msgpackr';

/** Subprotocol names offered in `Sec-WebSocket-Protocol`; JSON is the default when none is offered. */
export const SUBPROTOCOL = {
  json: 'stategate.v1.json',
  msgpack: 'stategate.v1.msgpack',
} as const;

export type Encoding = keyof typeof SUBPROTOCOL;

export interface Codec {
  encoding: Encoding;
  /** True when frames travel as binary WebSocket frames. */
  binary: boolean;
  encode(frame: unknown): string | Uint8Array;
  /** Throws on malformed input. */
  decode(data: ArrayBuffer | Uint8Array | string): unknown;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

export const jsonCodec: Codec = {
  encoding: 'json',
  binary: false,
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => JSON.parse(typeof data === 'string' ? data : textDecoder.decode(data)),
};

// Plain maps, no records extension: any MessagePack library in any language can read the frames.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export const msgpackCodec: Codec = {
  encoding: 'msgpack',
  binary: true,
  encode: (frame) => packr.pack(frame),
  decode: (data) => {
    if (typeof data === 'string') throw new Error('expected a binary frame');
    return packr.unpack(data instanceof Uint8Array ? data : new Uint8Array(data));
  },
};

export const codecs: Record<Encoding, Codec> = { json: jsonCodec, msgpack: msgpackCodec };

/** Picks the encoding from the subprotocols a client offered, in its order of preference. */
export function negotiateEncoding(offered: string[]): Encoding | null {
  if (offered.length === 0) return 'json';
  for (const name of offered) {
    if (name === SUBPROTOCOL.json) return 'json';
    if (name === SUBPROTOCOL.msgpack) return 'msgpack';
  }
  return null;
}

/** Values frozen all the way down by `freezeDeep`: their JSON text cannot change, so it is kept. */
const deeplyFrozen = new WeakSet<object>();
const jsonOfFrozen = new WeakMap<object, string>();

/**
 * Freezes a plain JSON-like value and everything in it (a shared cache entry: whoever reads it
 * must not change it for the others). Afterwards `jsonText` serialises it once, not per answer.
 */
export function freezeDeep<T>(value: T): T {
  frozen(value);
  return value;
}

/** True when the value cannot change any more: a primitive, or plain objects and arrays frozen through. */
function frozen(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return typeof value !== 'function';
  if (deeplyFrozen.has(value)) return true;
  const prototype = Object.getPrototypeOf(value) as unknown;
  // A Date, Map or typed array keeps state that freezing does not fix: frozen, but never remembered.
  let plain = Array.isArray(value) || prototype === Object.prototype || prototype === null;
  for (const item of Object.values(value)) if (!frozen(item)) plain = false;
  Object.freeze(value);
  if (plain) deeplyFrozen.add(value);
  return plain;
}

/** `JSON.stringify(value)`, remembered for a value frozen by `freezeDeep` (same text, computed once). */
export function jsonText(value: unknown): string {
  if (value === null || typeof value !== 'object' || !deeplyFrozen.has(value)) return JSON.stringify(value);
  let text = jsonOfFrozen.get(value);
  if (text === undefined) jsonOfFrozen.set(value, (text = JSON.stringify(value)));
  return text;
}
