import type { StateHistory, StateView } from './compat.js';
import type { OutputOf, RestOperationName } from './operations.js';
import type { Page } from './common.js';
import type { Memory, ScoredMemory, Session, SessionContext, Turn } from './sessions.js';

/**
 * The StateBase client's wire format, served under `/statebase` (point the client's baseURL at
 * `http://host:8080/statebase`). The client reads answers bare (`response.data` is the resource,
 * no envelope), with an `object` field on each resource, lists as `{object: "list", data,
 * has_more, first_id, last_id}`, typed turn sides and 204 on deletes. Each route here runs the
 * same operation as its `/v1` route; only the presentation differs. The StateSet envelope stays
 * the default everywhere else.
 */
export const STATEBASE_PREFIX = '/statebase';

export interface ViewRoute {
  operation: RestOperationName;
  /** The answer's status when it differs from the operation's (204: no body). */
  status?: number;
  present: (data: unknown) => unknown;
}

function view<N extends RestOperationName>(operation: N, present: (data: OutputOf<N>) => unknown, status?: number): ViewRoute {
  return { operation, present: present as (data: unknown) => unknown, ...(status ? { status } : {}) };
}

const nothing = () => undefined;

export const presentSession = (session: Session) => ({ object: 'session' as const, ...session });

export function presentList<T>(page: Page<T>, item: (value: T) => unknown) {
  const data = page.data.map(item) as { id?: unknown }[];
  const idOf = (entry: { id?: unknown } | undefined) => (typeof entry?.id === 'string' ? entry.id : null);
  return {
    object: 'list' as const,
    data,
    has_more: page.has_more,
    first_id: idOf(data[0]),
    last_id: idOf(data[data.length - 1]),
    next_cursor: page.next_cursor,
  };
}

export function presentTurn(turn: Turn & { state_before?: unknown; state_after?: unknown }) {
  const { input, output, input_type, output_type, ...rest } = turn;
  return {
    object: 'turn' as const,
    ...rest,
    input: { type: input_type, content: input },
    output: { type: output_type, content: output },
    input_preview: input.slice(0, 200),
    output_preview: output.slice(0, 200),
  };
}

export function presentMemory(memory: Memory) {
  // Every stored memory has a vector (search needs it); it is never returned, so no id to give.
  return { object: 'memory' as const, ...memory, embedding_id: null, vector_available: true };
}

const presentHit = (memory: ScoredMemory) => ({ ...presentMemory(memory), score: memory.score ?? 0 });

/** Context: memories keep their fields plus `type`; each turn becomes the user's input and the assistant's output. */
export function presentContext(context: SessionContext) {
  return {
    state: context.state,
    memories: context.memories.map(presentHit),
    recent_turns: context.recent_turns.flatMap((turn) => [
      { role: 'user' as const, content: turn.input, turn_id: turn.id, turn_number: turn.turn_number },
      { role: 'assistant' as const, content: turn.output, turn_id: turn.id, turn_number: turn.turn_number },
    ]),
  };
}

const same = <T>(value: T) => value;

export const statebaseView: ViewRoute[] = [
  view('sessions.create', presentSession),
  view('sessions.get', presentSession),
  view('sessions.list', (page) => presentList(page, presentSession)),
  view('sessions.delete', nothing, 204),
  view('sessions.update', presentSession),
  view('sessions.context', presentContext),
  view('sessions.update_state', presentSession),
  view('sessions.rollback', presentSession),
  view('sessions.fork', presentSession),
  view('sessions.versions', (page) => presentList(page, same)),
  view('sessions.get_state', (state: StateView) => state),
  view('sessions.patch_state', same),
  view('sessions.replace_state', same),
  view('sessions.rollback_state', same),
  view('sessions.state_history', (history: StateHistory) => history),
  view('turns.create', presentTurn),
  view('turns.list', (page) => presentList(page, presentTurn)),
  view('turns.get', presentTurn),
  view('memories.create', presentMemory),
  view('memories.list', (page) => presentList(page, presentMemory)),
  view('memories.delete', nothing, 204),
  view('memories.search', (result) => ({ data: result.data.map(presentHit) })),
  view('memories.add', presentMemory),
  view('memories.find', (result) => ({ data: result.data.map(presentHit), query: result.query })),
  view('memories.find_by_search_path', (result) => ({ data: result.data.map(presentHit), query: result.query })),
  view('memories.get', presentMemory),
  view('memories.update', presentMemory),
  view('memories.remove', nothing, 204),
];
