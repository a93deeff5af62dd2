import { newId } from '../kernel/ids.js';
import type { Store } from '../store/store.js';
import { ALL_SCOPES, generateApiKey, hashApiKey, keyHint } from './keys.js';

export interface IssuedKey {
  accountId: string;
  keyId: string;
  /** The secret: returned once, never stored. */
  key: string;
}

export const PLANS = ['starter', 'growth', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];

export async function createAccount(store: Store, options: { name: string; plan?: Plan; scopes?: string[]; key?: string }): Promise<IssuedKey> {
  const account = await store.accounts.createAccount({ id: newId('account'), name: options.name, plan: options.plan ?? 'starter' });
  return issueKey(store, { accountId: account.id, scopes: options.scopes, key: options.key });
}

export async function issueKey(
  store: Pick<Store, 'accounts'>,
  options: { accountId: string; scopes?: string[] | undefined; name?: string; key?: string | undefined },
): Promise<IssuedKey> {
  const key = options.key ?? generateApiKey();
  const keyId = newId('apiKey');
  await store.accounts.insertKey({
    id: keyId,
    accountId: options.accountId,
    hash: hashApiKey(key),
    hint: keyHint(key),
    name: options.name ?? null,
    scopes: options.scopes ?? [ALL_SCOPES],
  });
  return { accountId: options.accountId, keyId, key };
}

/**
 * At start-up: a key given in the environment is made to exist; with none given and no key in the
 * store at all, a development account is created and its key returned to be printed once.
 */
export async function bootstrapKey(store: Store, configuredKey: string | undefined): Promise<IssuedKey | null> {
  // Checked first without the lock: on every start but the first, there is nothing to do.
  if (configuredKey) {
    if (await store.accounts.findKeyByHash(hashApiKey(configuredKey))) return null;
  } else if ((await store.accounts.countKeys()) > 0) {
    return null;
  }
  const key = configuredKey ?? generateApiKey();
  const issued: IssuedKey = { accountId: newId('account'), keyId: newId('apiKey'), key };
  const created = await store.accounts.provisionAccount(
    { id: issued.accountId, name: configuredKey ? 'configured' : 'development', plan: 'starter' },
    { id: issued.keyId, hash: hashApiKey(key), hint: keyHint(key), scopes: [ALL_SCOPES] },
    configuredKey ? 'key_unknown' : 'no_keys',
  );
  return created ? issued : null;
}
