import { ApiFailure, notFound } from '../kernel/errors.js';
import { canGrant } from '../auth/keys.js';
import { issueKey } from '../auth/provisioning.js';
import { topicsOf } from '../realtime/topics.js';
import type { HandlerTable } from './context.js';

type KeyHandlers = Pick<HandlerTable, 'keys.create' | 'keys.list' | 'keys.revoke'>;

export const keyHandlers: KeyHandlers = {
  'keys.create': async (ctx, input) => {
    const held = ctx.principal.scopes;
    const scopes = input.scopes ?? [...held];
    const beyond = scopes.filter((scope) => !canGrant(held, scope));
    if (beyond.length > 0) {
      throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `A key cannot grant scopes it does not hold: ${beyond.join(', ')}`, {
        required: beyond[0],
        scopes: beyond,
      });
    }
    return ctx.write(async (tx, emit) => {
      const issued = await issueKey(tx, { accountId: ctx.principal.accountId, scopes: [...new Set(scopes)], ...(input.name ? { name: input.name } : {}) });
      const key = await tx.accounts.getKey(ctx.principal.accountId, issued.keyId);
      if (!key) throw new ApiFailure('INTERNAL_ERROR');
      emit(topicsOf.key(), 'key.created', { key });
      return { ...key, key: issued.key };
    });
  },

  'keys.list': (ctx, input) => ctx.store.accounts.listKeys(ctx.principal.accountId, input),

  // Revoking twice answers the revoked key again: the caller's intent holds either way.
  'keys.revoke': async (ctx, { key_id }) => {
    // As for keys.create: a key acts only on keys within its own scopes (or on itself), so a
    // `keys:write` key cannot revoke the account's `*` key.
    const target = await ctx.store.accounts.getKey(ctx.principal.accountId, key_id);
    if (!target) throw notFound('api_key', 'key_id', key_id);
    const held = ctx.principal.scopes;
    const beyond = key_id === ctx.principal.keyId ? [] : target.scopes.filter((scope) => !canGrant(held, scope));
    if (beyond.length > 0) {
      throw new ApiFailure('INSUFFICIENT_PERMISSIONS', `A key cannot revoke a key with scopes it does not hold: ${beyond.join(', ')}`, {
        required: beyond[0],
        scopes: beyond,
      });
    }
    const { key, hash } = await ctx.write(async (tx, emit) => {
      const hash = await tx.accounts.revokeKey(ctx.principal.accountId, key_id);
      const key = await tx.accounts.getKey(ctx.principal.accountId, key_id);
      if (!key) throw notFound('api_key', 'key_id', key_id);
      // Announced once, by the revocation that took effect.
      if (hash) emit(topicsOf.key(), 'key.revoked', { key });
      return { key, hash };
    });
    if (hash) ctx.credentials.revoke(key_id, hash);
    return key;
  },
};
