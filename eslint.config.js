// Lint: typescript-eslint's recommended rules, and import rules that keep the layers honest.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Imports that a layer must not make, with the reason shown to whoever tries. */
const forbid = (patterns, message) => ({ 'no-restricted-imports': ['error', { patterns: patterns.map((group) => ({ group: [group], message })) }] });

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
  {
    // The wire contract is importable alone, by the server and by clients: nothing of either.
    files: ['protocol/**/*.ts'],
    rules: forbid(
      ['**/src/**', '**/clients/**'],
      'protocol/ is the wire contract only, importable alone by the server and by clients: it must not depend on src/ or clients/',
    ),
  },
  {
    // The clients speak the contract and nothing of the server: clients/ becomes a package of its own.
    files: ['clients/**/*.ts'],
    rules: forbid(['**/src/**'], 'clients/ depends only on clients/ and protocol/: it must not import the server (src/)'),
  },
  {
    // Transports translate frames and requests; they know nothing of storage or the bus.
    files: ['src/transport/**/*.ts'],
    rules: forbid(
      ['**/store/**', '**/bus/**', '**/operations/**', '**/redis/**'],
      'transport/ sees the gateway only through GatewayCore (transport/core.ts): no store, bus, handler or Redis internals',
    ),
  },
  {
    // The store is the bottom layer: it imports only the shared kernel and the protocol.
    files: ['src/store/**/*.ts'],
    rules: forbid(
      ['**/core/**', '**/transport/**', '**/realtime/**', '**/bus/**', '**/operations/**', '**/auth/**'],
      'store/ is the bottom layer: it may import src/kernel/ and protocol/ only',
    ),
  },
  {
    // The bus carries events; it knows nothing of what they mean or where they are stored.
    files: ['src/bus/**/*.ts'],
    rules: forbid(['**/store/**', '**/transport/**', '**/realtime/**', '**/operations/**'], 'bus/ is a carrier: no store, transport, realtime or handler imports'),
  },
  {
    // Handlers know nothing of transports.
    files: ['src/operations/**/*.ts', 'src/realtime/**/*.ts'],
    rules: forbid(['**/transport/**'], 'handlers and delivery know nothing of transports'),
  },
);
