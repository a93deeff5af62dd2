import { Deleted } from './common.js';
import { byId, contract } from './contract.js';
import {
  AccountMemoryCreateInput,
  MemoryByIdInput,
  MemoryFindInput,
  MemoryFindResult,
  MemoryUpdateInput,
  SessionUpdateInput,
  StateHistory,
  StateHistoryInput,
  StatePatchInput,
  StateReplaceInput,
  StateRollbackInput,
  StateRollbackResult,
  StateView,
  TurnGetInput,
} from './compat.js';
import { Memory, Session, Turn } from './sessions.js';

/**
 * Operations the StateBase client uses beyond the Sessions document. Each is a REST route in the
 * StateSet envelope and a WebSocket method, like every operation; `protocol/statebase-view.ts`
 * serves the same operations in the StateBase client's own wire format under `/statebase`.
 */
export const compatContracts = {
  'sessions.update': contract({
    name: 'sessions.update',
    summary: "Replace a session's metadata and/or reset its lifetime; state is untouched",
    http: { method: 'PATCH', path: '/v1/sessions/{session_id}' },
    permission: 'sessions:write',
    input: SessionUpdateInput,
    output: Session,
  }),
  'sessions.get_state': contract({
    name: 'sessions.get_state',
    summary: 'The current state with its version',
    http: { method: 'GET', path: '/v1/sessions/{session_id}/state' },
    permission: 'sessions:read',
    input: byId('session_id'),
    output: StateView,
  }),
  'sessions.patch_state': contract({
    name: 'sessions.patch_state',
    summary: 'Merge top-level keys into the state, storing a new version',
    http: { method: 'PATCH', path: '/v1/sessions/{session_id}/state' },
    permission: 'sessions:write',
    input: StatePatchInput,
    output: StateView,
  }),
  'sessions.replace_state': contract({
    name: 'sessions.replace_state',
    summary: 'Replace the state, storing a new version (as POST …/state, answering the state)',
    http: { method: 'PUT', path: '/v1/sessions/{session_id}/state' },
    permission: 'sessions:write',
    input: StateReplaceInput,
    output: StateView,
  }),
  'sessions.rollback_state': contract({
    name: 'sessions.rollback_state',
    summary: "Store a new version holding an earlier version's state (negative: counted back from the latest)",
    http: { method: 'POST', path: '/v1/sessions/{session_id}/state/rollback' },
    permission: 'sessions:write',
    input: StateRollbackInput,
    output: StateRollbackResult,
  }),
  'sessions.state_history': contract({
    name: 'sessions.state_history',
    summary: "A session's state versions with their states, newest first",
    http: { method: 'GET', path: '/v1/sessions/{session_id}/state/history' },
    permission: 'sessions:read',
    input: StateHistoryInput,
    output: StateHistory,
  }),
  'turns.get': contract({
    name: 'turns.get',
    summary: 'Get one turn of a session',
    http: { method: 'GET', path: '/v1/sessions/{session_id}/turns/{turn_id}' },
    permission: 'sessions:read',
    input: TurnGetInput,
    output: Turn,
  }),
  'memories.add': contract({
    name: 'memories.add',
    summary: 'Add a memory to a session, addressed by the body (StateBase: POST /v1/memories)',
    http: { method: 'POST', path: '/v1/memories', status: 201 },
    permission: 'sessions:write',
    input: AccountMemoryCreateInput,
    output: Memory,
  }),
  'memories.find': contract({
    name: 'memories.find',
    summary: "Search the account's memories by meaning, optionally in one session, by types and tags",
    http: { method: 'GET', path: '/v1/memories' },
    permission: 'sessions:read',
    input: MemoryFindInput,
    output: MemoryFindResult,
  }),
  'memories.find_by_search_path': contract({
    name: 'memories.find_by_search_path',
    summary: 'memories.find at GET /v1/memories/search (older StateBase clients)',
    http: { method: 'GET', path: '/v1/memories/search' },
    permission: 'sessions:read',
    input: MemoryFindInput,
    output: MemoryFindResult,
  }),
  'memories.get': contract({
    name: 'memories.get',
    summary: 'Get a memory by id',
    http: { method: 'GET', path: '/v1/memories/{memory_id}' },
    permission: 'sessions:read',
    input: MemoryByIdInput,
    output: Memory,
  }),
  'memories.update': contract({
    name: 'memories.update',
    summary: 'Update content, type, tags or metadata of a memory (re-embedded when content changes); version + 1',
    http: { method: 'PUT', path: '/v1/memories/{memory_id}' },
    permission: 'sessions:write',
    input: MemoryUpdateInput,
    output: Memory,
  }),
  'memories.remove': contract({
    name: 'memories.remove',
    summary: 'Delete a memory by id',
    http: { method: 'DELETE', path: '/v1/memories/{memory_id}' },
    permission: 'sessions:write',
    input: MemoryByIdInput,
    output: Deleted,
  }),
} as const;
