/**
 * Structured JSON logs (pino), one object per line: `level` as its label ("info", "warn", ...) and
 * `time` as an ISO 8601 UTC timestamp, which log shippers and people read without a lookup table.
 * Secrets never reach a log line: the paths below are redacted, and payloads are logged only at
 * debug level.
 */
import pino from 'pino';

export type Logger = pino.Logger;

/** `destination` defaults to stdout (tests pass a stream to read the lines). */
export function createLogger(level: string, name = 'hub', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['token', 'auth', 'authorization', 'apiKey', 'secret', '*.token', '*.auth', '*.authorization', '*.apiKey', '*.secret', 'headers.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  };
  // Stdout is written synchronously: a line logged just before the process exits (the shutdown's
  // "hub stopped") is out before the exit, and pino's own handler still absorbs a broken pipe.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}
