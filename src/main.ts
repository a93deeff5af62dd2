#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { startGateway, type Gateway } from './app.js';
import { createAccount, issueKey, PLANS, type Plan } from './auth/provisioning.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { DataDirLockedError } from './store/data-dir-lock.js';
import { openStore } from './store/store.js';
import { Supervisor, WorkersError } from './workers/supervisor.js';
import { SupervisorLink, workerRole } from './workers/supervisor-link.js';

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
  const role = workerRole();
  if (!role && config.workers > 1) return supervise(config);
  // A worker of several: it listens on the shared port and reports to its supervisor.
  const link = role ? new SupervisorLink(role) : null;
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
  // A worker never outlives its supervisor (killed, or gone without stopping it).
  link?.onSupervisorGone(() => shutdown('supervisor gone'));

  try {
    gateway = await startGateway(config, link && role ? { log: createLogger(config.logLevel).child({ worker: role.index }), worker: link } : {});
  } catch (error) {
    await link?.failed(error instanceof Error ? error.message : String(error));
    throw error;
  }
  const bootstrap = gateway.bootstrap && config.printBootstrapKey ? { accountId: gateway.bootstrap.accountId, key: gateway.bootstrap.key } : null;
  // With workers, the supervisor prints the key, once for all of them.
  if (link) link.ready({ url: gateway.url, wsUrl: gateway.wsUrl, bootstrap });
  else if (bootstrap) printBootstrapKey(bootstrap, gateway);
  if (signalled) shutdown(signalled);
}

/** WORKERS > 1: this process supervises the workers and serves nothing itself. */
async function supervise(config: Config): Promise<void> {
  const supervisor = new Supervisor({
    config,
    log: createLogger(config.logLevel).child({ component: 'supervisor' }),
    onReady: ({ url, wsUrl, bootstrap }) => {
      if (bootstrap && config.printBootstrapKey) printBootstrapKey(bootstrap, { url, wsUrl });
    },
  });
  process.exit(await supervisor.run());
}

/** Printed once, to the terminal only: keys are never written to the logs. */
function printBootstrapKey(bootstrap: { accountId: string; key: string }, gateway: { url: string; wsUrl: string }): void {
  process.stderr.write(
    `\nCreated account ${bootstrap.accountId} with API key (shown once, keep it):\n\n  export STATEGATE_KEY=${bootstrap.key}\n\n` +
      `REST: ${gateway.url}/v1/agents   WebSocket: ${gateway.wsUrl}\n\n`,
  );
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
  if (error instanceof WorkersError && error.afterStart) {
    process.stderr.write(`stategate stopped: ${error.message}\n`);
    process.exit(1);
  }
  if (error instanceof DataDirLockedError || error instanceof WorkersError) {
    process.stderr.write(`stategate cannot start: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`stategate failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
