import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; secrets are redacted wherever they appear in a logged object. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'stategate' },
    redact: {
      paths: ['apiKey', 'api_key', 'key', 'secret', 'token', 'headers.authorization', 'headers["x-api-key"]', '*.apiKey', '*.secret'],
      censor: '[redacted]',
    },
  });
}
