/**
 * An example agent worker: it follows one agent's conversations over the gateway's WebSocket and
 * answers every new user message by streaming a reply token by token, keeping one session per
 * conversation (state: the turn count) and recording each exchange as a turn. It uses the SDK
 * only, as an application outside the gateway would.
 *
 *   npm run example:agent
 *
 * Environment:
 *   STATEGATE_URL       the gateway (default http://127.0.0.1:8080)
 *   STATEGATE_API_KEY   an API key of the account (the key printed at the gateway's first start;
 *                       STATEGATE_KEY, as the start-up message names it, works too)
 *   AGENT_ID            the agent to answer for; default the widget's demo agent (found or created by name)
 *   AGENT_REPLY         a reply to stream instead of the canned one; `{message}` and `{turn}` are filled in
 *   TOKEN_DELAY_MS      pause between streamed tokens (default 60)
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { StateSetClient, type RealtimeEvent, type WebSocketConstructor } from '../clients/sdk/index.js';

/** The name the gateway's demo endpoint gives its agent (src/demo/widget.ts). */
export const DEMO_AGENT_NAME = 'Widget demo agent';

export const DEFAULT_REPLY =
  'Thanks for your message! You wrote: "{message}". This is turn {turn} of our conversation; ' +
  'I am an example agent streaming this reply token by token through stategate.';

export interface AgentWorkerOptions {
  baseURL: string;
  apiKey: string;
  agentId?: string;
  /** A reply template: `{message}` is the user's text, `{turn}` the exchange's number. */
  reply?: string;
  tokenDelayMs?: number;
  log?: (line: string) => void;
}

export interface AgentWorker {
  readonly agentId: string;
  /** Replies finished (streamed and stored). */
  readonly answered: number;
  stop(): Promise<void>;
}

/** Conversations followed at once for presence (each is a subscription of the one connection). */
const MAX_FOLLOWED_CONVERSATIONS = 50;

type Message = Extract<RealtimeEvent, { event: 'message.created' }>['data']['message'];

