import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * A gateway as its own process (`node --import tsx src/main.ts`), as an operator runs it: for
 * what only a whole process shows (exit codes, signals, supervisors, locks). Its output is kept.
 */
export interface GatewayProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves once `pattern` appears in the output; rejects if the process exits first or on timeout. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const live = new Set<ChildProcess>();
// A failed test must not leave gateways holding ports for the rest of the run.
process.once('exit', killGatewayProcesses);

/** Starts one; `env` on top of this process's, with quiet defaults (no key printed, no configured key). */
export function gatewayProcess(env: Record<string, string>): GatewayProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', PRINT_BOOTSTRAP_KEY: 'false', STATEGATE_API_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    exited,
    output: () => output,
    async waitFor(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`gateway exited (${child.exitCode ?? child.signalCode}):\n${output.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} after ${timeoutMs} ms:\n${output.slice(-4000)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

/** SIGKILLs every gateway process still running (after a test that failed half-way). */
export function killGatewayProcesses(): void {
  for (const child of live) child.kill('SIGKILL');
}
