import { hash, randomBytes } from 'node:crypto';

/** What a request acts as once its credentials have been checked. */
export interface Principal {
  accountId: string;
  /** The API key's id, or `token:<id>` for a client token. */
  keyId: string;
  plan: string;
  scopes: readonly string[];
  /** The account's own rate limits, where they differ from its plan's (Enterprise). */
  limits?: { perMinute: number | null; perDay: number | null };
  /** Who acts: the end user of a client token, else the key id. */
  subject: string;
  /** Set for client tokens: the only topics it may follow or act on. */
  topics?: readonly string[];
  /** Set for client tokens: Unix time in ms when it stops being valid. */
  expiresAt?: number;
}

export const ALL_SCOPES = '*';

/** A new secret key: `sg_live_` and 32 random base62-ish characters. Shown once, stored hashed. */
export function generateApiKey(): string {
  return `sg_live_${randomBytes(24).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  // One-shot: no Hash object per request (half the cost of createHash().update().digest(), which
  // was about a tenth of a cached REST request's JavaScript).
  return hash('sha256', key, 'hex');
}

/** The last four characters, so a person can tell keys apart without the secret. */
export function keyHint(key: string): string {
  return `…${key.slice(-4)}`;
}

/** `*` allows everything, `agents:*` every agents permission, `agents:read` exactly that. */
export function hasPermission(scopes: readonly string[], permission: string): boolean {
  if (scopes.includes(ALL_SCOPES) || scopes.includes(permission)) return true;
  const resource = permission.split(':')[0];
  return scopes.includes(`${resource}:*`);
}

/**
 * Whether a key holding `held` may hand out `scope` to a new key: never more than it has, so a
 * key with `keys:write` cannot mint a key with `*`.
 */
export function canGrant(held: readonly string[], scope: string): boolean {
  if (held.includes(ALL_SCOPES)) return true;
  if (scope === ALL_SCOPES) return false;
  if (scope.endsWith(':*')) return held.includes(scope);
  return hasPermission(held, scope);
}
