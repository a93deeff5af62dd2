import { customAlphabet } from 'nanoid';
import { ID_LENGTH, ID_PREFIX, type IdKind } from '../../protocol/index.js';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const generators = new Map<IdKind, () => string>();

/** `agent_…`, `conv_…`, `sess_…`: a prefix and random base62 characters. */
export function newId(kind: IdKind): string {
  let generate = generators.get(kind);
  if (!generate) {
    generate = customAlphabet(ALPHABET, ID_LENGTH[kind]);
    generators.set(kind, generate);
  }
  return `${ID_PREFIX[kind]}_${generate()}`;
}
