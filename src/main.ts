#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { startGateway, type Gateway } from './app.js';
import { createAccount, issueKey, PLANS, type Plan } from './auth/provisioning.js';
import { ConfigError, loadConfig } from './config.js';
import { DataDirLockedError } from './store/data-dir-lock.js';
import { openStore } from './store/store.js';

const USAGE = `stategate: realtime conversation and session gateway

Usage:
  stategate [serve]                              start the gateway (configuration from the environment)
  stategate accounts create --name N [--plan P]  create an account and print its first API key
  stategate keys create --account ID [--scopes a,b]
                                                 issue another key for an account
  stategate keys revoke --account ID --key KEY_ID
  stategate help
Plans: ${PLANS.join(', ')}. Scopes default to "*".`;

async function serve(): Promise<void> {
  const config = loadConfig();
  // Signals are caught from the first moment: one that arrives during start-up stops the gateway
  // as soon as it is up, instead of killing it half-started.
  let gateway: Gateway | null = null;
  let signalled: string | null = null;
  const shutdown = (signal: string) => {
    signalled ??= signal;
    if (!gateway) return;
    const running = gateway;
    running.log.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (error) => {
        running.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  gateway = await startGateway(config);
  if (gateway.bootstrap && config.printBootstrapKey) {
    // Printed once, to the terminal only: keys are never written to the logs.
    process.stderr.write(
      `\nCreated account ${gateway.bootstrap.accountId} with API key (shown once, keep it):\n\n  export STATEGATE_KEY=${gateway.bootstrap.key}\n\n` +
        `REST: ${gateway.url}/v1/agents   WebSocket: ${gateway.wsUrl}\n\n`,
    );
  }
  if (signalled) shutdown(signalled);
}

async function admin(command: string, sub: string | undefined, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { name: { type: 'string' }, plan: { type: 'string' }, account: { type: 'string' }, scopes: { type: 'string' }, key: { type: 'string' } },
  });
  const store = await openStore(loadConfig());
  try {
    const scopes = values.scopes
      ?.split(',')
      .map((scope) => scope.trim())
      .filter(Boolean);
    if (command === 'accounts' && sub === 'create') {
      if (!values.name) throw new UsageError('--name is required');
      const plan = (values.plan ?? 'starter') as Plan;
      if (!PLANS.includes(plan)) throw new UsageError(`--plan must be one of ${PLANS.join(', ')}`);
      const issued = await createAccount(store, { name: values.name, plan, ...(scopes ? { scopes } : {}) });
      process.stdout.write(`${JSON.stringify({ account_id: issued.accountId, key_id: issued.keyId, api_key: issued.key }, null, 2)}\n`);
    } else if (command === 'keys' && sub === 'create') {
      if (!values.account) throw new UsageError('--account is required');
      if (!(await store.accounts.getAccount(values.account))) throw new UsageError(`no account ${values.account}`);
      const issued = await issueKey(store, { accountId: values.account, scopes });
      process.stdout.write(`${JSON.stringify({ account_id: issued.accountId, key_id: issued.keyId, api_key: issued.key }, null, 2)}\n`);
    } else if (command === 'keys' && sub === 'revoke') {
      if (!values.account || !values.key) throw new UsageError('--account and --key are required');
      const revoked = await store.accounts.revokeKey(values.account, values.key);
      if (!revoked) throw new UsageError(`no live key ${values.key} in account ${values.account}`);
      process.stdout.write(`revoked ${values.key}\n`);
    } else {
      throw new UsageError(`unknown command: ${command} ${sub ?? ''}`);
    }
  } finally {
    await store.close();
  }
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', sub, ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === 'serve') return serve();
  return admin(command, sub, rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof UsageError) {
    process.stderr.write(`${error.message}\n\n${error instanceof UsageError ? USAGE : ''}\n`);
    process.exit(2);
  }
  if (error instanceof DataDirLockedError) {
    process.stderr.write(`stategate cannot start: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`stategate failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
