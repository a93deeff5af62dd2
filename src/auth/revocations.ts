import type { Bus } from '../bus/index.js';
import { openSystemChannel } from '../bus/system-channel.js';
import type { Logger } from '../logger.js';
import type { KeyResolver } from './key-resolver.js';

/** The node's memory of credentials: a revocation must stop a key at once, not when a cache expires. */
export interface CredentialRegistry {
  isRevoked(keyId: string): boolean;
  revoke(keyId: string, keyHash: string): void;
}

/** Bus topic on which nodes tell each other about revoked keys (no account topic can look like it). */
const REVOCATIONS_TOPIC = '_system/credentials';

/**
 * Revocation on every node: a revoked key is forgotten at once on this node and the connections
 * opened with it are closed (`disconnect`), then every node the bus reaches does the same.
 */
export async function openRevocations(bus: Bus, keys: KeyResolver, options: { log: Logger; disconnect: (keyId: string) => void }): Promise<CredentialRegistry> {
  const revoked = await openSystemChannel<{ key_id: string; key_hash: string }>(bus, {
    topic: REVOCATIONS_TOPIC,
    log: options.log,
    onMessage: ({ key_id, key_hash }) => {
      keys.revoke(key_id, key_hash);
      options.disconnect(key_id);
    },
  });
  return {
    isRevoked: (keyId) => keys.isRevoked(keyId),
    revoke(keyId, hash) {
      keys.revoke(keyId, hash);
      options.disconnect(keyId);
      revoked({ key_id: keyId, key_hash: hash });
    },
  };
}
