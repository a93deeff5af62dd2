import { randomUUID } from 'node:crypto';
import type { Bus, BusEvent, BusHealth, BusListener, HistoryLimits, HistoryResult, PublishOptions, TopicPosition } from './bus.js';

/** How long an idle topic (no events, no listeners) keeps its seq and epoch. */
const COUNTER_IDLE_MS = 60 * 60 * 1000;

interface TopicState {
  seq: number;
  epoch: string;
  /** Oldest first; trimmed by count on publish and by age on read and sweep. */
  history: BusEvent[];
  lastUsed: number;
}

/**
 * The in-process bus of a single node. A topic's epoch is made when the topic is first used in
 * this process: positions from a previous process belong to another epoch and cannot be resumed.
 */
export class LocalBus implements Bus {
  readonly kind = 'local' as const;
  private readonly topics = new Map<string, TopicState>();
  private readonly listeners = new Map<string, Set<BusListener>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly limits: HistoryLimits) {
    // Ages out history, and forgets long-idle topics without listeners (they start a new epoch).
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(limits.ttlMs, 60_000)));
    this.sweeper.unref();
  }

  async publish(topic: string, event: string, data: unknown, options: PublishOptions = {}): Promise<BusEvent> {
    const state = this.state(topic);
    const ts = new Date().toISOString();
    let stamped: BusEvent;
    if (options.ephemeral) {
      stamped = { topic, seq: 0, epoch: state.epoch, event, data, ts, ephemeral: true };
    } else {
      state.seq += 1;
      stamped = { topic, seq: state.seq, epoch: state.epoch, event, data, ts };
      state.history.push(stamped);
      if (state.history.length > this.limits.maxEvents) state.history.splice(0, state.history.length - this.limits.maxEvents);
    }
    this.deliver(topic, stamped);
    return stamped;
  }

  async subscribe(topic: string, listener: BusListener): Promise<() => void> {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.listeners.get(topic);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.listeners.delete(topic);
    };
  }

  async position(topic: string): Promise<TopicPosition> {
    const state = this.state(topic);
    return { seq: state.seq, epoch: state.epoch };
  }

  async history(topic: string, since: number, epoch: string): Promise<HistoryResult> {
    const state = this.state(topic);
    const position = { seq: state.seq, epoch: state.epoch };
    if (epoch !== state.epoch || since > state.seq || since < 0) return { recovered: false, events: [], position };
    this.trimByAge(state);
    if (since === state.seq) return { recovered: true, events: [], position };
    const oldest = state.history[0];
    if (!oldest || oldest.seq > since + 1) return { recovered: false, events: [], position };
    return { recovered: true, events: state.history.slice(since + 1 - oldest.seq), position };
  }

  async recent(topic: string): Promise<BusEvent[]> {
    const state = this.topics.get(topic);
    if (!state) return [];
    this.trimByAge(state);
    return [...state.history];
  }

  health(): BusHealth {
    return { ok: true, detail: 'in-process' };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.listeners.clear();
  }

  private deliver(topic: string, event: BusEvent): void {
    const set = this.listeners.get(topic);
    if (!set) return;
    for (const listener of set) {
      try {
        listener(event);
      } catch {
        // A failing listener must not stop delivery to the others; listeners log their own errors.
      }
    }
  }

  private state(topic: string): TopicState {
    let state = this.topics.get(topic);
    if (!state) {
      state = { seq: 0, epoch: randomUUID().slice(0, 8), history: [], lastUsed: Date.now() };
      this.topics.set(topic, state);
    }
    state.lastUsed = Date.now();
    return state;
  }

  private trimByAge(state: TopicState): void {
    const cutoff = Date.now() - this.limits.ttlMs;
    let drop = 0;
    while (drop < state.history.length && Date.parse(state.history[drop]!.ts) < cutoff) drop++;
    if (drop > 0) state.history.splice(0, drop);
  }

  private sweep(): void {
    // Counters outlive their history by far: a resume within the hour after an idle spell still
    // finds its epoch, and memory still follows the active topics.
    const idleCutoff = Date.now() - Math.max(this.limits.ttlMs * 6, COUNTER_IDLE_MS);
    for (const [topic, state] of this.topics) {
      this.trimByAge(state);
      if (state.history.length === 0 && state.lastUsed < idleCutoff && !this.listeners.has(topic)) this.topics.delete(topic);
    }
  }
}
