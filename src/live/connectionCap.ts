/**
 * The cap on Socket.IO connections (MAX_CONNECTIONS): below the process's open-file limit, so that
 * when sockets fill up, REST, /health and /metrics still get a descriptor, and a refused client gets
 * a clean HTTP refusal (and the operator a log line and a metric) instead of a silent reset.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { ErrorCode } from '../errors';
import type { Logger } from '../ops/logger';
import type { Metrics } from '../ops/metrics';

/** A /proc file's text, or undefined where there is none (not Linux, no /proc). */
function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The soft open-file limit of this process (Linux /proc), if it can be read. */
export function readOpenFileLimit(limitsText = readProc('/proc/self/limits')): number | undefined {
  if (limitsText === undefined) return undefined;
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limitsText);
  if (!match || match[1] === 'unlimited') return undefined;
  return Number(match[1]);
}

/** net.core.somaxconn, the kernel's cap on every listener's accept queue (Linux /proc), if it can be read. */
export function readSomaxconn(text = readProc('/proc/sys/net/core/somaxconn')): number | undefined {
  const n = Number(text?.trim());
  return text !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The accept queue a listener asking for `requested` gets: the kernel silently caps it at somaxconn. */
export function effectiveBacklog(requested: number, somaxconn: number | undefined): number {
  return somaxconn === undefined ? requested : Math.min(requested, somaxconn);
}

/**
 * MAX_CONNECTIONS when not set: the open-file limit less a reserve for everything else the process
 * opens (listening socket, REST and metrics clients, Redis, logs, libuv's own): 5 % of the limit,
 * at least 64 and at most 256. Unknown limit: no cap (0).
 */
export function defaultMaxConnections(openFileLimit: number | undefined): number {
  if (openFileLimit === undefined || !Number.isFinite(openFileLimit)) return 0;
  const reserve = Math.min(256, Math.max(64, Math.round(openFileLimit * 0.05)));
  return Math.max(1, openFileLimit - reserve);
}

/** Whether one more connection may open (0 = no cap). */
export function connectionFits(open: number, max: number): boolean {
  return max === 0 || open < max;
}

/** Logs refusals at most once per `everyMs`, with how many there were since the last line. */
export class RefusalLog {
  private last = -Infinity;
  private since = 0;
  constructor(
    private readonly logger: Logger,
    private readonly everyMs = 10_000,
  ) {}

  refused(fields: Record<string, unknown>, message: string): void {
    this.since++;
    const now = Date.now();
    if (now - this.last < this.everyMs) return;
    this.logger.warn({ ...fields, refusedSinceLastLine: this.since }, message);
    this.last = now;
    this.since = 0;
  }
}

/** engine.io's `allowRequest`: new connections past `max` are refused with HTTP 403 and the code in the message. */
export function capConnections(max: number, open: () => number, metrics: Metrics, logger: Logger): (req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void) => void {
  const log = new RefusalLog(logger);
  return (_req, callback) => {
    if (connectionFits(open(), max)) return callback(null, true);
    metrics.connectsRefused.inc({ reason: 'max_connections' });
    log.refused({ maxConnections: max }, 'connection refused: MAX_CONNECTIONS reached (derived from the open-file limit unless set)');
    callback(`${ErrorCode.TOO_MANY_CONNECTIONS}: the hub holds its maximum of ${max} connections`, false);
  };
}
