import { randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import type { Store } from '../store/store.js';
import { newId } from '../kernel/ids.js';
import { hasPermission, type Principal } from './keys.js';

const ISSUER = 'stategate';
const AUDIENCE = 'stategate.client';

const Claims = z.object({
  sub: z.string(),
  acc: z.string(),
  plan: z.string(),
  topics: z.array(z.string()),
  perms: z.array(z.string()),
  jti: z.string(),
  exp: z.number(),
});

export interface MintedToken {
  token: string;
  expiresAt: Date;
}

/**
 * Short-lived signed tokens for browsers (HS256 JWT). The signing key lives in the database, so
 * every node sharing it accepts every node's tokens, and no API key ever reaches a browser.
 */
export class ClientTokens {
  private constructor(private readonly secret: Uint8Array) {}

  static async open(store: Store): Promise<ClientTokens> {
    const value = await store.secrets.getOrCreate('client_token_hs256', () => randomBytes(32).toString('base64url'));
    return new ClientTokens(Buffer.from(value, 'base64url'));
  }

  /** A token can carry only permissions its minting key has. */
  missingPermissions(minter: Principal, permissions: readonly string[]): string[] {
    return permissions.filter((permission) => !hasPermission(minter.scopes, permission));
  }

  async mint(minter: Principal, claims: { subject: string; topics: string[]; permissions: string[]; ttlSeconds: number }): Promise<MintedToken> {
    const expiresAt = new Date(Math.floor(Date.now() / 1000 + claims.ttlSeconds) * 1000);
    const token = await new SignJWT({ acc: minter.accountId, plan: minter.plan, topics: claims.topics, perms: claims.permissions })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.subject)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setJti(newId('request').replace('req_', 'tok_'))
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.secret);
    return { token, expiresAt };
  }

  /** Null for a forged, malformed or expired token. */
  async verify(token: string): Promise<Principal | null> {
    try {
      const { payload } = await jwtVerify(token, this.secret, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'] });
      const claims = Claims.parse(payload);
      return {
        accountId: claims.acc,
        keyId: `token:${claims.jti}`,
        plan: claims.plan,
        scopes: claims.perms,
        subject: claims.sub,
        topics: claims.topics,
        expiresAt: claims.exp * 1000,
      };
    } catch (error) {
      if (error instanceof errors.JOSEError || error instanceof z.ZodError) return null;
      throw error;
    }
  }
}

/** A JWT has three base64url parts; API keys never look like one. */
export function looksLikeToken(credential: string): boolean {
  return /^ey[\w-]*\.[\w-]+\.[\w-]+$/.test(credential);
}
