import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The gateway is benchmarked as compiled JavaScript (dist/), as `npm start` runs it. It is built
 * here when dist/ is missing or older than any source file, so that a fresh clone just works.
 */
export const ROOT = new URL('../../', import.meta.url).pathname;
export const GATEWAY_ENTRY = join(ROOT, 'dist/src/main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtime(path) : entry.name.endsWith('.ts') ? statSync(path).mtimeMs : 0;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}

export function ensureGatewayBuilt(log: (line: string) => void): void {
  const sources = Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'protocol')));
  if (existsSync(GATEWAY_ENTRY) && statSync(GATEWAY_ENTRY).mtimeMs >= sources) return;
  log('building the gateway (tsc -p tsconfig.build.json) ...');
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
}
