import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSdk, SDK_OUTFILE } from '../../scripts/build-sdk.js';

/**
 * Builds the SDK bundle the gateway serves at /widget/sdk.js from the current source. Suites run
 * in parallel and a gateway may be serving the file meanwhile: each builds in a folder of its own
 * (same file name, so the source map link holds) and renames the files into place, so nobody ever
 * reads a half-written bundle.
 */
export async function buildServedSdk(): Promise<void> {
  const target = fileURLToPath(new URL(`../../${SDK_OUTFILE}`, import.meta.url));
  const folder = join(dirname(target), `.build-${process.pid}-${Date.now()}`);
  await mkdir(folder, { recursive: true });
  try {
    const own = join(folder, basename(target));
    await buildSdk({ outfile: own });
    await rename(`${own}.map`, `${target}.map`);
    await rename(own, target);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
