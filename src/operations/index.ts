import { agentHandlers } from './agents.js';
import type { HandlerTable } from './context.js';
import { conversationHandlers } from './conversations.js';
import { messageHandlers } from './messages.js';
import { sessionContentHandlers } from './session-content.js';
import { sessionHandlers } from './sessions.js';
import { realtimeHandlers } from './realtime.js';

export type { CredentialRegistry, HandlerTable, OperationContext, RealtimeServices } from './context.js';
import { keyHandlers } from './keys.js';
import { compatHandlers } from './compat.js';
import { commerceHandlers } from './commerce.js';
import { webhookHandlers } from './webhooks.js';
import { batchHandlers } from './batch.js';

/** Every operation's handler, by name. The type makes a missing implementation a compile error. */
export const handlers: HandlerTable = {
  ...agentHandlers,
  ...conversationHandlers,
  ...messageHandlers,
  ...keyHandlers,
  ...sessionHandlers,
  ...sessionContentHandlers,
  ...realtimeHandlers,
  ...compatHandlers,
  ...commerceHandlers,
  ...webhookHandlers,
  ...batchHandlers,
};
