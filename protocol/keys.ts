import { z } from 'zod';
import { Timestamp } from './common.js';
import { listParams, type FieldSpecs } from './query.js';

/** A permission a key may carry: `*`, `<resource>:*`, or `<resource>:read|write`. */
export const Scope = z.string().regex(/^(\*|[a-z][a-z_]{0,39}:(\*|read|write))$/, 'must be "*", "<resource>:*", "<resource>:read" or "<resource>:write"');

export const ApiKeyStatus = z.enum(['active', 'revoked']);

/** An API key as listed: never its secret, only the last characters to tell keys apart. */
export const ApiKey = z.object({
  id: z.string(),
  name: z.string().nullable(),
  hint: z.string(),
  scopes: z.array(z.string()),
  status: ApiKeyStatus,
  created_at: Timestamp,
  revoked_at: Timestamp.nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;

/** The answer to keys.create: the only time the secret is shown. */
export const ApiKeyCreated = ApiKey.extend({ key: z.string() });
export type ApiKeyCreated = z.infer<typeof ApiKeyCreated>;

export const ApiKeyCreateInput = z.strictObject({
  name: z.string().trim().min(1).max(100).optional(),
  /** Defaults to the creating key's own scopes; never more than it holds. */
  scopes: z.array(Scope).min(1).max(50).optional(),
});

export const KEY_LIST_FIELDS = {
  status: { kind: 'text', values: ApiKeyStatus.options },
  name: { kind: 'text' },
  created_at: { kind: 'timestamp', sortable: true },
} as const satisfies FieldSpecs;

export const ApiKeyListInput = z.strictObject({ ...listParams(KEY_LIST_FIELDS, '-created_at') });
export type ApiKeyListInput = z.infer<typeof ApiKeyListInput>;
