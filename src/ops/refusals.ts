/**
 * Info-level summaries of what the hub refused: refused handshakes (by reason) and REST answers 401,
 * 403 and 429, counted over a window and logged as one line per window that had any
 * (LOG_SUMMARY_INTERVAL_MS). An operator at info level sees that clients are being turned away
 * without one line per request, which a hostile client could use to flood the log. Each refusal
 * itself is logged at debug level where it happens.
 *
 * Bounded: keys come from fixed sets (handshake reasons, three statuses), never from the request.
 */
import type { Logger } from './logger';

/** The REST statuses summarised: authentication, authorisation and rate limiting. */
const SUMMARISED_STATUSES: ReadonlySet<number> = new Set([401, 403, 429]);

export interface RefusalCounts {
  handshakes: Record<string, number>;
  http: Record<string, number>;
}

export class RefusalSummary {
  private handshakes = new Map<string, number>();
  private http = new Map<number, number>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    /** 0 turns the summaries off. */
    private readonly intervalMs: number,
  ) {
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.flush(), intervalMs);
      this.timer.unref();
    }
  }

  /** A refused handshake, by its metric reason (snake_case, a fixed set). */
  handshake(reason: string): void {
    if (this.timer) this.handshakes.set(reason, (this.handshakes.get(reason) ?? 0) + 1);
  }

  /** A REST answer: counted when its status is one summarised. */
  httpStatus(status: number): void {
    if (this.timer && SUMMARISED_STATUSES.has(status)) this.http.set(status, (this.http.get(status) ?? 0) + 1);
  }

  /** Logs the window's counts, if any, and starts a new window. */
  flush(): RefusalCounts | undefined {
    if (this.handshakes.size === 0 && this.http.size === 0) return undefined;
    const counts: RefusalCounts = { handshakes: Object.fromEntries(this.handshakes), http: Object.fromEntries([...this.http].map(([s, n]) => [String(s), n])) };
    this.handshakes = new Map();
    this.http = new Map();
    this.logger.info({ refused: counts, windowSeconds: this.intervalMs / 1000 }, 'refused handshakes and requests in the last window (details at debug level)');
    return counts;
  }

  /** Logs what is left and stops the timer (at shutdown). */
  close(): void {
    if (!this.timer) return;
    this.flush();
    clearInterval(this.timer);
  }
}
