/**
 * Reads numbers out of event frames without parsing the whole JSON: subscribers see hundreds of
 * thousands of events per second, and a full parse would measure the client, not the server.
 * The keys looked for (`"seq":`, `"sent_at":`) appear once in the frames this suite sends, and
 * their values are non-negative integers (timestamps are whole microseconds).
 */
const keys = new Map<string, Buffer>();

function keyBytes(key: string): Buffer {
  let bytes = keys.get(key);
  if (!bytes) {
    bytes = Buffer.from(`"${key}":`);
    keys.set(key, bytes);
  }
  return bytes;
}

/** The integer after `"key":` in a JSON frame, or NaN when absent. */
export function integerField(frame: Buffer, key: string): number {
  const name = keyBytes(key);
  const at = frame.indexOf(name);
  if (at < 0) return NaN;
  let value = 0;
  let digits = 0;
  for (let index = at + name.length; index < frame.length; index++) {
    const byte = frame[index]!;
    if (byte < 0x30 || byte > 0x39) break;
    value = value * 10 + (byte - 0x30);
    digits++;
  }
  return digits > 0 ? value : NaN;
}

/** The frame's type, read from its start (`{"type":"…"`, as JSON.stringify writes every frame). */
export function frameType(frame: Buffer): string {
  // `{"type":"` is 9 bytes.
  const end = frame.indexOf(0x22, 9);
  return end > 9 ? frame.toString('latin1', 9, end) : '';
}
