/** Id prefixes of every resource: `agent_…`, `conv_…`, `sess_…` (the Sessions document fixes 12 characters). */
export const ID_PREFIX = {
  account: 'acct',
  apiKey: 'key',
  agent: 'agent',
  conversation: 'conv',
  message: 'msg',
  request: 'req',
  connection: 'conn',
  session: 'sess',
  turn: 'turn',
  memory: 'mem',
  event: 'evt',
  order: 'ord',
  return: 'ret',
  webhook: 'we',
  webhookDelivery: 'whdel',
  webhookAttempt: 'whatt',
} as const;

export type IdKind = keyof typeof ID_PREFIX;

/** Characters after the prefix; sessions follow the document (`sess_<12_chars>`). */
export const ID_LENGTH: Record<IdKind, number> = {
  account: 16,
  apiKey: 16,
  agent: 16,
  conversation: 16,
  message: 20,
  request: 16,
  connection: 12,
  session: 12,
  turn: 16,
  memory: 16,
  event: 20,
  order: 16,
  return: 16,
  webhook: 16,
  webhookDelivery: 20,
  webhookAttempt: 20,
};
