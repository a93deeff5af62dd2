import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../target/build.js';

/** The machine and software a run was measured on, so that numbers are never read without it. */
export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  loadAverage: number[];
  packages: Record<string, string>;
  gitCommit: string;
  gitDirty: boolean;
}

const PACKAGES = [
  '@trufflesuite/uws-js-unofficial',
  'ws',
  'socket.io',
  'socket.io-client',
  '@socket.io/redis-adapter',
  '@electric-sql/pglite',
  'pg',
  'autocannon',
  'hdr-histogram-js',
  'zod',
];

function versionOf(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export function describeMachine(): Machine {
  const cpuList = cpus();
  return {
    cpuModel: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
    packages: Object.fromEntries(PACKAGES.map((name) => [name, versionOf(name)])),
    gitCommit: git(['rev-parse', 'HEAD']) || 'unknown',
    // Reports being written (a run of `all` rewrites results/ as it goes) are not changes to the code measured.
    gitDirty: git(['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)loadtest/results']) !== '',
  };
}
