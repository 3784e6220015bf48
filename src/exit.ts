/**
 * Leaving the process after a shutdown without hanging on the log stream. pino writes through
 * sonic-boom, and on exit flushes synchronously what is still in flight; when stdout is a pipe
 * whose reader is gone (`npm start | pino-pretty`, then Ctrl-C) that write fails with EPIPE, which
 * sonic-boom's synchronous flush retries forever. So the logs are flushed asynchronously first
 * (an EPIPE there makes pino stop writing), and if that does not finish in time, the stream's
 * synchronous flush is disabled: the process exits, at the cost of the last lines.
 */
import pino from 'pino';
import type { Logger } from './ops/logger';

interface FlushableStream {
  flushSync?: () => void;
  write?: (chunk: string) => boolean;
}

/** Flushes the logger (at most `timeoutMs`), then exits with `code`. */
export function exitAfterFlush(logger: Logger, code: number, timeoutMs = 1000): void {
  const stream = (logger as unknown as Record<symbol, FlushableStream | undefined>)[pino.symbols.streamSym];
  let done = false;
  const exit = (): void => {
    if (done) return;
    done = true;
    if (stream) {
      // Nothing may be written or flushed synchronously any more: an EPIPE would loop forever.
      stream.flushSync = () => undefined;
      stream.write = () => true;
    }
    process.exit(code);
  };
  setTimeout(exit, timeoutMs).unref();
  try {
    logger.flush(() => exit());
  } catch {
    exit();
  }
}