export async function startAgentWorker(options: AgentWorkerOptions): Promise<AgentWorker> {
  const log = options.log ?? ((line: string) => console.log(`[agent] ${line}`));
  const tokenDelayMs = options.tokenDelayMs ?? 60;
  const template = options.reply ?? DEFAULT_REPLY;
  const client = new StateSetClient({ apiKey: options.apiKey, baseURL: options.baseURL });
  const agentId = options.agentId ?? (await findOrCreateDemoAgent(client));

  const rt = client.realtime({ WebSocket: (globalThis.WebSocket ?? WebSocket) as unknown as WebSocketConstructor });
  rt.on('state', (state, detail) => log(`connection ${state}${detail ? ` ${JSON.stringify(detail)}` : ''}`));
  await rt.connect();

  const sessions = new Map<string, Promise<string>>();
  /** Each conversation's replies in order; conversations in parallel. */
  const queues = new Map<string, Promise<void>>();
  const followed = new Map<string, { unsubscribe(): Promise<void> }>();
  /** Messages already answered (an event is delivered once, but a worker should not trust that blindly). */
  const seen = new Set<string>();
  let answered = 0;
  let stopped = false;

  /** Session of a conversation: found by user_id = conversation id, else created. */
  const sessionOf = (conversationId: string): Promise<string> => {
    let session = sessions.get(conversationId);
    if (!session) {
      session = (async () => {
        const found = await client.sessions.list({ agent_id: agentId, user_id: conversationId, limit: 1 });
        if (found.data[0]) return found.data[0].id;
        const created = await client.sessions.create({
          agent_id: agentId,
          user_id: conversationId,
          initial_state: { turns: 0 },
          metadata: { conversation_id: conversationId },
        });
        return created.id;
      })();
      session.catch(() => sessions.delete(conversationId));
      sessions.set(conversationId, session);
    }
    return session;
  };

  /** Following the conversation's own topic makes the agent present there (the widget shows it online). */
  const follow = async (conversationId: string): Promise<void> => {
    if (followed.has(conversationId) || stopped) return;
    followed.set(conversationId, { unsubscribe: async () => {} });
    try {
      const subscription = await rt.conversation(conversationId, { onEvent: () => {} });
      followed.set(conversationId, subscription);
    } catch (error) {
      followed.delete(conversationId);
      log(`could not follow ${conversationId}: ${(error as Error).message}`);
      return;
    }
    if (followed.size > MAX_FOLLOWED_CONVERSATIONS) {
      const [oldest, subscription] = followed.entries().next().value!;
      followed.delete(oldest);
      await subscription.unsubscribe().catch(() => {});
    }
  };

  const answer = async (message: Message): Promise<void> => {
    const conversationId = message.conversation_id;
    const sessionId = await sessionOf(conversationId);
    const session = await client.sessions.get({ session_id: sessionId });
    const turn = Number((session.state as { turns?: unknown }).turns ?? 0) + 1;
    const reply = template.replaceAll('{message}', message.content.slice(0, 200)).replaceAll('{turn}', String(turn));

    await rt.typing(conversationId).catch(() => {});
    await sleep(Math.min(400, tokenDelayMs * 4));
    const stored = await rt.streamReply({ conversation_id: conversationId, role: 'agent' }, tokens(reply, tokenDelayMs));
    await client.sessions.update_state({
      session_id: sessionId,
      state: { ...session.state, turns: turn, last_message_id: message.id },
      reasoning: `answered ${message.id}`,
    });
    await client.turns.create({
      session_id: sessionId,
      input: message.content,
      output: stored.content,
      metadata: { message_id: message.id, reply_id: stored.id },
    });
    answered++;
    log(`answered ${message.id} in ${conversationId} (turn ${turn}, ${reply.length} characters)`);
  };

  const enqueue = (message: Message) => {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    if (seen.size > 10_000) seen.delete(seen.values().next().value!);
    const conversationId = message.conversation_id;
    const previous = queues.get(conversationId) ?? Promise.resolve();
    const next = previous
      .then(() => (stopped ? undefined : answer(message)))
      .catch((error: unknown) => log(`could not answer ${message.id}: ${(error as Error).message}`));
    queues.set(conversationId, next);
    void next.then(() => {
      if (queues.get(conversationId) === next) queues.delete(conversationId);
    });
  };

  await rt.agent(agentId, {
    onEvent(event) {
      if (event.event === 'conversation.started') void follow(event.data.conversation.id);
      // A user's message; streamed replies (ours included) arrive as message.created too, with a stream id.
      if (event.event === 'message.created' && event.data.message.role === 'user') {
        void follow(event.data.message.conversation_id);
        enqueue(event.data.message);
      }
    },
    onResubscribed({ recovered }) {
      if (recovered) return;
      log('events were lost while disconnected: looking for unanswered messages');
      void catchUp().catch((error: unknown) => log(`could not catch up: ${(error as Error).message}`));
    },
  });

  /**
   * Be present in the agent's open conversations, and answer those whose last message is the
   * user's: sent while this worker was stopped, or while its events could not be replayed.
   */
  const catchUp = async (): Promise<void> => {
    const open = await client.conversations.list({ agent_id: agentId, status: 'open', limit: 20 });
    await Promise.all(
      open.data.map(async (conversation) => {
        await follow(conversation.id);
        const [last] = (await client.messages.list({ conversation_id: conversation.id, sort: '-created_at', limit: 1 })).data;
        if (last?.role === 'user') enqueue(last);
      }),
    );
  };
  await catchUp();
  log(`answering for agent ${agentId} at ${options.baseURL}`);

  return {
    agentId,
    get answered() {
      return answered;
    },
    async stop() {
      stopped = true;
      await Promise.all(queues.values());
      await rt.close();
    },
  };
}

/** The oldest agent with the demo name, or a new one (the gateway's demo endpoint looks it up the same way). */
async function findOrCreateDemoAgent(client: StateSetClient): Promise<string> {
  const found = await client.agents.list({ filter: { name: DEMO_AGENT_NAME }, sort: 'created_at', limit: 1 });
  if (found.data[0]) return found.data[0].id;
  const created = await client.agents.create({ name: DEMO_AGENT_NAME, role: 'demo', metadata: { source: 'agent_worker' } });
  return created.id;
}

/** The reply as tokens: each word with the space after it, one every `delayMs`. */
async function* tokens(text: string, delayMs: number): AsyncGenerator<string> {
  for (const token of text.match(/\S+\s*/g) ?? [text]) {
    await sleep(delayMs);
    yield token;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const apiKey = process.env.STATEGATE_API_KEY ?? process.env.STATEGATE_KEY;
  if (!apiKey) {
    console.error('Set STATEGATE_KEY (or STATEGATE_API_KEY) to an API key of the gateway: the one printed at its first start.');
    process.exit(1);
  }
  const worker = await startAgentWorker({
    baseURL: process.env.STATEGATE_URL ?? 'http://127.0.0.1:8080',
    apiKey,
    ...(process.env.AGENT_ID ? { agentId: process.env.AGENT_ID } : {}),
    ...(process.env.AGENT_REPLY ? { reply: process.env.AGENT_REPLY } : {}),
    ...(process.env.TOKEN_DELAY_MS ? { tokenDelayMs: Number(process.env.TOKEN_DELAY_MS) } : {}),
  });
  const shutdown = () => {
    void worker.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
