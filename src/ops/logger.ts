/**
 * Structured JSON logs (pino). Secrets never reach a log line: the paths below are redacted, and
 * payloads are logged only at debug level.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string, name = 'hub'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['token', 'auth', 'authorization', 'apiKey', 'secret', '*.token', '*.auth', '*.authorization', '*.apiKey', '*.secret', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  });
}
