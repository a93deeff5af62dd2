import { nowUs, sleep } from '../../lib/clock.js';
import { frameType, integerField } from '../../lib/fields.js';
import { encodeHistogram, newHistogram, record } from '../../lib/histogram.js';
import { Caller } from '../caller.js';
import { openLink, openMany } from '../link.js';
import type { Job, JobResult, JobSpec } from '../protocol.js';
import { SubscriberLedger } from './ledger.js';
import { MessageSequenceReply, StreamedReply, type ReplyStreamer } from './reply.js';

/**
 * A realistic mix: each conversation has a widget (one connection, subscribed to its
 * conversation) that sends a user message, waits for the whole reply, thinks, and asks again;
 * agents (one connection each, subscribed to `agent:<id>`, so to all their conversations) answer
 * every user message with a reply of several chunks.
 */
export interface ChatParams {
  widgets: Array<{ conversationId: string }>;
  agents: Array<{ agentId: string }>;
  thinkMs: number;
  chunks: number;
  chunkGapMs: number;
  /** Token streaming (streams.*) rather than one message per chunk. */
  streamed: boolean;
  userContent: string;
  chunkContent: string;
}

const AGENT_ROLE = Buffer.from('"role":"agent"');
const USER_ROLE = Buffer.from('"role":"user"');
const LAST = Buffer.from('"last":true');
const DELTA = Buffer.from('"event":"message.delta"');
const TURN_TIMEOUT_MS = 10_000;

interface Widget {
  caller: Caller;
  ledger: SubscriberLedger;
  conversationId: string;
  /** sent_at of the user message whose reply we await, 0 when idle. */
  waitingFor: number;
  firstSeen: boolean;
  resolveTurn: (() => void) | null;
}

