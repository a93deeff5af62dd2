import { createRequire } from 'node:module';
import type * as UWS from '@trufflesuite/uws-js-unofficial';

/**
 * The only import of the uWebSockets.js package: switching packages is a change to PACKAGE.
 *
 * This package silently falls back to a slow JavaScript implementation when its native binary
 * cannot load, so we load the binary ourselves and say which one runs. Benchmarks refuse to report
 * numbers unless `native` is true.
 */
const PACKAGE = '@trufflesuite/uws-js-unofficial';

export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from '@trufflesuite/uws-js-unofficial';

const require = createRequire(import.meta.url);

export interface UwsRuntime {
  uWS: typeof UWS;
  native: boolean;
  /** Which binary runs, or why the native one could not load. */
  detail: string;
}

function load(): UwsRuntime {
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    const uWS = require(`${PACKAGE}/binaries/${binary}`) as typeof UWS;
    return { uWS, native: true, detail: `${PACKAGE} native ${binary}` };
  } catch (error) {
    if (process.env.STATEGATE_REQUIRE_NATIVE_UWS === 'true') throw error;
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return { uWS: require(PACKAGE) as typeof UWS, native: false, detail: `JavaScript fallback (native ${binary} failed: ${reason})` };
  }
}

export const uws: UwsRuntime = load();
export const uWS = uws.uWS;
