// Lint: typescript-eslint's recommended rules, and import rules that keep the layers honest.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Imports that a layer must not make (gitignore-style patterns on the import path), with the reason shown to whoever tries. */
const boundary = (patterns, message) => ({ patterns, message });

/**
 * One `no-restricted-imports` rule made of every boundary that applies to a set of files. A flat
 * config entry replaces the rule's options of an earlier entry for the files both match, so each
 * entry below lists all the boundaries its files are under, the general ones included.
 */
const forbid = (...boundaries) => ({
  'no-restricted-imports': ['error', { patterns: boundaries.flatMap(({ patterns, message }) => patterns.map((group) => ({ group: [group], message }))) }],
});

const protocolIsTheContract = boundary(
  ['**/src/**', '**/clients/**'],
  'protocol/ is the wire contract only, importable alone by the server and by clients: it must not depend on src/ or clients/',
);

// The socket clients and the SDK live in clients/ (the old protocol/ paths too, so that none comes back).
const noClients = boundary(
  [
    '**/clients/**',
    '**/protocol/client.js',
    '**/protocol/resilient-client.js',
    '**/protocol/resilient-contract.js',
    '**/protocol/deferred.js',
    '**/protocol/sdk/**',
  ],
  'src/ is the server: it must not import a client (clients/, the socket clients, the SDK); the wire contract is protocol/',
);

const transportLayer = boundary(
  ['**/store/**', '**/bus/**', '**/operations/**', '**/redis/**'],
  'transport/ sees the gateway only through GatewayCore (transport/core.ts): no store, bus, handler or Redis internals',
);

const storeLayer = boundary(
  ['**/core/**', '**/transport/**', '**/realtime/**', '**/bus/**', '**/operations/**', '**/auth/**'],
  'store/ is the bottom layer: it may import src/kernel/ and protocol/ only',
);

const busLayer = boundary(
  ['**/store/**', '**/transport/**', '**/realtime/**', '**/operations/**'],
  'bus/ is a carrier: no store, transport, realtime or handler imports',
);

const handlersLayer = boundary(['**/transport/**'], 'handlers and delivery know nothing of transports');

/**
 * The transport adapters: the WebSocket (ws*.ts), REST (http.ts), the widget's files (static.ts)
 * and GraphQL (graphql/). None imports another; what they share lives in modules of its own
 * (core, request, respond, health, in-flight, uws, socket/), and server.ts assembles them.
 */
const ADAPTERS = { ws: 'ws*.js', rest: 'http.js', static: 'static.js', graphql: 'graphql/**' };
const otherAdapters = (self, from) =>
  boundary(
    Object.entries(ADAPTERS)
      .filter(([name]) => name !== self)
      .map(([, path]) => `${from}${path}`),
    `a transport adapter does not import another (${Object.keys(ADAPTERS).join(', ')}): move what they share to a module of its own (request.ts, respond.ts, health.ts, in-flight.ts, socket/)`,
  );
const sharedTransport = (from) =>
  boundary(
    Object.values(ADAPTERS).map((path) => `${from}${path}`),
    'shared transport modules (core, request, respond, health, in-flight, uws, socket/) import no adapter: only server.ts assembles them',
  );

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', 'loadtest/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Tests and protocol code cast deliberately at the edges (frames, raw JSON).
      '@typescript-eslint/no-explicit-any': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  // The wire contract is importable alone, by the server and by clients: nothing of either.
  { files: ['protocol/**/*.ts'], rules: forbid(protocolIsTheContract) },
  // The clients speak the contract and nothing of the server: clients/ becomes a package of its own.
  {
    files: ['clients/**/*.ts'],
    rules: forbid(boundary(['**/src/**'], 'clients/ depends only on clients/ and protocol/: it must not import the server (src/)')),
  },
  // The server imports no client.
  { files: ['src/**/*.ts'], rules: forbid(noClients) },
  // Transports translate frames and requests; they know nothing of storage or the bus.
  { files: ['src/transport/**/*.ts'], rules: forbid(noClients, transportLayer) },
  // ...and the adapters know nothing of each other.
  { files: ['src/transport/ws*.ts'], rules: forbid(noClients, transportLayer, otherAdapters('ws', './')) },
  { files: ['src/transport/http.ts'], rules: forbid(noClients, transportLayer, otherAdapters('rest', './')) },
  { files: ['src/transport/static.ts'], rules: forbid(noClients, transportLayer, otherAdapters('static', './')) },
  { files: ['src/transport/graphql/**/*.ts'], rules: forbid(noClients, transportLayer, otherAdapters('graphql', '../')) },
  {
    files: ['src/transport/*.ts'],
    ignores: ['src/transport/server.ts', 'src/transport/ws*.ts', 'src/transport/http.ts', 'src/transport/static.ts'],
    rules: forbid(noClients, transportLayer, sharedTransport('./')),
  },
  { files: ['src/transport/socket/**/*.ts'], rules: forbid(noClients, transportLayer, sharedTransport('../')) },
  // The store is the bottom layer: it imports only the shared kernel and the protocol.
  { files: ['src/store/**/*.ts'], rules: forbid(noClients, storeLayer) },
  // The bus carries events; it knows nothing of what they mean or where they are stored.
  { files: ['src/bus/**/*.ts'], rules: forbid(noClients, busLayer) },
  // Handlers know nothing of transports.
  { files: ['src/operations/**/*.ts', 'src/realtime/**/*.ts'], rules: forbid(noClients, handlersLayer) },
);
