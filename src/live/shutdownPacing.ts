/**
 * Closing every connection at shutdown, a batch per turn.
 *
 * Socket.IO's `io.close()` closes every connection in one synchronous loop: for each, the hub's
 * leave (rooms, the index), Socket.IO's and engine.io's teardown, and `ws` writing the close frame.
 * At 19,000 tabs that is one stall of over a second (docs/performance.md, "Fifth pass", observe), during
 * which the hub answers nothing: not /metrics (kept up until the end for exactly this drain), not
 * the peers whose close it is writing. Here the same closes (engine.io's `close(true)`, what
 * `io.close()` ends up calling for each connection) run a batch at a time, at most `turnMs` of
 * them and at most MAX_CLOSES_PER_TURN, with I/O between batches; `io.close()` then finds nothing
 * left to close but what connected meanwhile (refused while draining) and closes the listener.
 */
import { performance } from 'node:perf_hooks';

/** An engine.io connection: `close(true)` drops what is still buffered and closes its transport. */
export interface ClosableConnection {
  close(discard: boolean): void;
}

/** Connections closed in one turn at most, however cheap: a bound that does not depend on the clock. */
export const MAX_CLOSES_PER_TURN = 200;

/** Whether the batch under way may close one more connection (`closed` so far in it, since `startedAt`). */
export function mayCloseMore(closed: number, startedAt: number, now: number, turnMs: number): boolean {
  return closed === 0 || (closed < MAX_CLOSES_PER_TURN && now - startedAt < turnMs);
}

/**
 * Closes `connections` (a snapshot is taken at the start) in batches of at most `turnMs`, letting
 * the event loop run between them. Resolves with the number of batches when every close was made.
 */
export async function closeInTurns(connections: Iterable<ClosableConnection>, turnMs: number, onError: (error: unknown) => void): Promise<number> {
  const pending = [...connections];
  let next = 0;
  let batches = 0;
  while (next < pending.length) {
    const startedAt = performance.now();
    let closed = 0;
    while (next < pending.length && mayCloseMore(closed, startedAt, performance.now(), turnMs)) {
      const connection = pending[next++] as ClosableConnection;
      closed += 1;
      try {
        connection.close(true);
      } catch (error) {
        // One connection failing to close must not leave the others open.
        onError(error);
      }
    }
    batches += 1;
    if (next < pending.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return batches;
}
