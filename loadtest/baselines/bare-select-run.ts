import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mergeEncoded, summarize, type LatencySummary } from '../lib/histogram.js';
import { sibling, TSX_EXEC_ARGV } from '../target/child.js';

/** Runs bare-select.ts in a child process and returns its rate. */
export interface BareSelectResult {
  selectsPerS: number;
  latency: LatencySummary;
  store: string;
  pid: number;
}

export async function runBareSelect(options: { durationMs: number; concurrency: number; databaseUrl?: string | undefined }): Promise<BareSelectResult> {
  const child = fork(sibling(import.meta.url, './bare-select.ts'), [String(options.durationMs), String(options.concurrency)], {
    execArgv: TSX_EXEC_ARGV,
    env: { ...process.env, ...(options.databaseUrl ? { BARE_SELECT_DATABASE_URL: options.databaseUrl } : {}) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = (await once(child, 'message')) as [{ type: string; error?: string; selects: number; elapsedMs: number; latency: string; store: string }];
  if (child.exitCode === null) await once(child, 'exit');
  if (message.type !== 'result') throw new Error(`bare select failed: ${message.error}`);
  return {
    selectsPerS: Math.round(message.selects / (message.elapsedMs / 1000)),
    latency: summarize(mergeEncoded([message.latency])),
    store: message.store,
    pid: child.pid!,
  };
}
