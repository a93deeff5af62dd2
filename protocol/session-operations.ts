import { z } from 'zod';
import { Deleted, pageOf } from './common.js';
import { byId, contract } from './contract.js';
import {
  ContextInput,
  Memory,
  MemoryCreateInput,
  MemoryDeleteInput,
  MemoryListInput,
  MemorySearchInput,
  MemorySearchResult,
  Session,
  SessionContext,
  SessionCreateInput,
  SessionForkInput,
  SessionListInput,
  SessionRollbackInput,
  SessionStateInput,
  StateVersion,
  Turn,
  TurnCreated,
  TurnCreateInput,
  TurnListInput,
  VersionListInput,
} from './sessions.js';

/**
 * The Sessions API's operations. Routes are the StateBase document's; versions, turns and
 * memories complete it. Turns and memories are parts of a session: they use the sessions
 * permissions, so one `sessions:write` key can run an agent's whole loop.
 */

const bySession = byId('session_id');

export const sessionContracts = {
  'sessions.create': contract({
    name: 'sessions.create',
    summary: 'Create a session for an agent',
    http: { method: 'POST', path: '/v1/sessions', status: 201 },
    permission: 'sessions:write',
    input: SessionCreateInput,
    output: Session,
  }),
  'sessions.get': contract({
    name: 'sessions.get',
    summary: 'Get a session with its current state',
    http: { method: 'GET', path: '/v1/sessions/{session_id}' },
    permission: 'sessions:read',
    input: bySession,
    output: Session,
  }),
  'sessions.list': contract({
    name: 'sessions.list',
    summary: 'List sessions, newest first',
    http: { method: 'GET', path: '/v1/sessions' },
    permission: 'sessions:read',
    input: SessionListInput,
    output: pageOf(Session),
  }),
  'sessions.delete': contract({
    name: 'sessions.delete',
    summary: 'Delete a session with its state history, turns and memories',
    http: { method: 'DELETE', path: '/v1/sessions/{session_id}' },
    permission: 'sessions:write',
    input: bySession,
    output: Deleted,
  }),
  'sessions.context': contract({
    name: 'sessions.context',
    summary: 'State, the memories most relevant to a query, and recent turns, in one call',
    http: { method: 'POST', path: '/v1/sessions/{session_id}/context' },
    permission: 'sessions:read',
    input: ContextInput,
    output: SessionContext,
  }),
  'sessions.update_state': contract({
    name: 'sessions.update_state',
    summary: 'Replace the state, storing it as a new version',
    http: { method: 'POST', path: '/v1/sessions/{session_id}/state' },
    permission: 'sessions:write',
    input: SessionStateInput,
    output: Session,
  }),
  'sessions.rollback': contract({
    name: 'sessions.rollback',
    summary: "Store a new version holding an earlier version's state",
    http: { method: 'POST', path: '/v1/sessions/{session_id}/rollback' },
    permission: 'sessions:write',
    input: SessionRollbackInput,
    output: Session,
  }),
  'sessions.fork': contract({
    name: 'sessions.fork',
    summary: 'Create a new session from a version of this one (default: the latest)',
    http: { method: 'POST', path: '/v1/sessions/{session_id}/fork', status: 201 },
    permission: 'sessions:write',
    input: SessionForkInput,
    output: Session,
  }),
  'sessions.versions': contract({
    name: 'sessions.versions',
    summary: "List a session's state versions, newest first",
    http: { method: 'GET', path: '/v1/sessions/{session_id}/versions' },
    permission: 'sessions:read',
    input: VersionListInput,
    output: pageOf(StateVersion),
  }),
  'turns.create': contract({
    name: 'turns.create',
    summary: 'Record a conversation turn on a session',
    http: { method: 'POST', path: '/v1/sessions/{session_id}/turns', status: 201 },
    permission: 'sessions:write',
    input: TurnCreateInput,
    output: TurnCreated,
  }),
  'turns.list': contract({
    name: 'turns.list',
    summary: "List a session's turns, newest first",
    http: { method: 'GET', path: '/v1/sessions/{session_id}/turns' },
    permission: 'sessions:read',
    input: TurnListInput,
    output: pageOf(Turn),
  }),
  'memories.create': contract({
    name: 'memories.create',
    summary: 'Add a memory to a session (embedded by the active embedder unless a vector is given)',
    http: { method: 'POST', path: '/v1/sessions/{session_id}/memories', status: 201 },
    permission: 'sessions:write',
    input: MemoryCreateInput,
    output: Memory,
  }),
  'memories.list': contract({
    name: 'memories.list',
    summary: "List a session's memories, newest first",
    http: { method: 'GET', path: '/v1/sessions/{session_id}/memories' },
    permission: 'sessions:read',
    input: MemoryListInput,
    output: pageOf(Memory),
  }),
  'memories.delete': contract({
    name: 'memories.delete',
    summary: 'Delete a memory',
    http: { method: 'DELETE', path: '/v1/sessions/{session_id}/memories/{memory_id}' },
    permission: 'sessions:write',
    input: MemoryDeleteInput,
    output: Deleted,
  }),
  'memories.search': contract({
    name: 'memories.search',
    summary: "Search a session's memories by meaning, most similar first",
    http: { method: 'POST', path: '/v1/sessions/{session_id}/memories/search' },
    permission: 'sessions:read',
    input: MemorySearchInput,
    output: MemorySearchResult,
  }),
} as const;