export function chatJob(spec: JobSpec<ChatParams>): Job {
  const { params } = spec;
  const delivery = newHistogram();
  const firstChunk = newHistogram();
  const fullReply = newHistogram();
  const widgets: Widget[] = [];
  const agentCallers: Caller[] = [];
  let turnsStarted = 0;
  let turnsCompleted = 0;
  let turnsTimedOut = 0;
  let replies = 0;
  let replyErrors = 0;
  let delivered = 0;
  let running = false;
  let firstError: string | undefined;
  const chunks = Array.from({ length: params.chunks }, () => params.chunkContent);
  const turnLoops: Array<Promise<void>> = [];

  const onWidgetEvent = (widget: Widget, frame: Buffer) => {
    const seq = integerField(frame, 'seq');
    if (seq === 0) return; // presence and typing signals: not part of the conversation
    widget.ledger.onEvent(seq);
    delivered++;
    const now = nowUs();
    const sentAt = integerField(frame, 'sent_at');
    if (sentAt > 0) record(delivery, now - sentAt);
    // A streamed reply's first delta is its first chunk (one widget and one agent per conversation).
    if (widget.waitingFor !== 0 && !widget.firstSeen && frame.indexOf(DELTA) >= 0) {
      widget.firstSeen = true;
      record(firstChunk, now - widget.waitingFor);
      return;
    }
    if (widget.waitingFor === 0 || frame.indexOf(AGENT_ROLE) < 0 || integerField(frame, 'reply_to') !== widget.waitingFor) return;
    if (!widget.firstSeen) {
      widget.firstSeen = true;
      record(firstChunk, now - widget.waitingFor);
    }
    if (frame.indexOf(LAST) >= 0) {
      record(fullReply, now - widget.waitingFor);
      widget.resolveTurn?.();
    }
  };

  const turnLoop = async (widget: Widget) => {
    while (running) {
      const sentAt = nowUs();
      widget.waitingFor = sentAt;
      widget.firstSeen = false;
      const replied = new Promise<boolean>((resolve) => {
        widget.resolveTurn = () => resolve(true);
        setTimeout(() => resolve(false), TURN_TIMEOUT_MS);
      });
      turnsStarted++;
      try {
        await widget.caller.call('messages.create', {
          conversation_id: widget.conversationId,
          role: 'user',
          content: params.userContent,
          metadata: { sent_at: sentAt },
        });
      } catch (error) {
        firstError ??= String(error);
      }
      if (await replied) turnsCompleted++;
      else turnsTimedOut++;
      widget.waitingFor = 0;
      widget.resolveTurn = null;
      await sleep(params.thinkMs * (0.5 + Math.random()));
    }
  };

  return {
    async setup() {
      // Agents first, so that no user message goes unanswered.
      const agents = await openMany(params.agents.length, async (index) => {
        const caller = new Caller();
        const streamer: ReplyStreamer = params.streamed ? new StreamedReply(caller, params.chunkGapMs) : new MessageSequenceReply(caller, params.chunkGapMs);
        caller.link = await openLink(spec.target, index, {
          onFrame(frame) {
            if (caller.onFrame(frame) || frameType(frame) !== 'event' || frame.indexOf(USER_ROLE) < 0) return;
            const event = JSON.parse(frame.toString('utf8')) as { data: { message: { conversation_id: string; metadata: { sent_at?: number } } } };
            const { conversation_id: conversationId, metadata } = event.data.message;
            streamer.reply(conversationId, metadata.sent_at ?? 0, chunks).then(
              () => replies++,
              (error: unknown) => {
                replyErrors++;
                firstError ??= String(error);
              },
            );
          },
        });
        await caller.subscribe(`agent:${params.agents[index]!.agentId}`);
        agentCallers.push(caller);
        return caller.link;
      });
      if (agents.failures > 0) throw new Error(`agents could not connect: ${agents.firstError}`);

      const opened = await openMany(params.widgets.length, async (index) => {
        const widget: Widget = {
          caller: new Caller(),
          ledger: new SubscriberLedger(index),
          conversationId: params.widgets[index]!.conversationId,
          waitingFor: 0,
          firstSeen: false,
          resolveTurn: null,
        };
        widget.caller.link = await openLink(spec.target, index, {
          onFrame(frame) {
            if (widget.caller.onFrame(frame)) return;
            if (frameType(frame) === 'event') onWidgetEvent(widget, frame);
          },
          onClose: () => (widget.ledger.closed = true),
        });
        widget.ledger.onSubscribed(await widget.caller.subscribe(`conversation:${widget.conversationId}`));
        widgets.push(widget);
        return widget.caller.link;
      });
      if (opened.failures > 0) throw new Error(`widgets could not connect: ${opened.firstError}`);
    },
    async run(durationMs) {
      running = true;
      // Widgets start spread over the first think time, not all in the same millisecond.
      for (const widget of widgets) turnLoops.push(sleep(Math.random() * params.thinkMs).then(() => turnLoop(widget)));
      await sleep(durationMs);
      running = false;
      return { turnsCompleted };
    },
    async finish(): Promise<JobResult> {
      await Promise.race([Promise.all(turnLoops), sleep(TURN_TIMEOUT_MS + 1000)]);
      const counters: Record<string, number> = {
        widgets: widgets.length,
        agents: agentCallers.length,
        turns_started: turnsStarted,
        turns_completed: turnsCompleted,
        turns_timed_out: turnsTimedOut,
        replies,
        reply_errors: replyErrors,
        delivered,
        gaps: 0,
        duplicates: 0,
        closed_widgets: 0,
      };
      for (const widget of widgets) {
        counters.gaps! += widget.ledger.gaps;
        counters.duplicates! += widget.ledger.duplicates;
        if (widget.ledger.closed) counters.closed_widgets!++;
      }
      return {
        counters,
        histograms: { delivery: encodeHistogram(delivery), first_chunk: encodeHistogram(firstChunk), full_reply: encodeHistogram(fullReply) },
        notes: firstError ? [firstError] : [],
      };
    },
    progress: () => ({ delivered, turns: turnsCompleted }),
    close() {
      running = false;
      for (const widget of widgets) widget.caller.link?.close();
      for (const caller of agentCallers) caller.link?.close();
    },
  };
}
