import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout; secrets are redacted wherever they appear in a logged object.
 *
 * Written synchronously: an asynchronous destination registers an exit hook that flushes with
 * sonic-boom's flushSync, which retries a write that failed with EPIPE every 100 ms forever, so a
 * gateway whose log reader had gone (`npm start | tee`, tee killed) never exited after SIGTERM.
 * Synchronously, nothing is left to flush at exit, and pino treats EPIPE as final (it stops
 * writing). Stdout to a pipe is synchronous in Node anyway; the gateway logs little per request.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'stategate' },
      redact: {
        paths: ['apiKey', 'api_key', 'key', 'secret', 'token', 'headers.authorization', 'headers["x-api-key"]', '*.apiKey', '*.secret'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}
